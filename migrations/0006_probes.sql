-- Linear probes: one row per training run with everything needed to reproduce it (the manifest) and
-- its evaluation, and the final model's predicted probabilities per image. Predictions are
-- suggestions shown beside annotators' choices and used to order uncertainty queues; they are never
-- labels and never written to `labels`.

CREATE TABLE probe_runs (
  id INTEGER PRIMARY KEY,
  created_at TEXT NOT NULL,
  finished_at TEXT,
  model_id TEXT NOT NULL,             -- embedding model (no foreign key: a run outlives a removed model)
  model_sha256 TEXT NOT NULL,
  label_kind TEXT NOT NULL CHECK (label_kind IN ('condition', 'quality')),
  labels TEXT NOT NULL,               -- JSON array of the label values the probe predicts, in column order
  status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'cancelled', 'failed')),
  seed INTEGER NOT NULL,
  folds INTEGER NOT NULL,
  hyperparameters TEXT NOT NULL,      -- JSON: l2, class weights, solver limits, bootstrap, curve
  filters TEXT NOT NULL,              -- JSON: how labels were resolved into targets (confidence floor …)
  app_version TEXT NOT NULL,
  manifest TEXT NOT NULL,             -- JSON: all of the above plus population counts, in one document
  metrics TEXT,                       -- JSON: ProbeMetrics, when completed
  final_weights BLOB,                 -- little-endian Float32, dim × labels, weights on raw embedding values
  final_offsets TEXT,                 -- JSON array, one per label: p = sigmoid(x · w + offset)
  error TEXT
);
CREATE INDEX probe_runs_model_kind ON probe_runs(model_id, label_kind, status);

CREATE TABLE probe_predictions (
  run_id INTEGER NOT NULL REFERENCES probe_runs(id) ON DELETE CASCADE,
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  label TEXT NOT NULL,
  probability REAL NOT NULL CHECK (probability BETWEEN 0 AND 1),
  PRIMARY KEY (run_id, image_id, label)
);
CREATE INDEX probe_predictions_image ON probe_predictions(image_id);
CREATE INDEX probe_predictions_uncertainty ON probe_predictions(run_id, label, probability);
