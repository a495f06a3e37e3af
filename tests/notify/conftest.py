from __future__ import annotations

import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from corral.notify.base import Notice, NotifySettings
from corral.notify.webhook import Webhook
from tests.notify.mailserver import Recorder, Server, authenticator, serve
from tests.notify.receiver import Receiver
from tests.worker.conftest import workers  # noqa: F401  (the in-process workers fixture)

#: The allow-list the tests deliver with: the receiver lives on loopback.
LOOPBACK = NotifySettings(allow=("127.0.0.1",), timeout=5.0)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def secret() -> str:
    return Webhook.new_secret()


@pytest.fixture
def receiver(secret: str) -> Iterator[Receiver]:
    server = Receiver([secret])
    yield server
    server.close()


def make_notice(event: str = "failed", **overrides: Any) -> Notice:
    now = time.time()
    fields: dict[str, Any] = {
        "id": f"msg_{uuid.uuid4().hex}",
        "event": event,
        "job_id": "job-1",
        "queue": "reports",
        "task": "reports.generate",
        "attempt": 3,
        "created_at": now - 10,
        "started_at": now - 5,
        "finished_at": now,
        "trace": {"traceparent": TRACEPARENT},
    }
    if event == "completed":
        fields["result"] = {"rows": 5962}
    if event == "failed":
        fields["error"] = {
            "type": "builtins.ValueError",
            "message": "bad row 7",
            "traceback": 'Traceback (most recent call last):\n  File "reports.py"',
        }
    fields.update(overrides)
    return Notice(**fields)


class FakeDNS:
    """What the OS resolver answers for made-up names (DNS itself cannot be steered
    from a test); every other name goes to the real resolver. ``answers[name]`` is a
    list of answers, one per lookup (the last one repeats); ``lookups`` records each
    lookup of a made-up name, whoever made it."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.answers: dict[str, list[list[str] | Exception]] = {}
        self.lookups: list[str] = []

    def __call__(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return self.real(host, port, family, type, proto, flags)
        self.lookups.append(name)
        queue = self.answers[name]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        port = int(port or 0)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
            for a in answer
        ]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


# -- the SMTP server (tests/notify/mailserver.py) ---------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def _starttls_server(server_tls: ssl.SSLContext) -> Iterator[Server]:
    """STARTTLS required before anything else; AUTH required, and only over TLS."""
    yield from serve(
        Recorder(),
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )


@pytest.fixture
def starttls_server(_starttls_server: Server) -> Server:
    _starttls_server.handler.reset()
    return _starttls_server


@pytest.fixture
def smtps_server(server_tls: ssl.SSLContext) -> Iterator[Server]:
    # aiosmtpd counts only STARTTLS as TLS for auth_require_tls: AUTH is offered here
    # over the implicit TLS connection itself.
    yield from serve(
        Recorder(), ssl_context=server_tls, authenticator=authenticator, auth_require_tls=False
    )


@pytest.fixture
def plain_server() -> Iterator[Server]:
    """No TLS at all (and so no STARTTLS on offer)."""
    yield from serve(Recorder())
