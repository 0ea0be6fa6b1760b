-- Library core: images, import batches with per-file outcomes, cases and metadata, quality metrics
-- and flags, settings. Later features (labels, embeddings, sessions, probes) reference images(id).

CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,            -- JSON
  updated_at TEXT NOT NULL
);

CREATE TABLE import_batches (
  id INTEGER PRIMARY KEY,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'cancelled', 'failed')),
  copy_into_library INTEGER NOT NULL DEFAULT 0,
  source_paths TEXT NOT NULL,     -- JSON array of the paths the user gave
  total_files INTEGER NOT NULL DEFAULT 0,
  imported INTEGER NOT NULL DEFAULT 0,
  duplicates INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0
);

-- A case groups the photos of one presentation (SCIN case_id, a patient visit). Splits keep a case whole.
CREATE TABLE cases (
  id INTEGER PRIMARY KEY,
  case_key TEXT NOT NULL UNIQUE,  -- external identifier, always text (SCIN case ids are strings)
  source TEXT,                    -- e.g. 'scin', 'isic', 'csv', 'manual'
  created_at TEXT NOT NULL
);

CREATE TABLE images (
  id INTEGER PRIMARY KEY,
  file_sha256 TEXT NOT NULL UNIQUE,   -- hash of the file bytes: the same file is never stored twice
  pixel_sha256 TEXT NOT NULL,         -- hash of the decoded sRGB pixels after orientation: finds re-encoded copies
  original_path TEXT NOT NULL,        -- absolute path the image was imported from
  relative_path TEXT,                 -- path relative to the import root (used to match datasets and npz keys)
  managed_path TEXT,                  -- path inside the library when copied in, relative to the library root
  thumbnail_path TEXT NOT NULL,       -- relative to the library root
  width INTEGER NOT NULL,             -- after EXIF orientation
  height INTEGER NOT NULL,
  format TEXT NOT NULL,               -- jpeg, png, webp, tiff, heif, avif …
  bytes INTEGER NOT NULL,
  exif_orientation INTEGER NOT NULL DEFAULT 1,  -- the EXIF orientation that was applied (1 = none)
  source_color_space TEXT,            -- srgb, cmyk, b-w, rgb16 … before conversion to sRGB
  source_bit_depth TEXT,
  had_alpha INTEGER NOT NULL DEFAULT 0,
  imported_at TEXT NOT NULL,
  batch_id INTEGER NOT NULL REFERENCES import_batches(id),
  case_id INTEGER REFERENCES cases(id) ON DELETE SET NULL,
  deleted_at TEXT
);
CREATE INDEX images_pixel_sha256 ON images(pixel_sha256);
CREATE INDEX images_batch ON images(batch_id);
CREATE INDEX images_case ON images(case_id);
CREATE INDEX images_relative_path ON images(relative_path);

CREATE TABLE import_outcomes (
  id INTEGER PRIMARY KEY,
  batch_id INTEGER NOT NULL REFERENCES import_batches(id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('imported', 'duplicate', 'failed', 'skipped')),
  reason TEXT,                        -- a sentence a person understands, for failed and duplicate files
  image_id INTEGER REFERENCES images(id) ON DELETE SET NULL,  -- the new image, or the one it duplicates
  at TEXT NOT NULL,
  UNIQUE (batch_id, path)
);
CREATE INDEX import_outcomes_batch ON import_outcomes(batch_id, outcome);

-- Free-form per-image metadata (body site, skin type, age group, shot type …) imported from datasets
-- or typed by the user. Labels made by annotators live in their own tables.
CREATE TABLE image_metadata (
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  source TEXT,
  PRIMARY KEY (image_id, key)
);
CREATE INDEX image_metadata_key_value ON image_metadata(key, value);

-- Automatic quality metrics, computed from the single decode at import. Flags are derived from these
-- with the thresholds in settings, so re-flagging never needs a decode.
CREATE TABLE quality_metrics (
  image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
  metrics_version INTEGER NOT NULL,
  brightness_mean REAL NOT NULL,
  brightness_p05 REAL NOT NULL,
  brightness_p99 REAL NOT NULL,
  blur_score REAL NOT NULL,
  laplacian_variance REAL NOT NULL,
  entropy REAL NOT NULL,
  saturation_mean REAL NOT NULL,
  aspect_ratio REAL NOT NULL,
  size_sqrt REAL NOT NULL,
  extra TEXT                          -- JSON for metrics added later
);

CREATE TABLE image_flags (
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  flag TEXT NOT NULL,                 -- dark, overexposed, blurry, low_information, odd_aspect_ratio, odd_size, low_resolution, grayscale, duplicate …
  source TEXT NOT NULL CHECK (source IN ('auto', 'manual')),
  detail TEXT,
  set_at TEXT NOT NULL,
  PRIMARY KEY (image_id, flag, source)
);
CREATE INDEX image_flags_flag ON image_flags(flag, source);
