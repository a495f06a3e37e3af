"""Every Redis key Corral uses, built in one place.

All keys of one queue share the hash tag ``{queue}`` so each script touches a
single slot and the same code runs on Redis Cluster::

    {prefix}:{queue}:fifo        list  ungrouped waiting jobs of priority 0, in line order
    {prefix}:{queue}:waiting     zset  other ungrouped waiting jobs; score = priority band + sequence
    {prefix}:{queue}:gw          zset  grouped waiting jobs (same score), for counts and lists
    {prefix}:{queue}:g:{group}   zset  one group's waiting jobs (same score)
    {prefix}:{queue}:groups      zset  groups in line for a turn; score = turn (meta 'turn')
    {prefix}:{queue}:gactive     hash  group -> jobs running
    {prefix}:{queue}:gcapped     set   groups held by the per-group concurrency cap
    {prefix}:{queue}:gparked     zset  groups held by the per-group rate; score = ms free again
    {prefix}:{queue}:grate:{g}   zset  a group's recent starts (per-group rate limit)
    {prefix}:{queue}:rate        zset  the queue's recent starts (rate limit)
    {prefix}:{queue}:dd:{key}    string dedupe key -> id of the job holding it
    {prefix}:{queue}:active      zset  leased jobs; score = lease deadline (ms)
    {prefix}:{queue}:delayed     zset  score = due time (ms)
    {prefix}:{queue}:completed   zset  score = finish time (microseconds)
    {prefix}:{queue}:failed      zset  the dead-letter set; score = finish time (us)
    {prefix}:{queue}:cancelled   zset  score = finish time (us)
    {prefix}:{queue}:meta        hash  paused flag, enqueue sequence, limits, turns, counters
    {prefix}:{queue}:marker      zset  at most one member: "there may be work" for blocked workers
    {prefix}:{queue}:wake:{id}   zset  wakes one blocked worker that is stopping (expires)
    {prefix}:{queue}:wk          zset  live workers serving the queue; score = mark expiry (ms)
    {prefix}:{queue}:j:{id}      hash  the job
    {prefix}:{queue}:je:{id}     list  one JSON error per failed attempt (hash field 'je')
    {prefix}:{queue}:jl:{id}     list  log lines (hash field 'jl')
    {prefix}:{queue}:sched       hash  schedule name -> definition (JSON)
    {prefix}:{queue}:sched:next  zset  schedule name -> pending tick (ms); absent while paused
    {prefix}:{queue}:sched:last  hash  schedule name -> last tick fired (ms)
    {prefix}:{queue}:hm:{hour}   hash  outcomes per minute of one hour (history, expires)
    {prefix}:{queue}:hq:{day}    hash  outcomes per quarter hour of one day (history, expires)
    {prefix}:{queue}:outbox      zset  outcomes to notify (JSON); score = ms when due to be taken
    {prefix}:{queue}:blocked     zset  flow jobs waiting for dependencies; score = ctime (ms)
    {prefix}:{queue}:handoff     zset  flow outcomes for dependents in other queues (JSON);
                                       score = ms when due to be taken
    {prefix}:{queue}:{db}:events   pub/sub channel: "<event> <job id> [<job id> ...]"
    {prefix}:{queue}:{db}:control  pub/sub channel: "cancel <job id>" for workers
    {prefix}:queues              set   names of every queue used
    {prefix}:{queue}:fa:{n}:{flow id}  string  step n of the flow's creation intent
                                       was applied here (Redis Cluster; expires)
    {prefix}:{queue}:ff:{flow id}  hash  a fail-fast flow's jobs in this queue: id -> name,
                                       '!me' queue, '!q' other queues, '!x' fired
    {prefix}:{queue}:fgone       set   ids of flows that lost a job here (prune_flows)
    {prefix}:{flows}:f:{id}      string a flow's jobs and edges (JSON)
    {prefix}:{flows}:fnew        zset  flow ids; score = created_at (ms), for list_flows
    {prefix}:{flows}:fi:{id}     string a flow's creation intent: its steps (JSON; Cluster)
    {prefix}:{flows}:fpending    zset  flows with an intent; score = written at (ms)
    {prefix}:{workers}:live      set   ids of registered workers
    {prefix}:{workers}:w:{id}    string JSON worker info
    {prefix}:{audit}:log         stream audit entries (k key, a action, t target, d detail)
    {prefix}:{notify}:ep         hash  notification endpoint key -> state (JSON)
    {prefix}:{notify}:cnt:{name}:{end}  string  a windowed counter (expires)
    {prefix}:{notify}:cntw:{name}  string  end of the counter's current window (expires with it)

Every key that ends in caller-chosen text (a job id, group, dedupe key, worker id) has
a prefix of its own that no other key of the queue starts with (``j:``, ``je:``,
``jl:``, ``g:``, ``grate:``, ``dd:``, ``wake:``, ``fa:``, ``ff:``): ids may contain ``:``, so a suffix
(``j:{id}:err``) would let job ``V:err``'s hash be job ``V``'s error list.
Schedule names are hash fields, never part of a key. A queue named ``workers`` shares
its hash tag with the worker registry: no queue key is ``live`` or starts with ``w:``;
likewise a queue named ``audit`` and the audit log: no queue key is ``log``, and a
queue named ``notify``: no queue key is ``ep`` or starts with ``cnt:`` or ``cntw:``; and a
queue named ``flows``: no queue key starts with ``f:`` or ``fi:`` or is ``fnew`` or
``fpending``.
Pub/sub channels are server-wide, not per database: they carry the database number
``{db}`` so that apps on two databases of one server never hear each other. The scripts
learn it from their first argument, ``QueueKeys.script_base`` (``"<db> <key base>"``;
``"<db>s <key base>"`` on Redis Cluster, where they publish with ``SPUBLISH``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HISTORY_PER_KEY", "QueueKeys", "RegistryKeys"]

#: History slots per hash, by slot width (ms): an hour of minutes, a day of quarter hours.
HISTORY_PER_KEY = {60_000: 60, 900_000: 96}


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """Key names of one queue."""

    base: str
    fifo: str
    wait: str
    grouped_wait: str
    active: str
    delayed: str
    completed: str
    failed: str
    cancelled: str
    meta: str
    marker: str
    job_prefix: str
    events: str
    control: str
    script_base: str

    @classmethod
    def build(cls, prefix: str, queue: str, db: int = 0, sharded: bool = False) -> QueueKeys:
        """The keys of ``queue``; ``sharded`` makes the scripts publish with
        ``SPUBLISH`` (Redis Cluster: a message stays on its queue's shard)."""
        base = f"{prefix}:{{{queue}}}:"
        return cls(
            base=base,
            fifo=base + "fifo",
            wait=base + "waiting",
            grouped_wait=base + "gw",
            active=base + "active",
            delayed=base + "delayed",
            completed=base + "completed",
            failed=base + "failed",
            cancelled=base + "cancelled",
            meta=base + "meta",
            marker=base + "marker",
            job_prefix=base + "j:",
            events=f"{base}{db}:events",
            control=f"{base}{db}:control",
            script_base=f"{db}{'s' if sharded else ''} {base}",
        )

    def job(self, job_id: str) -> str:
        return self.job_prefix + job_id

    def wake(self, worker_id: str) -> str:
        return self.base + "wake:" + worker_id

    def errors(self, job_id: str) -> str:
        return self.base + "je:" + job_id

    def logs(self, job_id: str) -> str:
        return self.base + "jl:" + job_id

    def old_lists(self, job_id: str) -> tuple[str, str]:
        """The error and log lists of a job stored before the ``je:``/``jl:`` layout
        (hash fields ``xe``/``xl``); either name may be another job's hash."""
        return self.job(job_id) + ":err", self.job(job_id) + ":log"

    def state_set(self, state: str) -> str:
        return self.base + state

    def history(self, step: int, slot: int) -> str:
        """The history hash holding slot number ``slot`` (store ms // ``step``) of the
        ``step``-ms slots: one per hour for minutes, one per day for quarter hours.
        Its fields are ``"<slot>:f"`` (failed) and ``"<slot>:<i>"`` (completions in
        duration bucket ``i``); see ``history_add`` in ``lua/includes/common.lua``."""
        if step == 60_000:
            return f"{self.base}hm:{slot // HISTORY_PER_KEY[step]}"
        return f"{self.base}hq:{slot // HISTORY_PER_KEY[step]}"


@dataclass(frozen=True, slots=True)
class RegistryKeys:
    """Keys that are not tied to one queue."""

    queues: str
    workers: str
    worker_prefix: str
    audit: str
    endpoints: str
    counter_prefix: str
    window_prefix: str
    flow_prefix: str
    flow_index: str
    flow_intent_prefix: str
    flow_intents: str

    @classmethod
    def build(cls, prefix: str) -> RegistryKeys:
        return cls(
            queues=f"{prefix}:queues",
            workers=f"{prefix}:{{workers}}:live",
            worker_prefix=f"{prefix}:{{workers}}:w:",
            audit=f"{prefix}:{{audit}}:log",
            endpoints=f"{prefix}:{{notify}}:ep",
            counter_prefix=f"{prefix}:{{notify}}:cnt:",
            window_prefix=f"{prefix}:{{notify}}:cntw:",
            flow_prefix=f"{prefix}:{{flows}}:f:",
            flow_index=f"{prefix}:{{flows}}:fnew",
            flow_intent_prefix=f"{prefix}:{{flows}}:fi:",
            flow_intents=f"{prefix}:{{flows}}:fpending",
        )
