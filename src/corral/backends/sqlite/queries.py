"""SQL text of the SQLite backend, in one place."""

JOB_COLUMNS = (
    "id, name, state, data, priority, options, attempts, stalls, created_at, started_at,"
    " finished_at, run_at, progress, result, cancel_requested, grp, worker, dedupe, flow"
)

REGISTER_QUEUE = "INSERT OR IGNORE INTO queues (name) VALUES (?)"
NEXT_SEQ = "UPDATE queues SET seq = seq + ? WHERE name = ? RETURNING seq"
INSERT_JOB = """
INSERT OR IGNORE INTO jobs
    (queue, id, name, data, state, priority, seq, options, created_at, run_at, grp, dedupe,
     notify)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
JOB_EXISTS = "SELECT 1 FROM jobs WHERE queue = ? AND id = ?"
DEDUPE_HOLDER = """
SELECT d.job_id, d.expires_at, j.state FROM dedupe d
LEFT JOIN jobs j ON j.queue = d.queue AND j.id = d.job_id
WHERE d.queue = ? AND d.key = ?
"""
DEBOUNCE = """
UPDATE jobs SET name = ?, data = ?, options = ?, notify = ?, state = 'delayed', run_at = ?
WHERE queue = ? AND id = ?
"""
HOLD_DEDUPE = "INSERT OR REPLACE INTO dedupe (queue, key, job_id, expires_at) VALUES (?, ?, ?, ?)"
DUE = """
SELECT id FROM jobs WHERE queue = ? AND state = 'delayed' AND run_at <= ? ORDER BY run_at, seq
"""
TO_WAITING_AT = "UPDATE jobs SET state = 'waiting', seq = ? WHERE queue = ? AND id = ?"
LINE_PLACE = "SELECT priority, grp, seq FROM jobs WHERE queue = ? AND id = ?"
HEAD_UNGROUPED = """
SELECT MIN(seq) FROM jobs WHERE queue = ? AND state = 'waiting' AND grp IS NULL AND priority = ?
"""
HEAD_GROUPED = """
SELECT MIN(seq) FROM jobs WHERE queue = ? AND state = 'waiting' AND grp = ? AND priority = ?
"""
IS_PAUSED = "SELECT paused FROM queues WHERE name = ?"
QUEUE_LIMITS = """
SELECT paused, max_active, rate_max, rate_ms, group_max_active, group_rate_max, group_rate_ms
FROM queues WHERE name = ?
"""
SET_LIMITS = """
UPDATE queues SET max_active = ?, rate_max = ?, rate_ms = ?, group_max_active = ?,
    group_rate_max = ?, group_rate_ms = ?
WHERE name = ?
"""
ACTIVE_COUNT = "SELECT COUNT(*) FROM jobs WHERE queue = ? AND state = 'active'"
FORGET_STARTS = "DELETE FROM starts WHERE queue = ? AND at <= ?"
STARTS = "SELECT COUNT(*), MIN(at) FROM starts WHERE queue = ?"
ADD_START = "INSERT INTO starts (queue, at) VALUES (?, ?)"
CLAIM = """
UPDATE jobs SET state = 'active', attempts = attempts + 1, token = ? || id,
    started_at = ?, lease_until = ?, worker = ?
WHERE queue = ? AND id IN (
    SELECT id FROM jobs WHERE queue = ? AND state = 'waiting' AND grp IS NULL
    ORDER BY priority DESC, seq LIMIT ?
)
RETURNING id, name, data, attempts, token, options, stalls, priority, seq
"""
CLAIM_IN_GROUP = """
UPDATE jobs SET state = 'active', attempts = attempts + 1, token = ? || id,
    started_at = ?, lease_until = ?, worker = ?
WHERE queue = ? AND id IN (
    SELECT id FROM jobs WHERE queue = ? AND state = 'waiting' AND grp = ?
    ORDER BY priority DESC, seq LIMIT 1
)
RETURNING id, name, data, attempts, token, options, stalls, priority, seq
"""
ANY_GROUP_WAITING = "SELECT 1 FROM groups WHERE queue = ? AND waiting > 0 LIMIT 1"
ANY_UNGROUPED_WAITING = (
    "SELECT 1 FROM jobs WHERE queue = ? AND state = 'waiting' AND grp IS NULL LIMIT 1"
)
NEXT_GROUP = """
SELECT grp, turn FROM groups g WHERE queue = :queue AND waiting > 0
    AND (:gmax IS NULL OR active < :gmax)
    AND (:grate IS NULL OR (
        SELECT COUNT(*) FROM group_starts s WHERE s.queue = g.queue AND s.grp = g.grp
    ) < :grate)
