-- Library filters and quality overrides. The library grid filters and counts by annotator and by
-- labelling session on 100k-image libraries, so both lookups get an index that reaches image ids
-- directly. A "not an issue" override records that a person looked at an automatic quality flag on an
-- image and rejected it: re-flagging never sets that flag on that image again, so filters, counts and
-- exports (which all read image_flags) respect the decision.

CREATE INDEX labels_annotator_current ON labels(annotator_id, image_id) WHERE superseded_at IS NULL;
CREATE INDEX session_items_image ON session_items(image_id, session_id);

CREATE TABLE quality_overrides (
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  flag TEXT NOT NULL,                 -- the automatic flag a person marked "not an issue" for this image
  set_at TEXT NOT NULL,
  PRIMARY KEY (image_id, flag)
);
