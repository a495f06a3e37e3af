"""Email notifications against a real SMTP server (aiosmtpd) on loopback: STARTTLS on a
throwaway CA's certificate (trustme), AUTH only after TLS, every accepted message
recorded."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from corral.errors import ConfigurationError
from corral.notify import Email
from corral.notify.base import DeliveryError, Notice, NotifySettings
from corral.notify.email import send_digest
from corral.notify.registry import target_from_json, target_json
from corral.notify.smtp import parse_smtp_url
from tests.notify.mailserver import SENDER, USER, Server, relay


def settings_for(url: str, **kwargs: Any) -> NotifySettings:
    kwargs.setdefault("sender", SENDER)
    kwargs.setdefault("timeout", 5.0)
    return NotifySettings(smtp_url=url, **kwargs)


def notice(event: str = "completed", **kwargs: Any) -> Notice:
    values: dict[str, Any] = {
        "id": "ntc_0001",
        "event": event,
        "job_id": "job_42",
        "queue": "reports",
        "task": "reports.generate",
        "attempt": 1,
        "created_at": 1_700_000_000.0,
        "started_at": 1_700_000_001.0,
        "finished_at": 1_700_000_002.0,
    }
    if event == "failed":
        values["attempt"] = 3
        values["error"] = {"type": "builtins.ValueError", "message": "boom", "traceback": "tb"}
    values.update(kwargs)
    return Notice(**values)


async def failure(target: Email, item: Notice, settings: NotifySettings) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await target.deliver(item, settings)
    return caught.value


# -- delivery over STARTTLS -------------------------------------------------------------


async def test_a_completed_job_sends_exactly_one_email_rendered_and_escaped(
    starttls_server: Server, ca_file: str
) -> None:
    target = Email(
        to=["ops@example.com", "Reports Team <reports@example.com>"],
        cc="boss@example.com",
        subject="{{ job.task }} {{ event }}: {{ result.title }}",
        text="Title: {{ result.title }}\nRows: {{ result.rows }}",
        html="<p>{{ result.title }}</p><p>{{ shop }}</p>",
        context={"shop": "Acme & Co"},
    )
    settings = settings_for(relay(starttls_server.port, ca_file))
    item = notice(result={"title": "<script>alert(1)</script>", "rows": 5962})
    await target.deliver(item, settings)

    [got] = starttls_server.handler.received
    assert got.tls and got.user == USER
    assert got.sender == "corral@example.com"
    assert sorted(got.recipients) == ["boss@example.com", "ops@example.com", "reports@example.com"]
    message = got.message
    assert message["Subject"] == "reports.generate completed: <script>alert(1)</script>"
    assert message["X-Corral-Job"] == "job_42"
    assert message["X-Corral-Event"] == "completed"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content() == "Title: <script>alert(1)</script>\nRows: 5962\n"
    html_body = html.get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_body
    assert "<script>" not in html_body
    assert "Acme &amp; Co" in html_body

    # A second delivery of the same notice (a retry) is recognisably the same email.
    await target.deliver(item, settings)
    first, second = starttls_server.handler.received
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert first.message["Message-ID"].startswith("<ntc_0001.")
    assert first.message["Message-ID"].endswith("@example.com>")
    # Another notice, another Message-ID.
    await target.deliver(notice(id="ntc_0002", result=item.result), settings)
    assert starttls_server.handler.received[2].message["Message-ID"] != first.message["Message-ID"]


async def test_the_default_template_names_the_job_the_error_and_links_the_dashboard(
    starttls_server: Server, ca_file: str
) -> None:
    settings = settings_for(
        relay(starttls_server.port, ca_file), context={"dashboard_url": "https://ops.example/"}
    )
    await Email(to="ops@example.com").deliver(notice("failed"), settings)
    [got] = starttls_server.handler.received
    assert got.message["Subject"] == "❌ reports.generate failed"
    text = got.message.get_body(("plain",)).get_content()
    for expected in ("job_42", "reports", "Attempt:  3", "ValueError: boom"):
        assert expected in text
    link = "https://ops.example/queues/reports/jobs/job_42"
    assert f"View in the dashboard: {link}" in text
    assert f'href="{link}"' in got.message.get_body(("html",)).get_content()

    await Email(to="ops@example.com").deliver(notice(), settings_for(settings.smtp_url or ""))
    done = starttls_server.handler.received[1].message
    assert done["Subject"] == "✅ reports.generate completed"
    assert "dashboard" not in done.get_body(("plain",)).get_content()


async def test_a_template_directory_provides_subject_text_and_optional_html(
    starttls_server: Server, ca_file: str, tmp_path: Path
) -> None:
    (tmp_path / "report.subject.txt").write_text("✅ Your {{ result.orders }} orders are ready!")
    (tmp_path / "report.txt").write_text("{{ result.orders }} orders for {{ company }}.\n")
    (tmp_path / "report.html").write_text("<h1>{{ result.orders }} orders</h1>")
    (tmp_path / "short.subject.txt").write_text("{{ job.id }}")
    (tmp_path / "short.txt").write_text("done")
    settings = settings_for(
        relay(starttls_server.port, ca_file),
        templates=str(tmp_path),
        context={"company": "Acme"},
    )
    item = notice(result={"orders": "5,962"})
    await Email(to="ops@example.com", template="report").deliver(item, settings)
    await Email(to="ops@example.com", template="short").deliver(item, settings)

    report, short = (r.message for r in starttls_server.handler.received)
    assert report["Subject"] == "✅ Your 5,962 orders are ready!"
    assert report.get_body(("plain",)).get_content() == "5,962 orders for Acme.\n"
    assert report.get_body(("html",)).get_content().strip() == "<h1>5,962 orders</h1>"
    assert short["Subject"] == "job_42"
    assert short.get_content_type() == "text/plain"  # no short.html: text only
    assert short.get_content() == "done\n"


async def test_a_template_typo_fails_the_delivery_for_good_naming_the_template_and_name(
    starttls_server: Server, ca_file: str, tmp_path: Path
) -> None:
    settings = settings_for(relay(starttls_server.port, ca_file), templates=str(tmp_path))
    inline = Email(to="ops@example.com", subject="done", text="hello\n{{ reslt }}")
    error = await failure(inline, notice(), settings)
    assert not error.retry
    assert "Email(text=...) line 2" in str(error) and "'reslt' is undefined" in str(error)

    (tmp_path / "typo.subject.txt").write_text("{{ job.tsk }}")
    (tmp_path / "typo.txt").write_text("fine")
    error = await failure(Email(to="ops@example.com", template="typo"), notice(), settings)
    assert not error.retry
    assert "'typo.subject.txt' line 1" in str(error) and "tsk" in str(error)

    error = await failure(Email(to="ops@example.com", template="missing"), notice(), settings)
    assert not error.retry and "'missing.subject.txt' not found" in str(error)
    assert starttls_server.handler.received == []


async def test_a_digest_is_plain_text_with_a_stable_message_id(
    starttls_server: Server, ca_file: str
) -> None:
    settings = settings_for(relay(starttls_server.port, ca_file))
    for _ in range(2):
        await send_digest(
            ["ops@example.com"],
            "37 more failures of reports.generate in the last 10 min",
            "reports.generate failed 37 more times.",
            settings,
            message_id_token="digest:reports.generate:1700000000",
        )
    first, second = (r.message for r in starttls_server.handler.received)
    assert first["Subject"] == "37 more failures of reports.generate in the last 10 min"
    assert first.get_content_type() == "text/plain"
    assert first["X-Corral-Event"] == "digest"
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"].endswith("@example.com>")


# -- failures: what is retried and what is not ------------------------------------------


async def test_a_server_without_starttls_is_refused_and_nothing_is_sent(
    plain_server: Server,
) -> None:
    error = await failure(
        Email(to="ops@example.com"), notice(), settings_for(f"smtp://127.0.0.1:{plain_server.port}")
    )
    assert not error.retry
    assert "does not offer STARTTLS" in str(error)
    assert plain_server.handler.received == []


async def test_tls_none_sends_without_tls_only_when_asked(plain_server: Server) -> None:
    url = f"smtp://127.0.0.1:{plain_server.port}?tls=none"
    await Email(to="ops@example.com").deliver(notice(), settings_for(url))
    [got] = plain_server.handler.received
    assert not got.tls


async def test_smtps_uses_implicit_tls(smtps_server: Server, ca_file: str) -> None:
    url = relay(smtps_server.port, ca_file, scheme="smtps")
    await Email(to="ops@example.com").deliver(notice(), settings_for(url))
    [got] = smtps_server.handler.received
    assert got.tls and got.user == USER


async def test_a_certificate_from_an_unknown_ca_is_a_retried_tls_failure(
    starttls_server: Server, smtps_server: Server
) -> None:
    for url in (relay(starttls_server.port, None), relay(smtps_server.port, None, scheme="smtps")):
        error = await failure(Email(to="ops@example.com"), notice(), settings_for(url))
        assert error.retry
        assert "TLS handshake failed" in str(error) and "certificate" in str(error)
    assert starttls_server.handler.received == smtps_server.handler.received == []


async def test_a_wrong_password_is_not_retried_and_says_so(
    starttls_server: Server, ca_file: str
) -> None:
    url = relay(starttls_server.port, ca_file, password="wrong")
    error = await failure(Email(to="ops@example.com"), notice(), settings_for(url))
    assert not error.retry
    assert "rejected the login" in str(error) and "535" in str(error)
    # Neither credential is shown (Postmark's user name is its API token).
    assert "wrong" not in str(error).replace("wrong user", "") and USER not in str(error)


async def test_a_4xx_reply_is_retried_with_the_servers_code(
    starttls_server: Server, ca_file: str
) -> None:
    starttls_server.handler.data_reply = "451 4.3.0 Mailbox busy, try later"
    error = await failure(
        Email(to="ops@example.com"), notice(), settings_for(relay(starttls_server.port, ca_file))
    )
    assert error.retry
    assert "451" in str(error) and "Mailbox busy, try later" in str(error)


async def test_a_5xx_reply_fails_for_good_with_the_servers_message(
    starttls_server: Server, ca_file: str
) -> None:
    settings = settings_for(relay(starttls_server.port, ca_file))
    starttls_server.handler.rcpt_replies["ops@example.com"] = "550 5.1.1 No such user here"
    error = await failure(Email(to="ops@example.com"), notice(), settings)
    assert not error.retry
    assert "550" in str(error) and "No such user here" in str(error)

    starttls_server.handler.data_reply = "554 5.7.1 Message rejected as spam"
    error = await failure(Email(to="boss@example.com"), notice(), settings)
    assert not error.retry and "Message rejected as spam" in str(error)
    assert starttls_server.handler.received == []


async def test_one_refused_recipient_among_several_does_not_fail_the_delivery(
    starttls_server: Server, ca_file: str
) -> None:
    # A retry would send the email again to those who got it.
    starttls_server.handler.rcpt_replies["gone@example.com"] = "550 5.1.1 No such user"
    target = Email(to=["gone@example.com", "ops@example.com"])
    await target.deliver(notice(), settings_for(relay(starttls_server.port, ca_file)))
    [got] = starttls_server.handler.received
    assert got.recipients == ["ops@example.com"]


async def test_a_refused_connection_is_retried() -> None:
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        error = await failure(
            Email(to="ops@example.com"), notice(), settings_for(f"smtp://127.0.0.1:{port}")
        )
    assert error.retry
    assert f"127.0.0.1:{port}" in str(error)


async def test_a_silent_server_times_out_and_is_retried() -> None:
    done = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never greets; returns when the client hangs up
        writer.close()
        await writer.wait_closed()
        done.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = settings_for(f"smtp://127.0.0.1:{port}", timeout=0.3)
        error = await failure(Email(to="ops@example.com"), notice(), settings)
        await asyncio.wait_for(done.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()
    assert error.retry
    assert "timed out" in str(error) or "no answer" in str(error)


async def test_missing_relay_or_sender_fail_for_good(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORRAL_SMTP_URL", raising=False)
    monkeypatch.delenv("CORRAL_EMAIL_FROM", raising=False)
    error = await failure(Email(to="ops@example.com"), notice(), NotifySettings(sender=SENDER))
    assert not error.retry and "CORRAL_SMTP_URL" in str(error)
    error = await failure(
        Email(to="ops@example.com"), notice(), NotifySettings(smtp_url="smtp://mail.example")
    )
    assert not error.retry and "CORRAL_EMAIL_FROM" in str(error)
    error = await failure(
        Email(to="ops@example.com"), notice(), settings_for(f"smtp://{USER}:secret@x:nope")
    )
    assert not error.retry and "port" in str(error) and "secret" not in str(error)


# -- the target: construction, identity, JSON --------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"to": []}, "at least one address"),
        ({"to": "ops"}, "'ops' is not an email address"),
        ({"to": "ops@"}, "is not an email address"),
        ({"to": "a b@example.com"}, "is not an email address"),
        ({"to": "a@example.com, b@example.com"}, "give a list"),
        ({"to": "ops@example.com\r\nBcc: x@evil.example"}, "line break"),
        ({"to": 42}, "give an address or a list"),
        ({"to": "ops@example.com", "cc": ["nope"]}, "Email(cc=...)"),
        ({"to": "ops@example.com", "sender": "corral"}, "Email(sender=...)"),
        ({"to": "ops@example.com", "events": ["done"]}, "events must be some of"),
        ({"to": "ops@example.com", "events": "failed"}, "events must be a list"),
        ({"to": "ops@example.com", "text": "{% if %}"}, "Email(text=...): template syntax error"),
        ({"to": "ops@example.com", "template": "../etc/passwd"}, "template name"),
        ({"to": "ops@example.com", "name": "has space"}, "Email(name=...)"),
        ({"to": "ops@example.com", "context": {"job": 1}}, "may not redefine ['job']"),
        ({"to": "ops@example.com", "context": {"when": object()}}, "must be JSON"),
    ],
)
def test_bad_constructor_input_is_a_clear_configuration_error(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Email(**kwargs)
    assert message in str(caught.value)


def test_key_is_stable_and_json_round_trips() -> None:
    target = Email(
        to=["b@example.com", "A <a@example.com>"],
        cc="c@example.com",
        subject="{{ job.task }}",
        text="t",
        html="<p>h</p>",
        events=["failed"],
        sender=SENDER,
        context={"dashboard_url": "https://ops.example"},
    )
    same = Email(
        to=["a@example.com", "b@example.com"],
        cc="c@example.com",
        subject="{{ job.task }}",
        events=("failed",),
    )
    assert target.key == same.key
    assert target.key.startswith("email:") and len(target.key) == len("email:") + 16
    assert Email(to="a@example.com").key != Email(to="b@example.com").key
    assert Email(to="a@example.com").key != Email(to="a@example.com", events=["failed"]).key
    assert Email(to="a@example.com", name="ops").key == "email:ops"

    data = target.to_json()
    assert data["kind"] == "email"
    again = Email.from_json(data)
    assert again == target and again.key == target.key and again.to_json() == data
    # A per-job target, as the job's options store it and the relay reads it back.
    assert target_from_json(target_json(target)) == target
    with pytest.raises(ConfigurationError):
        Email.from_json({"kind": "webhook", "url": "https://x"})
    with pytest.raises(ConfigurationError):
        Email.from_json({**data, "surprise": 1})


# -- the relay URL -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port", "security", "user", "password"),
    [
        (
            "smtp://user:pass@mail.example.com:587",
            "mail.example.com",
            587,
            "starttls",
            "user",
            "pass",
        ),
        ("smtp://mail.example.com", "mail.example.com", 587, "starttls", None, None),
        (
            "smtps://apikey:p%40ss%3Aw%2Frd@smtp.example.com",
            "smtp.example.com",
            465,
            "implicit",
            "apikey",
            "p@ss:w/rd",
        ),
        (
            "smtps://resend:re_123@smtp.resend.com:2465",
            "smtp.resend.com",
            2465,
            "implicit",
            "resend",
            "re_123",
        ),
        ("smtp://localhost?tls=none", "localhost", 25, "none", None, None),
        ("smtp://localhost:1025?tls=none", "localhost", 1025, "none", None, None),
        (
            "SMTP://Mail.Example.com:2525?tls=starttls",
            "mail.example.com",
            2525,
            "starttls",
            None,
            None,
        ),
        ("smtp://[::1]:587", "::1", 587, "starttls", None, None),
    ],
)
def test_relay_urls(
    url: str, host: str, port: int, security: str, user: str | None, password: str | None
) -> None:
    relay_ = parse_smtp_url(url)
    assert (relay_.host, relay_.port, relay_.security) == (host, port, security)
    assert (relay_.username, relay_.password) == (user, password)
    assert "pass" not in repr(relay_).replace("password", "")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://tok3n:s3cret@mail.example.com", "scheme must be smtp://"),
        ("smtp://tok3n:s3cret@:587", "no host"),
        ("smtp://tok3n:s3cret@mail.example.com:99999", "port must be a number"),
        ("smtp://tok3n:s3cret@mail.example.com:0", "port must be a number"),
        ("smtp://tok3n:s3cret@mail.example.com:smtp", "port must be a number"),
        ("smtp://tok3n:s3cret@mail.example.com/587", "no path"),
        ("smtp://tok3n:s3cret@mail.example.com?tls=maybe", "tls=maybe"),
        ("smtps://tok3n:s3cret@mail.example.com?tls=none", "does not go with smtps://"),
        ("smtp://tok3n:s3cret@mail.example.com?verify=0", "unknown option verify"),
        ("smtp://tok3n:s3cret@mail.example.com?ca=/no/such/ca.pem", "does not exist"),
        ("", "empty"),
    ],
)
def test_bad_relay_urls_are_configuration_errors_that_hide_the_password(
    url: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_smtp_url(url)
    assert message in str(caught.value)
    assert "s3cret" not in str(caught.value) and "tok3n" not in str(caught.value)