ORDER BY turn LIMIT 1
"""
TAKE_TURN = "UPDATE queues SET turn = turn + 1 WHERE name = ? RETURNING turn"
GET_UTURN = "SELECT uturn FROM queues WHERE name = ?"
SET_UTURN = "UPDATE queues SET uturn = ? WHERE name = ?"
SET_GROUP_TURN = "UPDATE groups SET turn = ? WHERE queue = ? AND grp = ?"
FORGET_GROUP_STARTS = "DELETE FROM group_starts WHERE queue = ? AND at <= ?"
ADD_GROUP_START = "INSERT INTO group_starts (queue, grp, at) VALUES (?, ?, ?)"
OLDEST_GROUP_START = "SELECT MIN(at) FROM group_starts WHERE queue = ?"
NEXT_DUE = "SELECT MIN(run_at) FROM jobs WHERE queue = ? AND state = 'delayed'"
LEASED = "SELECT cancel_requested FROM jobs WHERE queue = ? AND id = ? AND token = ?"
# The current lease token of each of these jobs (ids as a JSON array), for a batch.
TOKENS = """
SELECT id, token, started_at FROM jobs
WHERE queue = ? AND id IN (SELECT value FROM json_each(?)) AND token IS NOT NULL
"""
COMPLETE = """
UPDATE jobs SET state = 'completed', result = ?, finished_at = ?, finished_us = ?,
    token = NULL, lease_until = NULL, cancel_requested = 0
WHERE queue = ? AND id = ? AND token = ?
"""
TO_CANCELLED = """
UPDATE jobs SET state = 'cancelled', finished_at = ?, finished_us = ?,
    token = NULL, lease_until = NULL, cancel_requested = 0
WHERE queue = ? AND id = ?
"""
TO_FAILED = """
UPDATE jobs SET state = 'failed', finished_at = ?, finished_us = ?,
    token = NULL, lease_until = NULL
WHERE queue = ? AND id = ?
"""
TO_WAITING = """
UPDATE jobs SET state = 'waiting', seq = ?, attempts = attempts + ?, token = NULL,
    lease_until = NULL
WHERE queue = ? AND id = ?
"""
TO_DELAYED = """
UPDATE jobs SET state = 'delayed', run_at = ?, attempts = attempts + ?, token = NULL,
    lease_until = NULL
WHERE queue = ? AND id = ?
"""
ADD_ERROR = "INSERT INTO job_errors (queue, job_id, error) VALUES (?, ?, ?)"
TRIM_ERRORS = """
DELETE FROM job_errors WHERE queue = ? AND job_id = ? AND rowid NOT IN (
    SELECT rowid FROM job_errors WHERE queue = ? AND job_id = ? ORDER BY rowid DESC LIMIT 100
)
"""
ADD_LOG = "INSERT INTO job_logs (queue, job_id, line) VALUES (?, ?, ?)"
TRIM_LOGS = """
DELETE FROM job_logs WHERE queue = ? AND job_id = ? AND rowid NOT IN (
    SELECT rowid FROM job_logs WHERE queue = ? AND job_id = ? ORDER BY rowid DESC LIMIT 1000
)
"""
RENEW = "UPDATE jobs SET lease_until = ? WHERE queue = ? AND id = ? AND token = ?"
SET_PROGRESS = "UPDATE jobs SET progress = ? WHERE queue = ? AND id = ?"
EXPIRED = """
SELECT id, stalls, cancel_requested, attempts, worker FROM jobs
WHERE queue = ? AND state = 'active' AND lease_until < ? ORDER BY lease_until LIMIT 1000
"""
# Read first, so a reaper that finds nothing (the usual case) takes no write lock.
REAP_NEEDED = """
SELECT EXISTS (SELECT 1 FROM jobs WHERE queue = ? AND state = 'active' AND lease_until < ?),
       (SELECT COALESCE(MAX(id) - MIN(id), 0) FROM events) >= ?
