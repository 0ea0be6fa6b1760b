-- What a probe run's reported numbers were computed from, so anyone can recompute them: the fold of
-- every population image (with the grouping key the folds were drawn from) and each label's truth and
-- out-of-fold probability (the score from the fold model that never saw the image's case). Written
-- in the same transaction as the run's metrics.

CREATE TABLE probe_folds (
  run_id INTEGER NOT NULL REFERENCES probe_runs(id) ON DELETE CASCADE,
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  group_key TEXT NOT NULL,            -- 'case:<case_key>', or 'image:<file sha256>' for an image without a case
  fold INTEGER NOT NULL CHECK (fold >= 0),
  PRIMARY KEY (run_id, image_id)
);

CREATE TABLE probe_out_of_fold (
  run_id INTEGER NOT NULL REFERENCES probe_runs(id) ON DELETE CASCADE,
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  label TEXT NOT NULL,
  truth INTEGER CHECK (truth IN (0, 1)),  -- NULL: unknown for this image (left out of the label's training and AUC)
  probability REAL NOT NULL CHECK (probability BETWEEN 0 AND 1),
  PRIMARY KEY (run_id, image_id, label)
);
