-- 001_initial: predictions with their files, feedback votes, trained models.
--
-- Rules for migration files: see genrebot/storage/migrate.py (no BEGIN/COMMIT: the runner applies
-- each file in one transaction, under an advisory lock, and records its number in genrebot_schema).
-- Discord ids are BIGINT (snowflakes fit in 63 bits until about 2084); times come from the
-- database server's clock, so several bot processes agree on the order of votes.

CREATE TABLE predictions (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        BIGINT           NOT NULL,
    guild_id       BIGINT,                    -- NULL in DMs
    channel_id     BIGINT,
    message_id     BIGINT UNIQUE,             -- NULL until the reply is sent; one prediction per reply
    interaction_id BIGINT,
    created_at     TIMESTAMPTZ      NOT NULL DEFAULT clock_timestamp(),
    file_name      TEXT             NOT NULL,
    file_sha256    TEXT             NOT NULL,
    duration_s     DOUBLE PRECISION NOT NULL,
    model_version  TEXT             NOT NULL,
    genre          TEXT             NOT NULL,  -- top-1 label
    confidence     DOUBLE PRECISION NOT NULL,  -- top-1 probability
    top_k          JSONB            NOT NULL   -- list of [label, p], best first
);

CREATE INDEX predictions_user_id ON predictions (user_id);

-- Per-prediction files live in the database, not in a folder: they commit (and are forgotten)
-- in the same transaction as their prediction, and every bot process on every machine sees them.
CREATE TABLE prediction_files (
    prediction_id BIGINT NOT NULL REFERENCES predictions (id) ON DELETE CASCADE,
    kind          TEXT   NOT NULL CHECK (kind IN ('windows', 'audio')),
    suffix        TEXT   NOT NULL,           -- '.npz' for windows; the upload's own for audio
    data          BYTEA  NOT NULL,
    PRIMARY KEY (prediction_id, kind)
);

-- .npz windows and audio are compressed already: store them out of line without trying again.
ALTER TABLE prediction_files ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE feedback (
    prediction_id   BIGINT      NOT NULL REFERENCES predictions (id) ON DELETE CASCADE,
    user_id         BIGINT      NOT NULL,
    vote            TEXT        NOT NULL CHECK (vote IN ('right', 'wrong')),
    corrected_genre TEXT,                    -- only with a 'wrong' vote
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    seq             BIGINT      GENERATED ALWAYS AS IDENTITY,  -- breaks ties of updated_at
    PRIMARY KEY (prediction_id, user_id),    -- one vote per user per prediction
    CHECK (corrected_genre IS NULL OR vote = 'wrong')
);

-- forget_user() looks votes up by user.
CREATE INDEX feedback_user_id ON feedback (user_id);

CREATE TABLE models (
    version    TEXT        PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    path       TEXT        NOT NULL,
    metrics    JSONB       NOT NULL DEFAULT '{}',
    is_live    BOOLEAN     NOT NULL DEFAULT false,
    note       TEXT        NOT NULL DEFAULT ''
);

-- At most one live model.
CREATE UNIQUE INDEX models_one_live ON models (is_live) WHERE is_live;