"""
ADD_STALL = "UPDATE jobs SET stalls = stalls + 1 WHERE queue = ? AND id = ?"
STATE = "SELECT state FROM jobs WHERE queue = ? AND id = ?"
REQUEST_CANCEL = "UPDATE jobs SET cancel_requested = 1 WHERE queue = ? AND id = ?"
RETRY = """
UPDATE jobs SET state = 'waiting', seq = ?, attempts = 0, stalls = 0, finished_at = NULL,
    finished_us = NULL, cancel_requested = 0
WHERE queue = ? AND id = ? AND state IN ('failed', 'cancelled')
"""
PROMOTE = """
UPDATE jobs SET state = 'waiting', seq = ? WHERE queue = ? AND id = ? AND state = 'delayed'
"""
SET_PAUSED = "UPDATE queues SET paused = ? WHERE name = ?"
FINISHED_BEFORE = """
SELECT id FROM jobs WHERE queue = ? AND state = ? AND finished_us <= ?
    AND state IN ('completed', 'failed', 'cancelled')  -- lets SQLite use the partial index
LIMIT ?
"""
FINISHED_EXCESS = """
SELECT id FROM jobs WHERE queue = ? AND state = ?
    AND state IN ('completed', 'failed', 'cancelled')  -- lets SQLite use the partial index
ORDER BY finished_us DESC LIMIT 1000 OFFSET ?
"""
IDS_IN_STATE = "SELECT id FROM jobs WHERE queue = ? AND state = ? LIMIT ?"
# Many jobs at once: the ids as a JSON array (one statement, not one per job).
DELETE_JOBS = "DELETE FROM jobs WHERE queue = ? AND id IN (SELECT value FROM json_each(?))"
DELETE_ERRORS = (
    "DELETE FROM job_errors WHERE queue = ? AND job_id IN (SELECT value FROM json_each(?))"
)
DELETE_LOGS = "DELETE FROM job_logs WHERE queue = ? AND job_id IN (SELECT value FROM json_each(?))"
GET_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE queue = ? AND id = ?"
# {ids}: as many "?" as ids, comma-separated.
JOB_BRIEFS = "SELECT id, state, name, attempts FROM jobs WHERE queue = ? AND id IN ({ids})"
GET_ERRORS = "SELECT error FROM job_errors WHERE queue = ? AND job_id = ? ORDER BY rowid"
GET_LOGS = "SELECT line FROM job_logs WHERE queue = ? AND job_id = ? ORDER BY rowid"
LIST_ORDER = {
    "blocked": "created_at, id",
    "waiting": "priority DESC, grp IS NOT NULL, seq",
    "delayed": "run_at, id",
    "active": "lease_until, id",
    "completed": "finished_us DESC, id DESC",
    "failed": "finished_us DESC, id DESC",
    "cancelled": "finished_us DESC, id DESC",
}
LIST_IDS = "SELECT id FROM jobs WHERE queue = ? AND state = ? ORDER BY {order} LIMIT ? OFFSET ?"
# Kept by triggers (migration 9), so a count is one row, not a scan.
COUNTS = "SELECT state, n FROM state_counts WHERE queue = ?"
QUEUES = "SELECT name FROM queues ORDER BY name"
# One primary-key probe per known queue (an index on id alone would need a migration).
FIND_JOB_QUEUE = """
SELECT name FROM queues
WHERE EXISTS (SELECT 1 FROM jobs WHERE jobs.queue = queues.name AND jobs.id = ?)
ORDER BY name LIMIT 1
"""
# The listing (overview): a fixed number of statements whatever the number of queues.
ALL_QUEUES = """
SELECT name, paused, max_active IS NOT NULL OR rate_max IS NOT NULL
    OR group_max_active IS NOT NULL OR group_rate_max IS NOT NULL
FROM queues ORDER BY name
"""
ALL_COUNTS = "SELECT queue, state, n FROM state_counts"
ALL_STATS = "SELECT queue, name, value FROM stats"
SCHEDULED_QUEUES = "SELECT DISTINCT queue FROM schedules"
FORGET_QUEUE = """
DELETE FROM queues WHERE name = :q AND paused = 0 AND max_active IS NULL AND rate_max IS NULL
    AND group_max_active IS NULL AND group_rate_max IS NULL
    AND NOT EXISTS (SELECT 1 FROM jobs WHERE queue = :q)
    AND NOT EXISTS (SELECT 1 FROM schedules WHERE queue = :q)
    AND NOT EXISTS (SELECT 1 FROM outbox WHERE queue = :q)
