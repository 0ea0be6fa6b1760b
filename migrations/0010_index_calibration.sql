-- The index measures its own recall@10 on probe queries drawn from the library and tunes its search
-- settings (and, when that is not enough, its projection) to reach a target. What it chose and
-- measured is kept with the index record as JSON (IndexCalibration in index-calibration.ts); NULL for
-- an index written before calibration existed, which is measured at its first use.
ALTER TABLE vector_indexes ADD COLUMN calibration TEXT;
