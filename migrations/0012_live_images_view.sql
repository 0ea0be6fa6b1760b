-- An image is deleted by stamping deleted_at (its labels, embeddings and files stay, so a delete can be
-- undone). Nearly every read wants only the images still in the library: live_images says that once,
-- instead of each query repeating `deleted_at IS NULL`. SQLite flattens a simple view into the query
-- that reads it, so the planner sees the same table, indexes and filter as before.
-- A later migration that rebuilds `images` (create, copy, drop, rename) must drop this view first and
-- create it again afterwards: renaming a table checks every view that names it.
CREATE VIEW live_images AS SELECT * FROM images WHERE deleted_at IS NULL;