"""
FORGET_LEFTOVERS = [
    f"DELETE FROM {table} WHERE queue = ?"
    for table in ("stats", "starts", "group_starts", "groups", "dedupe", "state_counts")
]
CANCEL_REQUESTED = """
SELECT queue, id FROM jobs WHERE state = 'active' AND cancel_requested = 1 AND queue IN ({marks})
"""
EMIT = "INSERT INTO events (queue, job_id, event) VALUES (?, ?, ?)"
LAST_EVENT = "SELECT COALESCE(MAX(id), 0) FROM events"
EVENTS_AFTER = (
    "SELECT id, event, job_id FROM events WHERE queue = ? AND id > ? ORDER BY id LIMIT 1000"
)
ALL_EVENTS_AFTER = "SELECT id, queue, event, job_id FROM events WHERE id > ? ORDER BY id LIMIT 1000"
TRIM_EVENTS = "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?"
ADD_STAT = """
INSERT INTO stats (queue, name, value) VALUES (?, ?, ?)
ON CONFLICT (queue, name) DO UPDATE SET value = value + excluded.value
"""
STATS = "SELECT name, value FROM stats WHERE queue = ?"
GET_SCHEDULE_DEF = "SELECT definition FROM schedules WHERE queue = ? AND name = ?"
PUT_SCHEDULE = """
INSERT INTO schedules (queue, name, definition, next_at) VALUES (?, ?, ?, ?)
ON CONFLICT (queue, name) DO UPDATE SET definition = excluded.definition,
    next_at = excluded.next_at
