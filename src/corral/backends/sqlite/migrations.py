"""Numbered schema migrations; the database records the version it is at.

Each entry moves the schema from version N-1 to N and runs in the same
transaction as the version bump, so a crash mid-migration leaves the old schema.
Never edit a shipped migration: append a new one.
"""

from __future__ import annotations

import sqlite3

from corral.errors import ConfigurationError

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS: list[str] = [
    # 1: jobs, their errors and logs, queues, workers.
    """
    CREATE TABLE jobs (
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        data BLOB NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        seq INTEGER NOT NULL,
        options BLOB NOT NULL DEFAULT x'',
        attempts INTEGER NOT NULL DEFAULT 0,
        stalls INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        finished_us INTEGER,
        run_at INTEGER,
        lease_until INTEGER,
        token TEXT,
        worker TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        progress BLOB,
        result BLOB,
        PRIMARY KEY (queue, id)
    );
    CREATE INDEX jobs_waiting ON jobs (queue, priority DESC, seq) WHERE state = 'waiting';
    CREATE INDEX jobs_delayed ON jobs (queue, run_at) WHERE state = 'delayed';
    CREATE INDEX jobs_active ON jobs (queue, lease_until) WHERE state = 'active';
    CREATE INDEX jobs_finished ON jobs (queue, state, finished_us)
        WHERE state IN ('completed', 'failed', 'cancelled');
    CREATE TABLE job_errors (queue TEXT NOT NULL, job_id TEXT NOT NULL, error BLOB NOT NULL);
    CREATE INDEX job_errors_job ON job_errors (queue, job_id);
    CREATE TABLE job_logs (queue TEXT NOT NULL, job_id TEXT NOT NULL, line TEXT NOT NULL);
    CREATE INDEX job_logs_job ON job_logs (queue, job_id);
    CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        paused INTEGER NOT NULL DEFAULT 0,
        seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE workers (id TEXT PRIMARY KEY, info BLOB NOT NULL, expires_at INTEGER NOT NULL);
    """,
    # 2: lifecycle events (a bounded log the event streams tail) and queue totals.
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        job_id TEXT NOT NULL,
        event TEXT NOT NULL
    );
    CREATE INDEX events_queue ON events (queue, id);
    CREATE TABLE stats (
        queue TEXT NOT NULL,
        name TEXT NOT NULL,
        value REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (queue, name)
    );
    """,
    # 3: schedules (cron / interval), one pending tick each.
    """
    CREATE TABLE schedules (
        queue TEXT NOT NULL,
        name TEXT NOT NULL,
        definition BLOB NOT NULL,
        next_at INTEGER,
        last_at INTEGER,
        PRIMARY KEY (queue, name)
    );
    """,
    # 4: flow control: per-queue limits and the log of recent starts.
    """
    ALTER TABLE queues ADD COLUMN max_active INTEGER;
    ALTER TABLE queues ADD COLUMN rate_max INTEGER;
    ALTER TABLE queues ADD COLUMN rate_ms INTEGER;
    CREATE TABLE starts (queue TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE INDEX starts_queue ON starts (queue, at);
    """,
    # 5: groups (tenants) taking turns, per-group limits, dedupe keys. Ungrouped and
    # grouped waiting jobs get separate indexes so neither scans past the other.
    # Triggers keep each group's waiting/active counts, whatever moved the job.
    """
    ALTER TABLE jobs ADD COLUMN grp TEXT;
    ALTER TABLE jobs ADD COLUMN dedupe TEXT;
    DROP INDEX jobs_waiting;
    CREATE INDEX jobs_waiting ON jobs (queue, priority DESC, seq)
        WHERE state = 'waiting' AND grp IS NULL;
    CREATE INDEX jobs_group_waiting ON jobs (queue, grp, priority DESC, seq)
        WHERE state = 'waiting' AND grp IS NOT NULL;
    ALTER TABLE queues ADD COLUMN turn INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE queues ADD COLUMN uturn INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE queues ADD COLUMN group_max_active INTEGER;
    ALTER TABLE queues ADD COLUMN group_rate_max INTEGER;
    ALTER TABLE queues ADD COLUMN group_rate_ms INTEGER;
    CREATE TABLE groups (
        queue TEXT NOT NULL,
        grp TEXT NOT NULL,
        waiting INTEGER NOT NULL DEFAULT 0,
        active INTEGER NOT NULL DEFAULT 0,
        turn INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (queue, grp)
    );
    CREATE INDEX groups_turn ON groups (queue, turn) WHERE waiting > 0;
    CREATE TABLE group_starts (queue TEXT NOT NULL, grp TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE INDEX group_starts_grp ON group_starts (queue, grp, at);
    CREATE TABLE dedupe (
        queue TEXT NOT NULL,
        key TEXT NOT NULL,
        job_id TEXT NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (queue, key)
    );
    CREATE TRIGGER jobs_group_insert AFTER INSERT ON jobs WHEN NEW.grp IS NOT NULL
    BEGIN
        UPDATE queues SET turn = turn + 1 WHERE name = NEW.queue;
        INSERT INTO groups (queue, grp) VALUES (NEW.queue, NEW.grp) ON CONFLICT DO NOTHING;
        UPDATE groups SET
            turn = CASE WHEN waiting <= 0 AND NEW.state = 'waiting'
                THEN (SELECT turn FROM queues WHERE name = NEW.queue) ELSE turn END,
            waiting = waiting + (NEW.state = 'waiting'),
            active = active + (NEW.state = 'active')
        WHERE queue = NEW.queue AND grp = NEW.grp;
    END;
    CREATE TRIGGER jobs_group_update AFTER UPDATE OF state ON jobs
    WHEN NEW.grp IS NOT NULL AND OLD.state != NEW.state
    BEGIN
        UPDATE queues SET turn = turn + 1 WHERE name = NEW.queue AND NEW.state = 'waiting';
        INSERT INTO groups (queue, grp) VALUES (NEW.queue, NEW.grp) ON CONFLICT DO NOTHING;
        UPDATE groups SET
            turn = CASE WHEN waiting <= 0 AND NEW.state = 'waiting'
                THEN (SELECT turn FROM queues WHERE name = NEW.queue) ELSE turn END,
            waiting = waiting + (NEW.state = 'waiting') - (OLD.state = 'waiting'),
            active = active + (NEW.state = 'active') - (OLD.state = 'active')
        WHERE queue = NEW.queue AND grp = NEW.grp;
        DELETE FROM groups
        WHERE queue = NEW.queue AND grp = NEW.grp AND waiting <= 0 AND active <= 0;
    END;
    CREATE TRIGGER jobs_group_delete AFTER DELETE ON jobs WHEN OLD.grp IS NOT NULL
    BEGIN
        UPDATE groups SET
            waiting = waiting - (OLD.state = 'waiting'),
            active = active - (OLD.state = 'active')
        WHERE queue = OLD.queue AND grp = OLD.grp;
        DELETE FROM groups
        WHERE queue = OLD.queue AND grp = OLD.grp AND waiting <= 0 AND active <= 0;
    END;
    CREATE TRIGGER jobs_dedupe_delete AFTER DELETE ON jobs WHEN OLD.dedupe IS NOT NULL
    BEGIN
        DELETE FROM dedupe WHERE queue = OLD.queue AND key = OLD.dedupe AND job_id = OLD.id;
    END;
    """,
    # 6: outcome history: per queue, counts per time slot of one minute (step 1) or
    # fifteen minutes (step 15); kind -1 = failed, 0.. = completions per duration bucket.
    """
    CREATE TABLE history (
        queue TEXT NOT NULL,
        step INTEGER NOT NULL,
        slot INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (queue, step, slot, kind)
    ) WITHOUT ROWID;
    """,
    # 7: keyset paging (backends/paging.py): every listing order ends in the job id, so
    # a page starts right after the last row seen with one index range scan.
    # The replaced indexes are their prefixes: every query that used them still can.
    """
    DROP INDEX jobs_delayed;
    CREATE INDEX jobs_delayed ON jobs (queue, run_at, id) WHERE state = 'delayed';
    DROP INDEX jobs_active;
    CREATE INDEX jobs_active ON jobs (queue, lease_until, id) WHERE state = 'active';
    DROP INDEX jobs_finished;
    CREATE INDEX jobs_finished ON jobs (queue, state, finished_us, id)
        WHERE state IN ('completed', 'failed', 'cancelled');
    CREATE INDEX jobs_group_line ON jobs (queue, priority DESC, seq, id)
        WHERE state = 'waiting' AND grp IS NOT NULL;
    """,
    # 8: the audit log (sqlite/audit.py): who did what to which queue or job, and when.
    """
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        key TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail BLOB NOT NULL
    );
    CREATE INDEX audit_at ON audit (at);
    """,
    # 9: jobs per (queue, state) kept by triggers in the transaction that moves a job, so
    # counts are a few rows read instead of a scan of the queue's jobs (0.65 s at 200k).
    """
    CREATE TABLE state_counts (
        queue TEXT NOT NULL,
        state TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (queue, state)
    ) WITHOUT ROWID;
    INSERT INTO state_counts (queue, state, n)
        SELECT queue, state, COUNT(*) FROM jobs GROUP BY queue, state;
    CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs
    BEGIN
        INSERT INTO state_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
            ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs
    WHEN OLD.state != NEW.state
    BEGIN
        UPDATE state_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
        INSERT INTO state_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
            ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs
    BEGIN
        UPDATE state_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
    END;
    """,
    # 10: notifications (issue 17). A job with some ('notify': the outcomes wanted,
    # comma-separated) gets an outbox row, by trigger, in the transaction that ends it:
    # every path that ends a job (complete, fail, cancel, reap...) is covered, and no
    # crash can separate the outcome from its notification. The row is the outcome as
    # recorded (retention may delete the job before delivery); errors are added before
    # the state changes, so the last one is the failure's. ``due``: when it may next be
    # taken (sqlite/outbox.py). Endpoint states and windowed counters for deliveries.
    """
    ALTER TABLE jobs ADD COLUMN notify TEXT;
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        job_id TEXT NOT NULL,
        event TEXT NOT NULL,
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        created_at INTEGER,
        started_at INTEGER,
        finished_at INTEGER,
        result BLOB,
        error BLOB,
        options BLOB NOT NULL,
        due INTEGER NOT NULL
    );
    CREATE INDEX outbox_due ON outbox (queue, due);
    CREATE TRIGGER jobs_outbox AFTER UPDATE OF state ON jobs
    WHEN NEW.notify IS NOT NULL AND OLD.state != NEW.state
        AND NEW.state IN ('completed', 'failed', 'cancelled')
        AND instr(',' || NEW.notify || ',', ',' || NEW.state || ',') > 0
    BEGIN
        INSERT INTO outbox (queue, job_id, event, task, attempt, created_at, started_at,
            finished_at, result, error, options, due)
        VALUES (NEW.queue, NEW.id, NEW.state, NEW.name, NEW.attempts, NEW.created_at,
            NEW.started_at, NEW.finished_at,
            CASE WHEN NEW.state = 'completed' THEN NEW.result END,
            CASE WHEN NEW.state != 'completed' THEN (SELECT e.error FROM job_errors e
                WHERE e.queue = NEW.queue AND e.job_id = NEW.id ORDER BY e.rowid DESC LIMIT 1)
            END,
            NEW.options, COALESCE(NEW.finished_at, 0));
    END;
    CREATE TABLE endpoints (key TEXT PRIMARY KEY, state BLOB NOT NULL);
    CREATE TABLE counters (
        name TEXT NOT NULL,
        ends_at INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (name, ends_at)
    ) WITHOUT ROWID;
    """,
    # 11: flows (issue 20). A job with dependencies waits 'blocked'; its edges hold the
    # outcome each dependency handed it. A trigger notes every job with dependents that
    # ends (whatever path ends it) in flow_settle, which the same transaction drains
    # before it commits (sqlite/flows.py: settle), so no outcome is lost between them.
    """
    ALTER TABLE jobs ADD COLUMN flow TEXT;
    CREATE INDEX jobs_blocked ON jobs (queue, created_at) WHERE state = 'blocked';
    CREATE TABLE flows (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, spec BLOB NOT NULL);
    CREATE TABLE flow_edges (
        dep_queue TEXT NOT NULL,
        dep_id TEXT NOT NULL,
        name TEXT NOT NULL,
        queue TEXT NOT NULL,
        job_id TEXT NOT NULL,
        policy TEXT NOT NULL,
        pass_result INTEGER NOT NULL,
        outcome TEXT,
        result BLOB,
        error BLOB,
        PRIMARY KEY (dep_queue, dep_id, name)
    ) WITHOUT ROWID;
    CREATE INDEX flow_edges_from ON flow_edges (queue, job_id);
    CREATE TABLE flow_settle (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        job_id TEXT NOT NULL,
        state TEXT NOT NULL
    );
    CREATE TRIGGER jobs_flow AFTER UPDATE OF state ON jobs
    WHEN OLD.state != NEW.state AND NEW.state IN ('completed', 'failed', 'cancelled')
        AND NEW.flow IS NOT NULL
    BEGIN
        INSERT INTO flow_settle (queue, job_id, state) VALUES (NEW.queue, NEW.id, NEW.state);
    END;
    """,
    # 12: an unfinished job of a flow that is deleted (remove, drain) reaches its
    # dependents as a cancellation, so none waits for it for ever.
    """
    CREATE TRIGGER jobs_flow_delete AFTER DELETE ON jobs
    WHEN OLD.flow IS NOT NULL AND OLD.state NOT IN ('completed', 'failed', 'cancelled')
    BEGIN
        INSERT INTO flow_settle (queue, job_id, state) VALUES (OLD.queue, OLD.id, 'cancelled');
    END;
    """,
    # 13: flows newest first (Backend.list_flows: the dashboard's and CLI's listing).
    """
    CREATE INDEX flows_newest ON flows (created_at, id);
    """,
    # 14: flow records do not outlive their jobs: deleting a job of a flow (retention,
    # remove, drain) deletes the edges it waited on, and the flow's record with the
    # last of its jobs.
    """
    CREATE INDEX jobs_by_flow ON jobs (flow) WHERE flow IS NOT NULL;
    CREATE TRIGGER jobs_flow_prune AFTER DELETE ON jobs
    WHEN OLD.flow IS NOT NULL
    BEGIN
        DELETE FROM flow_edges WHERE dep_queue = OLD.queue AND dep_id = OLD.id;
        DELETE FROM flows WHERE id = OLD.flow
            AND NOT EXISTS (SELECT 1 FROM jobs WHERE flow = OLD.flow);
    END;
    """,
    # 15: one trigger per event instead of two to five. SQLite runs every trigger on a
    # row as a sub-program of its own (a frame set up even when its WHEN is false):
    # each claimed and each completed job paid four, each deleted one five. Same
    # statements, same order (SQLite fires the newest trigger first), each guarded by
    # its old trigger's condition; the counts are kept with one upsert instead of two
    # statements (a job's old state always has its row).
    """
    DROP TRIGGER jobs_group_insert;
    DROP TRIGGER jobs_count_insert;
    CREATE TRIGGER jobs_added AFTER INSERT ON jobs
    BEGIN
        INSERT INTO state_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
            ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
        UPDATE queues SET turn = turn + 1 WHERE name = NEW.queue AND NEW.grp IS NOT NULL;
        INSERT INTO groups (queue, grp) SELECT NEW.queue, NEW.grp WHERE NEW.grp IS NOT NULL
            ON CONFLICT DO NOTHING;
        UPDATE groups SET
            turn = CASE WHEN waiting <= 0 AND NEW.state = 'waiting'
                THEN (SELECT turn FROM queues WHERE name = NEW.queue) ELSE turn END,
            waiting = waiting + (NEW.state = 'waiting'),
            active = active + (NEW.state = 'active')
        WHERE NEW.grp IS NOT NULL AND queue = NEW.queue AND grp = NEW.grp;
    END;
    DROP TRIGGER jobs_flow;
    DROP TRIGGER jobs_outbox;
    DROP TRIGGER jobs_count_update;
    DROP TRIGGER jobs_group_update;
    CREATE TRIGGER jobs_moved AFTER UPDATE OF state ON jobs WHEN OLD.state != NEW.state
    BEGIN
        INSERT INTO flow_settle (queue, job_id, state)
            SELECT NEW.queue, NEW.id, NEW.state
            WHERE NEW.flow IS NOT NULL AND NEW.state IN ('completed', 'failed', 'cancelled');
        INSERT INTO outbox (queue, job_id, event, task, attempt, created_at, started_at,
            finished_at, result, error, options, due)
        SELECT NEW.queue, NEW.id, NEW.state, NEW.name, NEW.attempts, NEW.created_at,
            NEW.started_at, NEW.finished_at,
            CASE WHEN NEW.state = 'completed' THEN NEW.result END,
            CASE WHEN NEW.state != 'completed' THEN (SELECT e.error FROM job_errors e
                WHERE e.queue = NEW.queue AND e.job_id = NEW.id ORDER BY e.rowid DESC LIMIT 1)
            END,
            NEW.options, COALESCE(NEW.finished_at, 0)
        WHERE NEW.notify IS NOT NULL AND NEW.state IN ('completed', 'failed', 'cancelled')
            AND instr(',' || NEW.notify || ',', ',' || NEW.state || ',') > 0;
        INSERT INTO state_counts (queue, state, n)
            VALUES (OLD.queue, OLD.state, -1), (NEW.queue, NEW.state, 1)
            ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n;
        UPDATE queues SET turn = turn + 1
        WHERE name = NEW.queue AND NEW.state = 'waiting' AND NEW.grp IS NOT NULL;
        INSERT INTO groups (queue, grp) SELECT NEW.queue, NEW.grp WHERE NEW.grp IS NOT NULL
            ON CONFLICT DO NOTHING;
        UPDATE groups SET
            turn = CASE WHEN waiting <= 0 AND NEW.state = 'waiting'
                THEN (SELECT turn FROM queues WHERE name = NEW.queue) ELSE turn END,
            waiting = waiting + (NEW.state = 'waiting') - (OLD.state = 'waiting'),
            active = active + (NEW.state = 'active') - (OLD.state = 'active')
        WHERE NEW.grp IS NOT NULL AND queue = NEW.queue AND grp = NEW.grp;
        DELETE FROM groups
        WHERE NEW.grp IS NOT NULL AND queue = NEW.queue AND grp = NEW.grp
            AND waiting <= 0 AND active <= 0;
    END;
    DROP TRIGGER jobs_flow_prune;
    DROP TRIGGER jobs_flow_delete;
    DROP TRIGGER jobs_count_delete;
    DROP TRIGGER jobs_dedupe_delete;
    DROP TRIGGER jobs_group_delete;
    CREATE TRIGGER jobs_deleted AFTER DELETE ON jobs
    BEGIN
        DELETE FROM flow_edges
        WHERE OLD.flow IS NOT NULL AND dep_queue = OLD.queue AND dep_id = OLD.id;
        DELETE FROM flows WHERE OLD.flow IS NOT NULL AND id = OLD.flow
            AND NOT EXISTS (SELECT 1 FROM jobs WHERE flow = OLD.flow);
        INSERT INTO flow_settle (queue, job_id, state)
            SELECT OLD.queue, OLD.id, 'cancelled'
            WHERE OLD.flow IS NOT NULL
                AND OLD.state NOT IN ('completed', 'failed', 'cancelled');
        UPDATE state_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
        DELETE FROM dedupe WHERE OLD.dedupe IS NOT NULL
            AND queue = OLD.queue AND key = OLD.dedupe AND job_id = OLD.id;
        UPDATE groups SET
            waiting = waiting - (OLD.state = 'waiting'),
            active = active - (OLD.state = 'active')
        WHERE OLD.grp IS NOT NULL AND queue = OLD.queue AND grp = OLD.grp;
        DELETE FROM groups
        WHERE OLD.grp IS NOT NULL AND queue = OLD.queue AND grp = OLD.grp
            AND waiting <= 0 AND active <= 0;
    END;
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date inside one IMMEDIATE transaction; returns the version.

    Refuses a database written by a newer Corral (its schema may not be readable).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS corral_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM corral_schema").fetchone()
        version = row[0] if row else 0
        if row is None:
            conn.execute("INSERT INTO corral_schema (version) VALUES (0)")
        if version > len(MIGRATIONS):
            raise ConfigurationError(
                f"the database is at schema version {version}, newer than this Corral "
                f"understands ({len(MIGRATIONS)}); upgrade corral"
            )
        for number in range(version + 1, len(MIGRATIONS) + 1):
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute("UPDATE corral_schema SET version = ?", (number,))
        conn.execute("COMMIT")
        return len(MIGRATIONS)
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    # executescript() would commit the open transaction; split and run one by one
    # (a trigger body holds ";" too: a statement ends where SQLite says it is complete).
    out: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                out.append(pending.strip())
            pending = ""
    return out
