"""API keys and scopes, masking of secrets for read-only keys, and ``corral serve``'s
refusal to serve a public address without authentication (SQLite)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from chaos.harness import free_port

from tests.web.apps import QUEUE, build_app
from tests.web.conftest import (
    ADMIN_KEY,
    API_KEYS,
    READ_KEY,
    WRITE_KEY,
    Event,
    LiveServer,
    Serve,
    Workers,
    bearer,
    sse_events,
)
from tests.web.serve_cmd import ROOT, serve_cmd, serve_env


@pytest.fixture
def secured(serve: Serve, url: str) -> LiveServer:
    return serve(build_app(url), api_keys=API_KEYS)


@pytest.fixture
async def anon(secured: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=secured.url, timeout=15) as client:
        yield client


async def enqueue_as(client: httpx.AsyncClient, key: str, **body: object) -> dict:
    response = await client.post(
        "/api/v1/jobs", json={"task": "web.echo", **body}, headers=bearer(key)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_request_without_a_key_is_401_with_www_authenticate(
    anon: httpx.AsyncClient,
) -> None:
    for method, path in [
        ("GET", "/api/v1/queues"),
        ("GET", "/api/v1/workers"),
        ("GET", "/api/v1/jobs/x"),
        ("POST", "/api/v1/jobs"),
        ("GET", f"/api/v1/queues/{QUEUE}/events"),
        ("GET", "/metrics"),
    ]:
        response = await anon.request(method, path)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in response.json()["error"]


async def test_a_wrong_key_or_scheme_is_401(anon: httpx.AsyncClient) -> None:
    for header in (
        "Bearer not-a-key-0123456789abcdef",
        f"Bearer {READ_KEY}x",
        f"Basic {READ_KEY}",
        "Bearer",
        READ_KEY,
    ):
        response = await anon.get("/api/v1/queues", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"] == "Bearer"


async def test_the_scheme_is_case_insensitive(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/api/v1/queues", headers={"Authorization": f"bearer {READ_KEY}"})
    assert response.status_code == 200


async def test_a_read_key_cannot_enqueue_or_act(anon: httpx.AsyncClient) -> None:
    response = await anon.post("/api/v1/jobs", json={"task": "web.echo"}, headers=bearer(READ_KEY))
    assert response.status_code == 403
    assert "write" in response.json()["error"]
    job = await enqueue_as(anon, WRITE_KEY)
    for action in ("cancel", "retry", "promote"):
        denied = await anon.post(
            f"/api/v1/queues/{QUEUE}/jobs/{job['id']}/{action}", headers=bearer(READ_KEY)
        )
        assert denied.status_code == 403, action
    for path in ("/api/v1/queues", f"/api/v1/queues/{QUEUE}", f"/api/v1/jobs/{job['id']}"):
        assert (await anon.get(path, headers=bearer(READ_KEY))).status_code == 200, path


async def test_a_write_key_cannot_delete_or_administer(anon: httpx.AsyncClient) -> None:
    job = await enqueue_as(anon, WRITE_KEY)
    response = await anon.delete(
        f"/api/v1/queues/{QUEUE}/jobs/{job['id']}", headers=bearer(WRITE_KEY)
    )
    assert response.status_code == 403
    assert "admin" in response.json()["error"]
    for path in ("retry-failed", "pause", "resume", "clean"):
        denied = await anon.post(
            f"/api/v1/queues/{QUEUE}/{path}", json={}, headers=bearer(WRITE_KEY)
        )
        assert denied.status_code == 403, path
        assert "admin" in denied.json()["error"]
    cancel = await anon.post(
        f"/api/v1/queues/{QUEUE}/jobs/{job['id']}/cancel", headers=bearer(WRITE_KEY)
    )
    assert cancel.status_code == 200


async def test_an_admin_key_can_do_everything(anon: httpx.AsyncClient) -> None:
    admin = bearer(ADMIN_KEY)
    job = await enqueue_as(anon, ADMIN_KEY, delay=60)
    base = f"/api/v1/queues/{QUEUE}"
    assert (await anon.get("/api/v1/queues", headers=admin)).status_code == 200
    assert (await anon.get("/api/v1/workers", headers=admin)).status_code == 200
    assert (await anon.get("/metrics", headers=admin)).status_code == 200
    assert (await anon.post(f"{base}/jobs/{job['id']}/promote", headers=admin)).status_code == 200
    assert (await anon.post(f"{base}/pause", headers=admin)).status_code == 200
    assert (await anon.post(f"{base}/resume", headers=admin)).status_code == 200
    assert (await anon.post(f"{base}/retry-failed", headers=admin)).status_code == 200
    assert (await anon.post(f"{base}/clean", json={}, headers=admin)).status_code == 200
    assert (await anon.delete(f"{base}/jobs/{job['id']}", headers=admin)).status_code == 204


async def test_health_probes_and_the_openapi_document_need_no_key(
    anon: httpx.AsyncClient,
) -> None:
    assert (await anon.get("/healthz")).status_code == 200
    assert (await anon.get("/readyz")).status_code == 200
    doc = await anon.get("/api/v1/openapi.json")
    assert doc.status_code == 200
    assert "/api/v1/jobs" in doc.json()["paths"]


SECRET_KWARGS = {
    "user": "bob",
    "password": "hunter2",
    "api_key": "ak-123",
    "token": "tk-456",
    "X-Api-Key": "hdr-789",
    "nested": {"db_password": "pw", "inner": {"token": "deep"}, "host": "db"},
    "items": [{"secret": "s1", "name": "n1"}],
}
MASKED_KWARGS = {
    "user": "bob",
    "password": "***",
    "api_key": "***",
    "token": "***",
    "X-Api-Key": "***",
    "nested": {"db_password": "***", "inner": {"token": "***"}, "host": "db"},
    "items": [{"secret": "***", "name": "n1"}],
}


async def test_secrets_are_masked_for_a_read_key_and_clear_for_write(
    anon: httpx.AsyncClient,
) -> None:
    created = await anon.post(
        "/api/v1/jobs",
        json={
            "task": "web.secrets",
            "args": [{"authorization": "Bearer x"}, "plain"],
            "kwargs": SECRET_KWARGS,
        },
        headers=bearer(WRITE_KEY),
    )
    assert created.status_code == 201, created.text
    assert created.json()["kwargs"] == SECRET_KWARGS
    job_id = created.json()["id"]

    for path in (f"/api/v1/queues/{QUEUE}/jobs/{job_id}", f"/api/v1/jobs/{job_id}"):
        read = (await anon.get(path, headers=bearer(READ_KEY))).json()
        assert read["kwargs"] == MASKED_KWARGS, path
        assert read["args"] == [{"authorization": "***"}, "plain"], path
        for key in (WRITE_KEY, ADMIN_KEY):
            clear = (await anon.get(path, headers=bearer(key))).json()
            assert clear["kwargs"] == SECRET_KWARGS, path
            assert clear["args"] == [{"authorization": "Bearer x"}, "plain"], path

    listed = await anon.get(f"/api/v1/queues/{QUEUE}/jobs", headers=bearer(READ_KEY))
    [job] = listed.json()["jobs"]
    assert job["kwargs"] == MASKED_KWARGS
    waited = await anon.get(
        f"/api/v1/queues/{QUEUE}/jobs/{job_id}/result",
        params={"timeout": 0},
        headers=bearer(READ_KEY),
    )
    assert waited.json()["kwargs"] == MASKED_KWARGS
    cancelled = await anon.post(
        f"/api/v1/queues/{QUEUE}/jobs/{job_id}/cancel", headers=bearer(WRITE_KEY)
    )
    assert cancelled.json()["kwargs"] == SECRET_KWARGS

    stream_path = f"/api/v1/queues/{QUEUE}/jobs/{job_id}/events"
    async with anon.stream("GET", stream_path, headers=bearer(READ_KEY)) as stream:
        events = [event async for event in sse_events(stream)]
    assert [e.name for e in events] == ["state", "end"]  # the job is cancelled: ends at once
    assert all(e.data["kwargs"] == MASKED_KWARGS for e in events)

    shown = await anon.get(f"/api/v1/queues/{QUEUE}/jobs/{job_id}", headers=bearer(READ_KEY))
    assert "hunter2" not in shown.text


LOGIN_ARGS = ["bob", "hunter2", "tok-1", "tok-2"]
MASKED_LOGIN_ARGS = ["bob", "***", "***", "***"]  # by name: password, *tokens
SECRET_WORDS = ("hunter2", "tok-1", "progress-secret", "result-secret")


async def test_positional_args_progress_and_result_are_masked_by_name_for_a_read_key(
    anon: httpx.AsyncClient, workers: Workers
) -> None:
    read, admin = bearer(READ_KEY), bearer(ADMIN_KEY)
    body = {"task": "web.login", "args": LOGIN_ARGS, "delay": 3600}
    created = await anon.post("/api/v1/jobs", json=body, headers=bearer(WRITE_KEY))
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    base = f"/api/v1/queues/{QUEUE}/jobs/{job_id}"
    assert (await anon.get(base, headers=read)).json()["args"] == MASKED_LOGIN_ARGS

    seen: list[Event] = []
    async with anon.stream("GET", f"{base}/events", headers=read) as stream:
        async for event in sse_events(stream):
            seen.append(event)
            if len(seen) == 1:  # subscribed: now let the job run
                assert (await anon.post(f"{base}/promote", headers=admin)).status_code == 200
                workers.start()
    names = [e.name for e in seen]
    assert names[0] == "state" and names[-1] == "end" and "progress" in names, names
    progress = [e.data["progress"] for e in seen if e.name == "progress"]
    assert progress[-1] == {"step": 1, "access_token": "***"}
    assert seen[-1].data["result"] == {
        "user": "bob",
        "access_token": "***",
        "nested": [{"api_key": "***"}],
    }
    assert all(e.data["args"] == MASKED_LOGIN_ARGS for e in seen if e.name != "progress")

    answers = [
        await anon.get(base, headers=read),
        await anon.get(f"/api/v1/jobs/{job_id}", headers=read),
        await anon.get(f"{base}/result", params={"timeout": 5}, headers=read),
        await anon.get(f"/api/v1/queues/{QUEUE}/jobs", params={"state": "completed"}, headers=read),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert not [w for w in SECRET_WORDS if w in answer.text], answer.text
    shown = answers[0].json()
    assert (shown["progress"], shown["result"]["access_token"]) == (progress[-1], "***")

    clear = (await anon.get(base, headers=admin)).json()
    assert clear["args"] == LOGIN_ARGS
    assert clear["progress"] == {"step": 1, "access_token": "progress-secret"}
    assert clear["result"]["access_token"] == "result-secret"


async def test_positional_args_of_a_task_this_server_does_not_know_are_shown(
    serve: Serve, url: str
) -> None:
    """Documented: without the task's signature, positional values have no names."""
    server = serve(build_app(url), api_keys=API_KEYS, allow_unregistered=True)
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        body = {"task": "elsewhere.login", "queue": QUEUE, "args": ["bob", {"password": "x"}]}
        created = await http.post("/api/v1/jobs", json=body, headers=bearer(WRITE_KEY))
        assert created.status_code == 201, created.text
        path = f"/api/v1/queues/{QUEUE}/jobs/{created.json()['id']}"
        shown = (await http.get(path, headers=bearer(READ_KEY))).json()
        assert shown["args"] == ["bob", {"password": "***"}]


