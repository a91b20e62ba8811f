-- 001_initial: predictions, feedback votes, trained models.
--
-- Rules for migration files (see bot/storage.py):
--   * named NNN_name.sql, numbered 1, 2, 3, ... without gaps;
--   * no BEGIN/COMMIT/ROLLBACK: the migrator wraps each file in one
--     transaction and records the number in PRAGMA user_version;
--   * nothing that cannot run inside a transaction (VACUUM, journal_mode, ...);
--   * the migrator runs with foreign_keys OFF and checks PRAGMA foreign_key_check
--     before committing, so table rebuilds do not cascade-delete rows;
--   * never edit a file once it has shipped; add a new one instead.
-- Times are ISO-8601 UTC text; Discord ids are INTEGER (snowflakes fit in 64 bits).

CREATE TABLE predictions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: window files are named by id
    user_id        INTEGER NOT NULL,
    guild_id       INTEGER,              -- NULL in DMs
    channel_id     INTEGER,
    message_id     INTEGER,              -- NULL until the reply is sent
    interaction_id INTEGER,
    created_at     TEXT    NOT NULL,
    file_name      TEXT    NOT NULL,
    file_sha256    TEXT    NOT NULL,
    duration_s     REAL    NOT NULL,
    model_version  TEXT    NOT NULL,
    genre          TEXT    NOT NULL,     -- top-1 label
    confidence     REAL    NOT NULL,     -- top-1 probability
    top_k          TEXT    NOT NULL,     -- JSON list of [label, p], best first
    windows_path   TEXT                  -- relative to the data folder; NULL if not kept
);

-- One prediction per reply message; many NULLs allowed before the reply exists.
CREATE UNIQUE INDEX predictions_message_id ON predictions (message_id)
    WHERE message_id IS NOT NULL;
CREATE INDEX predictions_user_id ON predictions (user_id);

CREATE TABLE feedback (
    prediction_id   INTEGER NOT NULL REFERENCES predictions (id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL,
    vote            TEXT    NOT NULL CHECK (vote IN ('right', 'wrong')),
    corrected_genre TEXT,                -- only with a 'wrong' vote
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    PRIMARY KEY (prediction_id, user_id),     -- one vote per user per prediction
    CHECK (corrected_genre IS NULL OR vote = 'wrong')
);

-- forget_user() looks votes up by user.
CREATE INDEX feedback_user_id ON feedback (user_id);

CREATE TABLE models (
    version    TEXT    PRIMARY KEY,
    created_at TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    metrics    TEXT    NOT NULL DEFAULT '{}',   -- JSON object
    is_live    INTEGER NOT NULL DEFAULT 0 CHECK (is_live IN (0, 1)),
    note       TEXT    NOT NULL DEFAULT ''
);

-- At most one live model.
CREATE UNIQUE INDEX models_one_live ON models (is_live) WHERE is_live = 1;
