-- 002_audio_path: kept uploads (GENREBOT_KEEP_AUDIO) are recorded like feature windows.
--
-- The file is named by the audio store (genrebot/storage/files.py): audio/<prediction id><suffix>,
-- relative to the data folder; forget_user() deletes exactly the recorded file.
-- Uploads kept before this migration were not recorded: delete <data>/audio/ by hand if any exist.

ALTER TABLE predictions ADD COLUMN audio_path TEXT;  -- NULL if the upload was not kept