# -- corral serve ------------------------------------------------------------------------


def test_serve_refuses_a_public_address_without_a_key(url: str) -> None:
    done = subprocess.run(
        serve_cmd("--host", "0.0.0.0", "--port", str(free_port())),
        cwd=ROOT,
        env=serve_env(url),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 2, done.stderr
    assert "--api-key" in done.stderr
    assert "0.0.0.0" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_short_api_key(url: str) -> None:
    done = subprocess.run(
        serve_cmd("--api-key", "short:admin"),
        cwd=ROOT,
        env=serve_env(url),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 2, done.stderr
    assert "16" in done.stderr
    assert "short:admin" not in done.stderr, "the key was echoed"


# Slow (a `corral serve` process; CI): the next two tests start one in the inner loop.
@pytest.mark.slow
def test_serve_insecure_public_without_auth_warns_and_serves(url: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        serve_cmd("--host", "0.0.0.0", "--port", str(port), "--insecure-public-without-auth"),
        cwd=ROOT,
        env=serve_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        answered = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert answered is not None, f"no answer on port {port} (exit code {proc.poll()})"
        assert answered.status_code == 200
        assert answered.json() == {"status": "ok"}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=5)
    assert "WARNING" in err
    assert "NO authentication" in err


def test_serve_names_a_bad_key_entry_without_its_token(url: str) -> None:
    token = "ops-Qm7vT2xKp9LwZr4N"
    env = {**serve_env(url), "CORRAL_API_KEYS": f"ops={token}:admin,ops={token}x:read"}
    done = subprocess.run(
        serve_cmd(), cwd=ROOT, env=env, capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 2, done.stderr
    assert "API key 2: the name 'ops' is taken twice" in done.stderr
    assert token not in done.stderr and "Traceback" not in done.stderr


def test_serve_records_actions_under_the_keys_name(url: str) -> None:
    port, token = free_port(), "ops-Qm7vT2xKp9LwZr4N"
    proc = subprocess.Popen(
        serve_cmd("--port", str(port), "--api-key", f"ops={token}:admin"),
        cwd=ROOT,
        env=serve_env(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base, auth = f"http://127.0.0.1:{port}/api/v1", {"Authorization": f"Bearer {token}"}
    paused: httpx.Response | None = None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                paused = httpx.post(f"{base}/queues/web/pause", headers=auth, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert paused is not None, f"no answer on port {port} (exit code {proc.poll()})"
        assert paused.status_code == 200, paused.text
        entries = httpx.get(f"{base}/audit", headers=auth, timeout=5).json()["entries"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert [(e["key"], e["action"], e["target"]) for e in entries] == [
        ("ops", "queue.pause", "web")
    ]
