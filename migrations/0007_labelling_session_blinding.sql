-- Labelling bias control. `suggestions` says whether a session shows probe predictions and suggestions
-- from similar labelled images before the annotator has chosen ('shown') or only after ('blind').
-- `agreement` marks a session whose labels are meant for inter-annotator agreement; such sessions are
-- blind unless their creator chose otherwise, so one annotator's reading is not steered by the others'.
ALTER TABLE labelling_sessions ADD COLUMN suggestions TEXT NOT NULL DEFAULT 'shown' CHECK (suggestions IN ('shown', 'blind'));
ALTER TABLE labelling_sessions ADD COLUMN agreement INTEGER NOT NULL DEFAULT 0 CHECK (agreement IN (0, 1));

-- Sessions made before this migration that share an image with another annotator's session are agreement
-- work already: they become agreement sessions and blind from now on.
UPDATE labelling_sessions SET agreement = 1, suggestions = 'blind'
WHERE EXISTS (
  SELECT 1 FROM session_items mine
  JOIN session_items theirs ON theirs.image_id = mine.image_id AND theirs.session_id <> mine.session_id
  JOIN labelling_sessions other ON other.id = theirs.session_id
  WHERE mine.session_id = labelling_sessions.id AND other.annotator_id <> labelling_sessions.annotator_id
);
