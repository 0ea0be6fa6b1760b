-- Embeddings per (image, model). Vectors are little-endian Float32 blobs. A model is identified by its
-- id; its sha256 (of the ONNX file, or of the imported embeddings file) is kept with every vector so a
-- changed model is never mixed with the old one.

CREATE TABLE embedding_models (
  id TEXT PRIMARY KEY,
  display_name TEXT NOT NULL,
  dim INTEGER NOT NULL CHECK (dim > 0),
  sha256 TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('onnx', 'imported')),
  preprocessing TEXT,                 -- JSON: input size, resize, fit, value range, mean/std
  registered_at TEXT NOT NULL
);

CREATE TABLE embeddings (
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  model_id TEXT NOT NULL REFERENCES embedding_models(id) ON DELETE CASCADE,
  model_sha256 TEXT NOT NULL,
  dim INTEGER NOT NULL,
  vector BLOB NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (model_id, image_id)
);
CREATE INDEX embeddings_image ON embeddings(image_id);
