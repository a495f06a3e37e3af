"""The document processing example (seed 004) driven as its users would: its own
launcher (``python -m examples.documents``: the FastAPI app and a real worker
process), multipart uploads over loopback, a fake AI service, on both backends."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from examples.documents.fake_ai import FakeAI

from corral import Corral
from tests.conftest import flush
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 8_000_000  # MAX_UPLOAD_BYTES for the test: 50 MB made small
ADMIN = "/admin/queues/api/v1"
STAGES = ["extract", "chunk", "analyse", "insights", "save"]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()) is not None and value is not False:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def text(topic: str, sentences: int = 60) -> bytes:
    """A document about ``topic``, with findings for the insights."""
    lines = []
    for i in range(sentences):
        lines.append(f"The {topic} team reviewed the {topic} results for region {i}.")
        if i % 5 == 0:
            lines.append(f"Customers said {topic} pricing should improve by {i} percent.")
    return " ".join(lines).encode()


@dataclass
class System:
    url: str  # the store
    base: str
    uploads: Path
    proc: subprocess.Popen[bytes]
    ai: FakeAI
    http: httpx.Client

    def upload(self, files: list[tuple[str, bytes]], **form: str) -> httpx.Response:
        parts = [("files", (name, data, "text/plain")) for name, data in files]
        return self.http.post("/api/documents/async-upload", files=parts, data=form)

    def job(self, job_id: str) -> dict[str, Any]:
        answer = self.http.get("/api/documents/async-upload", params={"jobId": job_id})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def until(self, job_id: str, state: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["state"] == state else None

        return wait_for(reached, f"job {job_id} {state}")

    def admin(self, method: str, path: str) -> httpx.Response:
        answer = self.http.request(method, ADMIN + path)
        assert answer.status_code < 300, answer.text
        return answer

    def raw_head(self, request: str) -> str:
        """Send ``request`` as is; the whole answer (headers and body)."""
        host, port = self.base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(request.encode())
            answer = b""
            while b"\r\n\r\n" not in answer and (more := sock.recv(4096)):
                answer += more
            head, _, body = answer.partition(b"\r\n\r\n")
            size = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(body) < size and (more := sock.recv(4096)):
                body += more
            return (head + b"\r\n\r\n" + body).decode()

    def dirs(self) -> set[str]:
        return {p.name for p in self.uploads.iterdir()} if self.uploads.is_dir() else set()


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """One running system per backend, shared by this module's tests."""
    home = tmp_path_factory.mktemp(f"documents-{request.param}")
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url
        flush(url)
    else:
        url = f"sqlite:///{home / 'corral.db'}"
    ai = FakeAI().start()
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "CORRAL_URL": url,
        "PORT": str(port),
        "UPLOAD_DIR": str(home / "uploads"),
        "MAX_UPLOAD_BYTES": str(LIMIT),
        "JOB_CONCURRENCY": "2",
        "DOCS_RATE": "1/0.4",  # one start per 0.4 s, all workers together
        "DOCS_ATTEMPTS": "2",
        "DOCS_BACKOFF": "0.1",
        "AI_API_URL": ai.url,
        "UPLOAD_SWEEP_GRACE": "0",
        "UPLOAD_SWEEP_EVERY": str(365 * 86400),  # the test runs the sweep itself
    }
    proc = subprocess.Popen([sys.executable, "-m", "examples.documents"], cwd=home, env=env)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def workers() -> list[Any] | None:
        try:
            found = http.get(f"{ADMIN}/workers").json()
        except httpx.TransportError:
            return None
        return found or None

    try:
        found = wait_for(workers, "the web app and its worker", timeout=30)
        # JOB_CONCURRENCY reached the worker process.
        assert [w["concurrency"] for w in found] == [2]
        yield System(url, f"http://127.0.0.1:{port}", home / "uploads", proc, ai, http)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=45)
        http.close()
        ai.stop()
    assert code == 0  # SIGTERM stops the web app, then the worker, cleanly
    corral = Corral(url)
    try:
        assert corral.workers_sync() == []  # the worker process stopped too
    finally:
        corral.close_sync()


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_uploads_stream_to_disk_and_oversize_is_refused(system: System) -> None:
    system.admin("POST", "/queues/documents/pause")  # keep the big file unprocessed
    try:
        before = system.dirs()
        # Several files, one over the limit: the whole upload is refused, nothing stays.
        refused = system.upload(
            [("a.txt", text("alpha")), ("huge.txt", b"x" * (LIMIT + 1)), ("b.txt", b"b")]
        )
        assert refused.status_code == 413, refused.text
        assert refused.json() == {
            "success": False,
            "error": f"huge.txt is larger than the {LIMIT:,} byte limit",
        }
        assert system.dirs() == before
        assert system.http.get("/api/documents/async-upload").json()["waiting"] == 0
        # A declared size over what the files may add up to is refused before the
        # body is read (the connection sends none).
        head = system.raw_head(
            "POST /api/documents/async-upload HTTP/1.1\r\nHost: t\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            "Content-Length: 1000000000000\r\n\r\n"
        )
        assert head.startswith("HTTP/1.1 413"), head
        assert "the upload declares 1,000,000,000,000 bytes" in head

        # A file just under the limit goes to disk in blocks, not through memory, and
        # its job carries the path, not the bytes.
        big = (text("beta") * (LIMIT // len(text("beta"))))[: LIMIT - 10]
        rss = peak_rss(system.proc.pid)
        answer = system.upload([("big report.txt", big)])
        grown = peak_rss(system.proc.pid) - rss
        assert answer.status_code == 202, answer.text
        # Held in memory, the file alone would grow it by LIMIT; the rest is noise of a
        # few MB (buffers, the job's enqueue), so half of LIMIT tells the two apart.
        assert grown < LIMIT // 2, f"the web process grew by {grown:,} bytes"
        [queued] = answer.json()["jobs"]
        assert queued["size"] == len(big) and queued["filename"] == "big report.txt"
        stored = system.uploads / queued["jobId"] / "big report.txt"
        assert stored.read_bytes() == big
        raw = system.admin("GET", f"/queues/documents/jobs/{queued['jobId']}").json()
        assert raw["args"][0] == str(stored) and len(json.dumps(raw["args"])) < 500
        assert raw["args"][1]["filename"] == "big report.txt"

        # Removing the job through this app deletes its upload at once.
        gone = system.http.delete(f"/api/documents/async-upload/{queued['jobId']}")
        assert gone.status_code == 200, gone.text
        assert not stored.parent.exists()
        missing = system.http.get("/api/documents/async-upload", params={"jobId": queued["jobId"]})
        assert missing.status_code == 404
    finally:
        system.admin("POST", "/queues/documents/resume")


def follow(system: System, job_id: str, into: list[tuple[str, Any]]) -> threading.Thread:
    """Collect the job's SSE events (from the mounted Corral API) until ``end``."""
    opened = threading.Event()

    def run() -> None:
        path = f"{ADMIN}/queues/documents/jobs/{job_id}/events"
        with system.http.stream("GET", path, timeout=30) as stream:
            name = ""
            for line in stream.iter_lines():
                opened.set()
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    into.append((name, json.loads(line.split(":", 1)[1])))
                    if name == "end":
                        return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert opened.wait(10)
    return thread


def test_ai_jobs_overtake_regular_ones_within_the_rate_limit(system: System) -> None:
    system.admin("POST", "/queues/documents/pause")
    try:
        regular = system.upload(
            [(f"r{i}.txt", text(f"topic{i}")) for i in range(3)], generateSummary="true"
        )
        assert regular.status_code == 202, regular.text
        ai = system.upload([("ai.txt", text("pricing"))], useAI="true")
        assert ai.status_code == 202, ai.text
        body = ai.json()
        assert body["message"] == "1 documents queued for processing"
        assert body["queueStatus"]["waiting"] == 4
        assert system.http.get("/api/documents/async-upload").json()["waiting"] == 4
        ai_id = body["jobs"][0]["jobId"]
        waiting = system.job(ai_id)
        assert (waiting["state"], waiting["progress"], waiting["result"]) == ("waiting", 0, None)
        events: list[tuple[str, Any]] = []
        watcher = follow(system, ai_id, events)
    finally:
        system.admin("POST", "/queues/documents/resume")

    ids = [j["jobId"] for j in regular.json()["jobs"]] + [ai_id]
    done = [system.until(i, "completed") for i in ids]
    watcher.join(10)
    starts = sorted((job["processedAt"], job["id"]) for job in done)
    # The AI job was enqueued last and started first.
    assert starts[0][1] == ai_id
    # The rate limit (1 start per 0.4 s), not the worker's 2 slots, spaced the starts.
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 350, gaps

    # Progress went through the stages, seen live and kept in the job's log.
    job = done[-1]
    assert job["stages"] == STAGES and job["progress"] == 100
    seen = [e[1]["progress"]["stage"] for e in events if e[0] == "progress"]
    assert seen and seen == sorted(seen, key=([*STAGES, "done"]).index), events
    assert events[-1][0] == "end" and events[-1][1]["state"] == "completed"

    # The result: the seed's counts, from the text itself.
    result = job["result"]
    assert result["documentId"] == f"doc_{ai_id[:12]}" and result["status"] == "COMPLETED"
    assert {k: type(result[k]) for k in ("chunks", "themes", "quotes", "insights")} == {
        "chunks": int,
        "themes": int,
        "quotes": int,
        "insights": int,
    }
    themes = [t["theme"] for t in result["analysis"]["themes"]]
    assert themes[0] == "pricing" and result["themes"] == len(themes)
    assert all(
        q.endswith(".") and q in text("pricing").decode() for q in result["analysis"]["quotes"]
    )
    assert result["insights"] > 0
    assert all(i.startswith("Key point: ") for i in result["analysis"]["insights"])  # the AI
    plain = done[0]["result"]["analysis"]
    assert "summary" in plain and not plain["insights"][0].startswith("Key point")
    assert all(j["createdAt"] <= j["processedAt"] <= j["finishedAt"] for j in done)


def test_ai_rate_limit_answer_spends_no_attempt(system: System) -> None:
    system.ai.throttle = 2
    answer = system.upload([("t.txt", text("latency"))], useAI="true")
    job = system.until(answer.json()["jobs"][0]["jobId"], "completed")
    assert job["attempts"] == 1  # two 429s came back later, without spending attempts
    assert system.ai.throttle == 0


def test_failed_document_is_retried_from_the_api(system: System) -> None:
    system.ai.down = True
    try:
        answer = system.upload([("outage.txt", text("outage"))], useAI="true")
        job_id = answer.json()["jobs"][0]["jobId"]
        failed = system.until(job_id, "failed")
        assert failed["attempts"] == 2 and failed["error"] == "AI service answered 503"
        listed = system.http.get("/api/documents/failed").json()
        assert job_id in [j["id"] for j in listed]
        assert system.http.get("/api/documents/async-upload").json()["failed"] >= 1
    finally:
        system.ai.down = False  # the fix: the AI service is back
    retried = system.http.post(f"/api/documents/async-upload/{job_id}/retry")
    assert retried.status_code == 200, retried.text
    done = system.until(job_id, "completed")
    assert done["result"]["insights"] > 0
    again = system.http.post(f"/api/documents/async-upload/{job_id}/retry")
    assert again.status_code == 409
    assert again.json()["error"] == f"job {job_id} is completed: only failed jobs can be retried"
    # A file with no text fails at once: no attempt would fix it.
    binary = system.upload([("scan.pdf", bytes(range(256)) * 40)])
    bad = system.until(binary.json()["jobs"][0]["jobId"], "failed")
    assert bad["attempts"] == 1 and bad["error"] == "scan.pdf has no readable text"


def test_uploads_go_when_their_jobs_go(system: System) -> None:
    first = system.upload(
        [("keep.txt", text("archive")), ("drop.txt", text("archive")), ("x.bin", b"\0" * 99)]
    )
    keep_id, drop_id, bad_id = (j["jobId"] for j in first.json()["jobs"])
    system.until(keep_id, "completed")
    system.until(drop_id, "completed")
    system.until(bad_id, "failed")

    # Reprocessing: a new job at the lowest priority, with a hard link to the file.
    again = system.http.post(f"/api/documents/async-upload/{keep_id}/reprocess")
    assert again.status_code == 202, again.text
    re_id = again.json()["jobId"]
    assert again.json()["documentId"] == f"doc_{keep_id[:12]}"
    assert system.admin("GET", f"/queues/documents/jobs/{re_id}").json()["priority"] == -10
    assert system.until(re_id, "completed")["result"]["documentId"] == f"doc_{keep_id[:12]}"

    # Through this app: the upload goes with the job, and the reprocessing keeps its own.
    assert system.http.delete(f"/api/documents/async-upload/{keep_id}").status_code == 200
    assert keep_id not in system.dirs() and re_id in system.dirs()
    assert (system.uploads / re_id / "keep.txt").read_bytes() == text("archive")
    assert system.http.delete(f"/api/documents/async-upload/{keep_id}").status_code == 404

    # Removed elsewhere (Corral's own API, as the dashboard and the CLI do): the app
    # hears the removal and deletes the upload, no sweep needed.
    system.admin("DELETE", f"/queues/documents/jobs/{drop_id}")
    wait_for(lambda: drop_id not in system.dirs(), "the upload of a removed job to go")

    # Cleaned (like retention, silently): the sweep deletes the upload of every job that
    # is gone, and only those.
    system.http.post(f"{ADMIN}/queues/documents/clean", json={"state": "completed"})
    assert re_id in system.dirs()
    system.admin("POST", "/schedules/documents.sweep_uploads/run")
    wait_for(lambda: re_id not in system.dirs(), "the sweep")
    assert bad_id in system.dirs()  # a failed job keeps its file, to be retried
