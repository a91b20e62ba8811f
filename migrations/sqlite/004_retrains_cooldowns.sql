-- 004_retrains_cooldowns: a retrain's state, shared by every bot process, and /genre cooldowns.
--
-- A retrain is one row. At most one is 'running' (the unique index is the cross-process lock);
-- the bot process running it (``owner``: host:pid:token) refreshes ``heartbeat_at``, and a running
-- row whose owner is dead (or whose heartbeat is older than the lease) is settled as 'interrupted'
-- by the next bot process that looks. ``channel_id``/``message_id`` name the public reply, so it
-- can be settled after a restart, when the interaction token is long gone. ``detail`` is for the
-- log and operators (an error id, the verdict), never shown raw to members.
CREATE TABLE retrains (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,  -- names the scratch folder data/retrain/<id>
    state        TEXT    NOT NULL CHECK (state IN ('running', 'promoted', 'kept', 'failed', 'interrupted')),
    owner        TEXT    NOT NULL,
    requested_by INTEGER,
    channel_id   INTEGER,
    message_id   INTEGER,
    started_at   TEXT    NOT NULL,
    heartbeat_at TEXT    NOT NULL,
    finished_at  TEXT,
    detail       TEXT    NOT NULL DEFAULT ''
);

CREATE UNIQUE INDEX retrains_one_running ON retrains (state) WHERE state = 'running';

-- /genre's per-user pause, shared by every bot process: the time until which the user waits.
CREATE TABLE cooldowns (
    user_id INTEGER PRIMARY KEY,
    until   REAL    NOT NULL     -- unix time (SQLite is one machine: one clock)
);
