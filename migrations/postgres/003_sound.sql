-- 003_sound: what an upload sounded like to the model.
--
-- 'music', or what the model's sound detector heard instead ('speech', 'tone', 'noise'). A
-- prediction that is not music was answered in words, without a genre, a menu or reactions; it
-- takes no votes and never enters the correction export. Its genre, confidence and top_k stay
-- what the genre head said (for the record; nobody was shown them as the answer).
-- Every prediction made before this migration was answered with a genre: 'music'.

ALTER TABLE predictions ADD COLUMN IF NOT EXISTS sound TEXT NOT NULL DEFAULT 'music' CHECK (sound <> '');
--
-- Numbered 002 before the two histories were put in step; a database that applied it then is at
-- version 2 and runs this file again: IF NOT EXISTS makes that a no-op.
