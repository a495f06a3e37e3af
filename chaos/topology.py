"""Distributed Redis deployments on loopback, from the ``redis-server`` binary.

:class:`ClusterProcs` is a Redis Cluster (``primaries`` shards, ``replicas`` each) with a
short node timeout, so a killed primary's replica takes over within about two seconds.
:class:`SentinelProcs` is one primary, one replica and three sentinels watching them as
service ``corral``. Both never touch a Redis they did not start (free loopback ports,
their own directories) and are used by the tests, the chaos scenarios and the bench.
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from chaos.harness import RedisProc, wait_until

__all__ = ["ClusterProcs", "SentinelProcs"]

SERVICE = "corral"
NODE_TIMEOUT_MS = 1000
SLOTS = 16384


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class _Proc(RedisProc):
    def __init__(self, directory: Path, port: int | None = None, **options: str) -> None:
        super().__init__(directory, **options)
        if port is not None:
            self.port = port


def _tls_config(tls: Path) -> dict[str, str]:
    """Server config for TLS only, from ``ca.pem``, ``node.pem`` and ``node.key``."""
    return {
        "tls_replication": "yes",
        "tls_cert_file": str(tls / "node.pem"),
        "tls_key_file": str(tls / "node.key"),
        "tls_ca_cert_file": str(tls / "ca.pem"),
        "tls_auth_clients": "no",
    }


class ClusterProcs:
    """A Redis Cluster on loopback: ``url`` is its ``redis+cluster://`` URL."""

    def __init__(
        self,
        directory: Path,
        primaries: int = 3,
        replicas: int = 1,
        tls: Path | None = None,
        **options: str,
    ) -> None:
        """``options``: extra config for every node (``appendonly``, ``appendfsync``...);
        ``tls``: a directory with ``ca.pem``, ``node.pem`` and ``node.key``, for a
        cluster that speaks only TLS (clients, cluster bus and replication)."""
        self.tls = tls
        if primaries < 1 or replicas < 0:
            raise ValueError(f"need primaries >= 1 and replicas >= 0, not {primaries}/{replicas}")
        if primaries < 3 and replicas:
            raise ValueError("a cluster of fewer than 3 primaries is made without replicas")
        self.dir = directory
        self.primaries = primaries
        self.replicas = replicas
        self.options = options
        self.nodes: list[RedisProc] = []

    @property
    def url(self) -> str:
        seeds = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])
        if self.tls is not None:
            return f"rediss+cluster://{seeds}/?ssl_ca_certs={self.tls / 'ca.pem'}"
        return f"redis+cluster://{seeds}/"

    def start(self) -> ClusterProcs:
        for i in range(self.primaries * (1 + self.replicas)):
            node = _Proc(
                self.dir / f"n{i}",
                port=cluster_port(),
                cluster_enabled="yes",
                cluster_config_file="nodes.conf",
                cluster_node_timeout=str(NODE_TIMEOUT_MS),
                # A replica of a dead primary takes over however stale it is: the tests
                # measure what that loses.
                cluster_replica_validity_factor="0",
                # A replica's first full sync starts at once, not after 5 s.
                repl_diskless_sync_delay="0",
                **self._tls_options(),
                **self.options,
            )
            if self.tls is not None:
                node.options["tls_port"], node.options["port"] = str(node.port), "0"
                node.tls = {"ssl": True, "ssl_ca_certs": str(self.tls / "ca.pem")}
            self.nodes.append(node.start())
        if self.primaries < 3:
            self._join()
        else:
            self._create()
        if not wait_until(self.healthy, 30):
            raise RuntimeError(f"the cluster in {self.dir} did not become healthy")
        return self

    def _join(self) -> None:
        """What ``redis-cli --cluster create`` does, which refuses fewer than three
        primaries (the shard-scaling bench starts one and two): each node gets an equal
        share of the slots and a config epoch of its own, then they meet."""
        share = SLOTS // self.primaries
        for i, node in enumerate(self.nodes):
            last = SLOTS - 1 if i == self.primaries - 1 else (i + 1) * share - 1
            with self.client(node) as client:
                client.execute_command("CLUSTER", "ADDSLOTS", *range(i * share, last + 1))
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        with self.client(self.nodes[0]) as client:
            for node in self.nodes[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)

    def _tls_options(self) -> dict[str, str]:
        return {} if self.tls is None else {"tls_cluster": "yes", **_tls_config(self.tls)}

    def _create(self) -> None:
        cli = shutil.which("redis-cli") or "redis-cli"
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        tls = [] if self.tls is None else ["--tls", "--cacert", str(self.tls / "ca.pem")]
        subprocess.run(
            [
                cli,
                *tls,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )

    def client(self, node: RedisProc) -> redis.Redis:
        return node.client()

    def healthy(self) -> bool:
        """Every live node says the cluster is ok and has all its replicas in sync."""
        try:
            for node in self.alive():
                with self.client(node) as client:
                    if client.cluster("info")["cluster_state"] != "ok":
                        return False
                    # Until its first sync ends a replica holds nothing: a failover to
                    # it would lose everything, not just the last writes.
                    replication = client.info("replication")
                    if replication["role"] == "slave" and (
                        replication.get("master_link_status") != "up"
                    ):
                        return False
            return len(self.primary_nodes()) == self.primaries
        except redis.RedisError:
            return False

    def alive(self) -> list[RedisProc]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def slot_owners(self) -> dict[int, tuple[int, int]]:
        """Port of the primary serving each slot range's start -> (end, port), as the
        first live node answering sees it."""
        for node in self.alive():
            try:
                with self.client(node) as client:
                    ranges = client.execute_command("CLUSTER", "SLOTS")
            except redis.RedisError:
                continue
            return {int(s): (int(e), int(p[1])) for s, e, p, *_ in ranges}
        raise RuntimeError("no cluster node answers")

    def primary_nodes(self) -> list[RedisProc]:
        """The live nodes that serve slots."""
        ports = {port for _, port in self.slot_owners().values()}
        return [n for n in self.alive() if n.port in ports]

    def slot_of(self, key: str) -> int:
        with self.client(self.alive()[0]) as client:
            return int(client.cluster("keyslot", key))

    def owner(self, key: str) -> RedisProc:
        """The live primary that owns ``key``'s slot."""
        return self.slot_owner(self.slot_of(key))

    def slot_owner(self, slot: int) -> RedisProc:
        """The live primary that serves ``slot``."""
        for start, (end, port) in self.slot_owners().items():
            if start <= slot <= end:
                for node in self.alive():
                    if node.port == port:
                        return node
        raise RuntimeError(f"no live primary serves slot {slot}")

    def node_id(self, node: RedisProc) -> str:
        with self.client(node) as client:
            return str(client.execute_command("CLUSTER", "MYID").decode())

    def move_slot(self, slot: int, to: RedisProc, batch: int = 50, pause: float = 0.0) -> int:
        """Move ``slot`` to the primary ``to`` the way ``redis-cli --cluster reshard``
        does (which cannot pick the slot): IMPORTING on ``to``, MIGRATING on its owner,
        ``MIGRATE ... KEYS`` in batches of ``batch`` keys (``pause`` seconds apart, so a
        migration under load lasts long enough to be hit), then SETSLOT NODE on every
        primary. Returns the number of keys moved; raises redis.RedisError if a step
        fails (a key that exists on both sides fails MIGRATE with BUSYKEY)."""
        source = self.slot_owner(slot)
        if source is to:
            raise ValueError(f"slot {slot} is already served by port {to.port}")
        source_id, target_id = self.node_id(source), self.node_id(to)
        moved = 0
        with self.client(source) as src, self.client(to) as dst:
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):
                src.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 10_000, "KEYS", *keys)
                moved += len(keys)
                if pause:
                    time.sleep(pause)
            # The target first, so that the slot is never served by nobody.
            dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        for node in self.primary_nodes():
            if node not in (source, to):
                with self.client(node) as client:
                    client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        return moved

    def kill(self, node: RedisProc) -> None:
        """SIGKILL one node."""
        node.kill()

    def restart(self, node: RedisProc, timeout: float = 30) -> None:
        """Start a killed node again on its port and directory: it rejoins (a primary
        that was replaced comes back as its successor's replica); returns once the
        cluster is healthy, its replicas in sync."""
        node.start()
        if not wait_until(self.healthy, timeout):
            raise RuntimeError(f"the cluster in {self.dir} did not heal after a restart")

    def failed_over(self, old: RedisProc, key: str) -> bool:
        """True once a live primary other than ``old`` owns ``key``'s slot."""
        try:
            return self.owner(key) is not old
        except (RuntimeError, redis.RedisError):
            return False

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> ClusterProcs:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SentinelProcs:
    """One primary, one replica and three sentinels watching them as :data:`SERVICE`."""

    def __init__(self, directory: Path, sentinels: int = 3, tls: Path | None = None) -> None:
        """``tls``: as for :class:`ClusterProcs`: every server speaks only TLS."""
        self.dir = directory
        self.tls = tls
        # A replica's full sync starts at once, not after 5 s.
        self.primary = RedisProc(directory / "primary", repl_diskless_sync_delay="0")
        self.replica = RedisProc(directory / "replica", repl_diskless_sync_delay="0")
        self._client_tls: dict[str, object] = {}
        if tls is not None:
            self._client_tls = {"ssl": True, "ssl_ca_certs": str(tls / "ca.pem")}
            for node in (self.primary, self.replica):
                node.options.update(_tls_config(tls), tls_port=str(node.port), port="0")
                node.tls = self._client_tls
        self.sentinel_ports: list[int] = []
        self.sentinels: list[subprocess.Popen[bytes]] = []
        self._count = sentinels

    @property
    def url(self) -> str:
        seeds = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        if self.tls is not None:
            return f"rediss+sentinel://{seeds}/{SERVICE}/0?ssl_ca_certs={self.tls / 'ca.pem'}"
        return f"redis+sentinel://{seeds}/{SERVICE}/0"

    def start(self) -> SentinelProcs:
        self.primary.start()
        self.replica.options["replicaof"] = f"127.0.0.1 {self.primary.port}"
        self.replica.start()
        exe = shutil.which("redis-server") or "redis-server"
        for i in range(self._count):
            port = cluster_port()
            conf = self.dir / f"sentinel{i}.conf"
            listen = f"port {port}\n"
            if self.tls is not None:
                listen = f"port 0\ntls-port {port}\n" + "".join(
                    f"{k.replace('_', '-')} {v}\n" for k, v in _tls_config(self.tls).items()
                )
            conf.write_text(
                f"{listen}bind 127.0.0.1\ndir {self.dir}\n"
                f"logfile {self.dir}/sentinel{i}.log\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {NODE_TIMEOUT_MS}\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.sentinel_ports.append(port)
            self.sentinels.append(
                subprocess.Popen(
                    [exe, str(conf), "--sentinel"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                )
            )
        if not wait_until(self._ready, 30):
            raise RuntimeError(f"the sentinels in {self.dir} did not see the replica")
        return self

    def _ready(self) -> bool:
        try:
            for port in self.sentinel_ports:
                with redis.Redis(
                    host="127.0.0.1", port=port, socket_timeout=1, **self._client_tls
                ) as client:
                    replicas = client.execute_command("SENTINEL", "REPLICAS", SERVICE)
                    others = client.execute_command("SENTINEL", "SENTINELS", SERVICE)
                    if not replicas or len(others) < self._count - 1:
                        return False
            with self.replica.client() as client:
                return client.info("replication").get("master_link_status") == "up"
        except redis.RedisError:
            return False

    def current_primary(self) -> int:
        """The port the sentinels name as the primary now."""
        for port in self.sentinel_ports:
            try:
                with redis.Redis(
                    host="127.0.0.1", port=port, socket_timeout=1, **self._client_tls
                ) as client:
                    _, primary_port = client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE
                    )
                    return int(primary_port)
            except redis.RedisError:
                continue
        raise RuntimeError("no sentinel answers")

    def primary_proc(self) -> RedisProc:
        port = self.current_primary()
        return self.primary if port == self.primary.port else self.replica

    def failed_over(self, old: RedisProc) -> bool:
        """True once the sentinels name a primary other than ``old``."""
        try:
            return self.current_primary() != old.port
        except RuntimeError:
            return False

    def restart(self, node: RedisProc, timeout: float = 30) -> None:
        """Start a killed node again on its port and directory, as a replica of the
        current primary (the sentinels would make a replaced primary one, but only
        after their next look at it, ~10-15 s later); returns once it is in sync."""
        node.options["replicaof"] = f"127.0.0.1 {self.current_primary()}"
        node.start()

        def synced() -> bool:
            try:
                with node.client() as client:
                    replication = client.info("replication")
            except redis.RedisError:
                return False
            return bool(
                replication["role"] == "slave" and replication["master_link_status"] == "up"
            )

        if not wait_until(synced, timeout):
            raise RuntimeError(f"port {node.port} did not come back as a replica in sync")

    def pause_sentinels(self) -> None:
        """SIGSTOP every sentinel: they are unreachable (connections hang). A sentinel
        stopped for 2 s or more enters TILT mode when resumed and acts on nothing
        (no failover) for the next 30 s."""
        for proc in self.sentinels:
            proc.send_signal(signal.SIGSTOP)

    def resume_sentinels(self) -> None:
        for proc in self.sentinels:
            proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.primary.stop()
        self.replica.stop()

    def __enter__(self) -> SentinelProcs:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
