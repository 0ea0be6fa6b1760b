-- Labelling: taxonomies, the append-only label audit log with per-annotator undo/redo, and labelling
-- sessions. Labels themselves live in `labels` (0003): changing a label supersedes its row.

-- One entry of a label kind's vocabulary (conditions, body sites, Fitzpatrick types …). A parent code
-- groups children of the same kind (e.g. 'infectious' → 'tinea'). The starter taxonomy is built in;
-- users import their own entries from CSV or JSON.
CREATE TABLE taxonomy_entries (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  code TEXT NOT NULL,                 -- the value stored in labels.value
  display_name TEXT NOT NULL,
  parent_code TEXT,                   -- code of the parent entry of the same kind, NULL at the top
  hotkey TEXT,                        -- one key, unique within a kind
  sort_order INTEGER NOT NULL DEFAULT 0,
  built_in INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (kind, code)
);
CREATE UNIQUE INDEX taxonomy_entries_hotkey ON taxonomy_entries(kind, hotkey) WHERE hotkey IS NOT NULL;
CREATE INDEX taxonomy_entries_parent ON taxonomy_entries(kind, parent_code);

-- One undoable action of one annotator: setting or removing labels, recording an image in a session,
-- adjudicating. Edits are never changed: `previous_edit_id` is the annotator's undo cursor at the time
-- the edit was made, so the edits form a tree; undo moves the cursor to the parent, redo to the newest
-- child. That keeps redo correct after "undo, then a new edit" without rewriting history.
CREATE TABLE label_edits (
  id INTEGER PRIMARY KEY,
  annotator_id INTEGER NOT NULL REFERENCES annotators(id),
  previous_edit_id INTEGER REFERENCES label_edits(id),
  session_id INTEGER,
  description TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX label_edits_children ON label_edits(annotator_id, previous_edit_id);

-- The one mutable piece of undo state: the last applied edit of each annotator (NULL: nothing to undo).
CREATE TABLE label_edit_cursors (
  annotator_id INTEGER PRIMARY KEY REFERENCES annotators(id),
  edit_id INTEGER REFERENCES label_edits(id),
  updated_at TEXT NOT NULL
);

-- Append-only audit log: one row per change of one label slot (image, kind, annotator, origin), with the
-- slot's values before and after as JSON arrays of {value, confidence}. Undo and redo add rows too.
CREATE TABLE label_audit (
  id INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('set', 'remove', 'record', 'import', 'adjudicate', 'undo', 'redo')),
  edit_id INTEGER REFERENCES label_edits(id),      -- the edit this change belongs to (NULL for imports)
  reverts_edit_id INTEGER REFERENCES label_edits(id), -- for undo/redo: the edit undone or redone
  annotator_id INTEGER REFERENCES annotators(id),  -- who made the change
  session_id INTEGER,
  image_id INTEGER NOT NULL,                       -- no foreign key: the log outlives deleted rows
  kind TEXT NOT NULL,
  origin TEXT NOT NULL CHECK (origin IN ('manual', 'imported', 'consensus')),
  slot_annotator_id INTEGER,                       -- whose labels changed (NULL for consensus)
  before_values TEXT NOT NULL,
  after_values TEXT NOT NULL
);
CREATE INDEX label_audit_edit ON label_audit(edit_id);
CREATE INDEX label_audit_image ON label_audit(image_id, kind);
CREATE TRIGGER label_audit_append_only_update BEFORE UPDATE ON label_audit
BEGIN SELECT RAISE(ABORT, 'label_audit is append-only'); END;
CREATE TRIGGER label_audit_append_only_delete BEFORE DELETE ON label_audit
BEGIN SELECT RAISE(ABORT, 'label_audit is append-only'); END;

-- A labelling session: one annotator working through a fixed queue of images. The image set (a filter
-- or an explicit list) is resolved once at creation into session_items, so a resumed session shows
-- exactly the same queue. `position` is the queue position of the image shown now.
CREATE TABLE labelling_sessions (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  annotator_id INTEGER NOT NULL REFERENCES annotators(id),
  image_set TEXT NOT NULL,            -- JSON: {"where": [...clauses]} or {"imageIds": [...]}
  queue_order TEXT NOT NULL CHECK (queue_order IN ('unlabelled-first', 'random', 'cluster', 'uncertain')),
  seed INTEGER NOT NULL,
  order_details TEXT,                 -- JSON: model id and cluster count, probe run id …
  status TEXT NOT NULL CHECK (status IN ('active', 'paused', 'completed')),
  position INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX labelling_sessions_annotator ON labelling_sessions(annotator_id);

CREATE TABLE session_items (
  session_id INTEGER NOT NULL REFERENCES labelling_sessions(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,          -- 0-based place in the queue
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  queue_key REAL,                     -- what the order was computed from: cluster, uncertainty …
  seconds_spent REAL NOT NULL DEFAULT 0,
  labelled_at TEXT,
  skipped_at TEXT,
  PRIMARY KEY (session_id, position),
  UNIQUE (session_id, image_id)
);
