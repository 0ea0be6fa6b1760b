-- Annotators and labels. A label is one value of one kind given to one image by one annotator. The
-- current state is the rows with superseded_at IS NULL; changing or removing a label supersedes the row
-- instead of deleting it, and the audit log (in the sessions migration) records every change.

CREATE TABLE annotators (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL
);

CREATE TABLE labels (
  id INTEGER PRIMARY KEY,
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  -- condition, body_site, fitzpatrick, monk_tone, severity, gradable, quality_flag, note
  kind TEXT NOT NULL,
  value TEXT NOT NULL,                -- taxonomy code, 'I'..'VI', '1'..'10', 'yes'/'no', or note text
  confidence INTEGER CHECK (confidence IS NULL OR confidence BETWEEN 1 AND 5),
  annotator_id INTEGER REFERENCES annotators(id),
  session_id INTEGER,                 -- labelling session, when labelled in one
  -- manual: typed by an annotator; imported: from a dataset (e.g. SCIN dermatologists); consensus: adjudicated
  origin TEXT NOT NULL DEFAULT 'manual' CHECK (origin IN ('manual', 'imported', 'consensus')),
  created_at TEXT NOT NULL,
  superseded_at TEXT
);
CREATE INDEX labels_current ON labels(image_id, kind) WHERE superseded_at IS NULL;
CREATE INDEX labels_kind_value ON labels(kind, value) WHERE superseded_at IS NULL;
CREATE INDEX labels_annotator ON labels(annotator_id, kind);
