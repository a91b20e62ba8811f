-- 002_audio_path: kept uploads (GENREBOT_KEEP_AUDIO) are recorded like feature windows.
--
-- Nothing to do in PostgreSQL: since 001 a kept upload is a row of prediction_files
-- (kind 'audio'), committed and forgotten with its prediction. This file keeps the two
-- dialects' histories in step (SQLite's 002 adds predictions.audio_path).
SELECT 1;
