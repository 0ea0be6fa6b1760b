-- Similar-case search. The HNSW index files in indexes/ are a cache of the embeddings; this schema
-- records what each file was built from so a missing, corrupt or stale file is detected, the PCA
-- projections used for high-dimensional models (versioned: refitting one rebuilds the index), and a
-- change log filled by triggers so the index catches up with embeddings committed or images deleted
-- since it was written, whoever wrote them.

CREATE TABLE vector_projections (
  model_id TEXT NOT NULL REFERENCES embedding_models(id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  input_dim INTEGER NOT NULL,
  output_dim INTEGER NOT NULL,
  sample_size INTEGER NOT NULL,
  explained_variance REAL NOT NULL,   -- fraction of the sample's variance the components keep
  mean BLOB NOT NULL,                 -- float32 LE, input_dim values
  components BLOB NOT NULL,           -- float32 LE, input_dim x output_dim, row-major
  fitted_at TEXT NOT NULL,
  PRIMARY KEY (model_id, version)
);

CREATE TABLE vector_indexes (
  model_id TEXT PRIMARY KEY REFERENCES embedding_models(id) ON DELETE CASCADE,
  file TEXT NOT NULL,                 -- relative to the library root
  file_sha256 TEXT NOT NULL,          -- of the file as written; anything else is a corrupt file
  space TEXT NOT NULL CHECK (space IN ('cosine', 'l2')),
  model_dim INTEGER NOT NULL,
  graph_dim INTEGER NOT NULL,
  projection_version INTEGER,         -- NULL: the graph holds the full (normalised) embeddings
  element_count INTEGER NOT NULL,     -- live elements (not marked deleted)
  id_checksum TEXT NOT NULL,          -- sha256 of the sorted live image ids
  deleted_ids BLOB NOT NULL,          -- uint32 LE labels marked deleted inside the file
  capacity INTEGER NOT NULL,
  m INTEGER NOT NULL,
  ef_construction INTEGER NOT NULL,
  change_seq INTEGER NOT NULL,        -- last vector_index_changes.seq folded into the file
  built_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE vector_index_changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  model_id TEXT NOT NULL,
  image_id INTEGER NOT NULL
);
CREATE INDEX vector_index_changes_model ON vector_index_changes(model_id, seq);

CREATE TRIGGER vector_index_embedding_inserted AFTER INSERT ON embeddings BEGIN
  INSERT INTO vector_index_changes (model_id, image_id) VALUES (NEW.model_id, NEW.image_id);
END;

CREATE TRIGGER vector_index_embedding_updated AFTER UPDATE OF vector, dim, model_sha256 ON embeddings BEGIN
  INSERT INTO vector_index_changes (model_id, image_id) VALUES (NEW.model_id, NEW.image_id);
END;

CREATE TRIGGER vector_index_embedding_deleted AFTER DELETE ON embeddings BEGIN
  INSERT INTO vector_index_changes (model_id, image_id) VALUES (OLD.model_id, OLD.image_id);
END;

CREATE TRIGGER vector_index_image_deleted AFTER UPDATE OF deleted_at ON images
  WHEN (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)
BEGIN
  INSERT INTO vector_index_changes (model_id, image_id) SELECT model_id, image_id FROM embeddings WHERE image_id = NEW.id;
END;