"""
DELETE_SCHEDULE = "DELETE FROM schedules WHERE queue = ? AND name = ?"
LIST_SCHEDULES = (
    "SELECT name, definition, next_at, last_at FROM schedules WHERE queue = ? ORDER BY name"
)
FIRE_SCHEDULE = "UPDATE schedules SET next_at = ?, last_at = COALESCE(?, last_at) WHERE queue = ? AND name = ? AND next_at = ?"
UPSERT_WORKER = "INSERT OR REPLACE INTO workers (id, info, expires_at) VALUES (?, ?, ?)"
DELETE_WORKER = "DELETE FROM workers WHERE id = ?"
EXPIRE_WORKERS = "DELETE FROM workers WHERE expires_at <= ?"
LIVE_WORKERS = "SELECT info, expires_at FROM workers ORDER BY id"

# -- outcome history (sqlite/history.py) -------------------------------------------
ADD_HISTORY = """
INSERT INTO history (queue, step, slot, kind, n) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (queue, step, slot, kind) DO UPDATE SET n = n + excluded.n
RETURNING n
"""
TRIM_HISTORY = "DELETE FROM history WHERE queue = ? AND step = ? AND slot < ?"
READ_HISTORY = """
SELECT queue, slot, kind, n FROM history
WHERE queue IN (SELECT value FROM json_each(?)) AND step = ? AND slot >= ?
"""
# -- keyset paging (paging.py): listing order, each ending in a unique key ---------
# The state is written into the text (not a parameter) so the partial indexes apply.
# SQLite uses a partial index only when the query's terms literally imply its WHERE:
# `state = 'failed'` alone does not imply `state IN (...)`, so the finished listings
# repeat jobs_finished's condition (without it they sort the whole queue: 0.5 s at 200k).
_FINISHED = "state IN ('completed', 'failed', 'cancelled')"
PAGE_FIRST = {
    "blocked": "SELECT id, created_at FROM jobs WHERE queue = ? AND state = 'blocked' "
    "ORDER BY created_at, id LIMIT ?",
    "delayed": "SELECT id, run_at FROM jobs WHERE queue = ? AND state = 'delayed' "
    "ORDER BY run_at, id LIMIT ?",
    "active": "SELECT id, lease_until FROM jobs WHERE queue = ? AND state = 'active' "
    "ORDER BY lease_until, id LIMIT ?",
    "finished": "SELECT id, finished_us FROM jobs WHERE queue = ? AND state = '{state}' "
    f"AND {_FINISHED} ORDER BY finished_us DESC, id DESC LIMIT ?",
}
PAGE_AFTER = {
    "blocked": "SELECT id, created_at FROM jobs WHERE queue = ? AND state = 'blocked' "
    "AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?",
    "delayed": "SELECT id, run_at FROM jobs WHERE queue = ? AND state = 'delayed' "
    "AND (run_at, id) > (?, ?) ORDER BY run_at, id LIMIT ?",
    "active": "SELECT id, lease_until FROM jobs WHERE queue = ? AND state = 'active' "
    "AND (lease_until, id) > (?, ?) ORDER BY lease_until, id LIMIT ?",
    "finished": "SELECT id, finished_us FROM jobs WHERE queue = ? AND state = '{state}' "
    f"AND {_FINISHED} AND (finished_us, id) < (?, ?) ORDER BY finished_us DESC, id DESC LIMIT ?",
}
# Waiting: priority, ungrouped before grouped, then line order ({where}: one of
# PAGE_WHERE; each part of the line is read with one index range scan).
PAGE_WHERE = {
    "all": "1",
    "lower": "priority < ?",
    "upto": "priority <= ?",
    "same_after": "priority = ? AND seq > ?",
    "same_after_id": "priority = ? AND (seq, id) > (?, ?)",
}
PAGE_UNGROUPED = (
    "SELECT id, priority, seq FROM jobs WHERE queue = ? AND state = 'waiting' "
    "AND grp IS NULL AND {where} ORDER BY priority DESC, seq LIMIT ?"
)
PAGE_GROUPED = (
    "SELECT id, priority, seq FROM jobs WHERE queue = ? AND state = 'waiting' "
    "AND grp IS NOT NULL AND {where} ORDER BY priority DESC, seq, id LIMIT ?"
)

# -- audit log (sqlite/audit.py) ------------------------------------------------------
ADD_AUDIT = """
INSERT INTO audit (at, key, action, target, detail) VALUES (?, ?, ?, ?, ?) RETURNING id
"""
TRIM_AUDIT = "DELETE FROM audit WHERE at < ?"
AUDIT_ENTRIES = """
SELECT id, at, key, action, target, detail FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?
"""
# The outcomes a job's worker knows to notify, added to those stored at its enqueue
# (the jobs_moved trigger reads the column as the job ends, in the same transaction).
ADD_NOTIFY = """
UPDATE jobs SET notify = CASE WHEN notify IS NULL THEN ?1 ELSE notify || ',' || ?1 END
WHERE queue = ?2 AND id = ?3 AND token = ?4
"""
TAKE_OUTBOX = """
UPDATE outbox SET due = :hold WHERE id IN
    (SELECT id FROM outbox WHERE queue = :q AND due <= :now ORDER BY due, id LIMIT :n)
RETURNING id, job_id, event, task, attempt, created_at, started_at, finished_at, result,
    error, options
"""
ACK_OUTBOX = "DELETE FROM outbox WHERE queue = ? AND id = ?"
OUTBOX_SIZE = "SELECT COUNT(*) FROM outbox WHERE queue = ?"
OPEN_WINDOW = "SELECT MAX(ends_at) FROM counters WHERE name = ? AND ends_at > ?"
BUMP_COUNTER = """
INSERT INTO counters (name, ends_at, n) VALUES (?, ?, 1)
ON CONFLICT (name, ends_at) DO UPDATE SET n = n + 1
RETURNING n
"""
# A window is kept one more window after its end (as on Redis), then dropped.
FORGET_COUNTERS = "DELETE FROM counters WHERE name = ? AND ends_at < ?"
READ_COUNTER = "SELECT n FROM counters WHERE name = ? AND ends_at = ?"
OUTBOX_DUE = "SELECT 1 FROM outbox WHERE queue = ? AND due <= ? LIMIT 1"
SET_ENDPOINT = "INSERT OR REPLACE INTO endpoints (key, state) VALUES (?, ?)"
DROP_ENDPOINT = "DELETE FROM endpoints WHERE key = ?"
ENDPOINTS = "SELECT key, state FROM endpoints"
