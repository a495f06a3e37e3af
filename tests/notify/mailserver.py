"""A real SMTP server for the tests: aiosmtpd on loopback, with STARTTLS on a throwaway
CA's certificate (trustme), AUTH only after TLS, every accepted message recorded.
The fixtures are in ``conftest.py``."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER = "relay-user"
PASSWORD = "p@ss:w/rd %é"  # every character that needs percent-encoding in a URL
SENDER = "Corral <corral@example.com>"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    user: str | None


@dataclass
class Recorder:
    """An aiosmtpd handler: records what it accepts, or answers as told."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_reply:
            return self.data_reply
        login = session.auth_data.login.decode() if session.authenticated else None
        wire = envelope.original_content.replace(b"\r\n", b"\n")
        parsed = message_from_bytes(wire, policy=policy.default)
        tls = server.transport.get_extra_info("ssl_object") is not None
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, tls, login)
            )
        return "250 Message accepted"

    def reset(self) -> None:
        self.received.clear()
        self.rcpt_replies.clear()
        self.data_reply = None


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (USER, PASSWORD)
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    handler: Recorder


def serve(handler: Recorder, **kwargs: Any) -> Iterator[Server]:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield Server(controller.port, handler)
    finally:
        controller.stop()


def relay(port: int, ca_file: str | None, *, scheme: str = "smtp", password: str = PASSWORD) -> str:
    query = f"?ca={quote(ca_file)}" if ca_file else ""
    return f"{scheme}://{USER}:{quote(password, safe='')}@127.0.0.1:{port}{query}"
