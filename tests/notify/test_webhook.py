"""Webhook deliveries against a real receiver on loopback that checks every request
with the ``standardwebhooks`` reference library."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import trustme

from corral.errors import ConfigurationError
from corral.notify import Webhook, verify
from corral.notify.base import DeliveryError, NotifySettings
from tests.notify.conftest import LOOPBACK, TRACEPARENT, FakeDNS, make_notice
from tests.notify.receiver import Receiver


async def test_a_2xx_delivers_once_signed_with_a_thin_body(receiver: Receiver, secret: str) -> None:
    hook = Webhook(receiver.url("/ok"), secret=secret, headers={"X-Api-Key": "k-123"})
    notice = make_notice("failed")

    await hook.deliver(notice, LOOPBACK)

    [got] = receiver.requests
    assert got.verified_with == [secret]
    assert got.headers["webhook-id"] == notice.id
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 5
    assert got.headers["webhook-signature"].startswith("v1,")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("Corral-Webhooks/")
    assert got.headers["x-api-key"] == "k-123"
    assert got.headers["traceparent"] == TRACEPARENT
    body = orjson.loads(got.body)
    assert body == notice.body()
    assert body["type"] == "job.failed"
    assert body["data"]["error"] == {"type": "builtins.ValueError", "message": "bad row 7"}
    assert "result" not in body["data"]
    # What a Python receiver does with it:
    assert verify(got.body, got.headers, secret) == body


async def test_result_and_traceback_only_when_opted_in(receiver: Receiver, secret: str) -> None:
    thin = Webhook(receiver.url("/thin"), secret=secret, events=["completed", "failed"])
    full = Webhook(receiver.url("/full"), secret=secret, result=True, traceback=True)
    for event in ("completed", "failed"):
        await thin.deliver(make_notice(event), LOOPBACK)
        await full.deliver(make_notice(event), LOOPBACK)

    bodies = {
        (r.path, orjson.loads(r.body)["data"]["state"]): orjson.loads(r.body)["data"]
        for r in receiver.requests
    }
    assert all(r.verified_with == [secret] for r in receiver.requests)
    assert "result" not in bodies["/thin", "completed"]
    assert "traceback" not in bodies["/thin", "failed"]["error"]
    assert bodies["/full", "completed"]["result"] == {"rows": 5962}
    assert bodies["/full", "failed"]["error"]["traceback"].startswith("Traceback")


async def test_rotation_signs_with_every_secret_current_first() -> None:
    old, new, unrelated = Webhook.new_secret(), Webhook.new_secret(), Webhook.new_secret()
    server = Receiver([old, new, unrelated])
    try:
        hook = Webhook(server.url(), secret=[new, old])
        await hook.deliver(make_notice(), LOOPBACK)
        [got] = server.requests
    finally:
        server.close()
    # A receiver knowing only the old secret verifies, one knowing only the new one too.
    assert got.verified_with == [old, new]
    signatures = got.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    current = {**got.headers, "webhook-signature": signatures[0]}
    verify(got.body, current, new)  # the first signature is the current secret's
    # Rotating keeps the endpoint's identity.
    assert (
        hook.key == Webhook(server.url(), secret=new).key == Webhook(server.url(), secret=old).key
    )


async def test_send_posts_any_payload_signed_with_the_given_id(
    receiver: Receiver, secret: str
) -> None:
    hook = Webhook(receiver.url("/manychat"), secret=secret, headers={"X-Api-Key": "k-9"})
    payload = {"event": "qr.scanned", "payload": {"qrCode": "ABC123"}}

    await hook.send(payload, id="webhook_123", settings=LOOPBACK)
    with pytest.raises(DeliveryError) as caught:  # the same rules as a notification
        await Webhook(receiver.url("/gone"), secret=secret).send({}, id="w", settings=LOOPBACK)

    got = receiver.requests[0]
    assert got.verified_with == [secret]
    assert got.headers["webhook-id"] == "webhook_123"
    assert got.headers["x-api-key"] == "k-9"
    assert "traceparent" not in got.headers
    assert verify(got.body, got.headers, secret) == payload
    assert caught.value.gone and not caught.value.retry


async def test_send_refuses_loopback_unless_allowed_and_bad_input(
    receiver: Receiver, secret: str
) -> None:
    hook = Webhook(receiver.url("/ok"), secret=secret)
    with pytest.raises(DeliveryError) as refused:
        await hook.send({"a": 1}, id="w-1")  # default settings: the SSRF guard is on
    with pytest.raises(ConfigurationError, match="id must be a non-empty string"):
        await hook.send({"a": 1}, id="", settings=LOOPBACK)
    with pytest.raises(ConfigurationError, match="payload is not JSON"):
        await hook.send({"a": object()}, id="w-2", settings=LOOPBACK)
    assert not refused.value.retry and "loopback" in str(refused.value)
    assert receiver.requests == []


async def test_a_500_is_retried_and_names_status_and_reply(receiver: Receiver, secret: str) -> None:
    hook = Webhook(receiver.url("/fail?token=SECRET-IN-PATH"), secret=secret)
    with pytest.raises(DeliveryError) as caught:
        await hook.deliver(make_notice(), LOOPBACK)
    assert caught.value.retry and not caught.value.gone
    message = str(caught.value)
    assert "500" in message and "database is down" in message
    assert "SECRET-IN-PATH" not in message  # a URL's path can hold a credential
    assert len(receiver.requests) == 1


async def test_a_long_reply_is_cut_in_the_message(receiver: Receiver, secret: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        await Webhook(receiver.url("/big"), secret=secret).deliver(make_notice(), LOOPBACK)
    assert "503" in str(caught.value) and "overloaded" in str(caught.value)
    assert len(str(caught.value)) < 400


async def test_a_redirect_is_not_followed(receiver: Receiver, secret: str) -> None:
    hook = Webhook(receiver.url("/redirect"), secret=secret)
    with pytest.raises(DeliveryError) as caught:
        await hook.deliver(make_notice(), LOOPBACK)
    assert caught.value.retry
    assert "302" in str(caught.value) and "not followed" in str(caught.value)
    assert receiver.paths() == ["/redirect"]  # /target never called


async def test_410_disables_the_endpoint(receiver: Receiver, secret: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        await Webhook(receiver.url("/gone"), secret=secret).deliver(make_notice(), LOOPBACK)
    assert caught.value.gone and not caught.value.retry
    assert "410" in str(caught.value)


async def test_a_timeout_is_retried(receiver: Receiver, secret: str) -> None:
    hook = Webhook(receiver.url("/slow"), secret=secret, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await hook.deliver(make_notice(), LOOPBACK)
    assert time.monotonic() - started < 3
    assert caught.value.retry and "no answer within 0.3 s" in str(caught.value)


async def test_a_refused_connection_is_retried(secret: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DeliveryError) as caught:
        await Webhook(f"http://127.0.0.1:{port}/", secret=secret).deliver(make_notice(), LOOPBACK)
    assert caught.value.retry and f"127.0.0.1:{port}" in str(caught.value)


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    """A throwaway CA the sender trusts (through SSL_CERT_FILE, as a deployment would)."""
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return authority


@pytest.fixture
def https_receiver(
    ca: trustme.CA, secret: str, request: pytest.FixtureRequest
) -> Iterator[Receiver]:
    """An HTTPS receiver whose certificate names ``webhook.test`` (or the param)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(getattr(request, "param", "webhook.test")).configure_cert(context)
    server = Receiver([secret], tls=context)
    yield server
    server.close()


async def test_https_to_the_checked_address_verifies_the_certificate_by_name(
    https_receiver: Receiver, secret: str, dns: FakeDNS
) -> None:
    # The certificate names webhook.test only: it verifies because TLS uses the name
    # although the connection goes to the address the guard checked.
    dns.answers["webhook.test"] = [["127.0.0.1"]]
    hook = Webhook(https_receiver.url("/ok", host="webhook.test"), secret=secret)
    await hook.deliver(make_notice(), LOOPBACK)
    [got] = https_receiver.requests
    assert got.verified_with == [secret]
    assert got.headers["host"] == f"webhook.test:{https_receiver.port}"
    assert https_receiver.server_names == ["webhook.test"]
    assert dns.lookups == ["webhook.test"]


@pytest.mark.parametrize("https_receiver", ["someone-else.test"], indirect=True)
async def test_https_with_a_certificate_for_another_name_fails(
    https_receiver: Receiver, secret: str, dns: FakeDNS
) -> None:
    dns.answers["webhook.test"] = [["127.0.0.1"]]
    hook = Webhook(https_receiver.url("/ok", host="webhook.test"), secret=secret)
    with pytest.raises(DeliveryError) as caught:
        await hook.deliver(make_notice(), LOOPBACK)
    assert caught.value.retry and "certificate" in str(caught.value).lower()
    assert https_receiver.requests == []


# --- construction --------------------------------------------------------------------


def test_new_secret_is_standard() -> None:
    made = Webhook.new_secret()
    assert made.startswith("whsec_") and made != Webhook.new_secret()
    Webhook("https://example.com/hook", secret=made)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"url": "ftp://example.com/"}, "http:// or https://"),
        ({"url": "example.com/hook"}, "http:// or https://"),
        ({"url": "https:///path"}, "host"),
        ({"url": 42}, "must be a string"),
        ({"secret": "s3cr3t"}, "start with 'whsec_'"),
        ({"secret": "whsec_not*base64!"}, "not valid base64"),
        ({"secret": "whsec_" + "QUJD"}, "24 to 64 random bytes, this one encodes 3"),
        ({"secret": "whsec_" + "A" * 100}, "24 to 64 random bytes, this one encodes 75"),
        ({"secret": []}, "non-empty list"),
        ({"secret": [Webhook.new_secret(), "whsec_bad!"]}, "not valid base64"),
        ({"events": "completed"}, "events must be a list"),
        ({"events": ["done"]}, "['done']"),
        ({"headers": {"webhook-id": "x"}}, "'webhook-id' is set by the delivery"),
        ({"headers": {"Content-Type": "text/plain"}}, "'Content-Type' is set by the delivery"),
        ({"headers": {"X-Key": 5}}, "value of 'X-Key'"),
        ({"headers": {"X-Key": "a\r\nInjected: 1"}}, "one line"),
        ({"headers": {"X-Key": "café"}}, "printable ASCII"),
        ({"headers": {"bad name": "v"}}, "not a valid header name"),
        ({"headers": ["X-Key"]}, "dict"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"timeout": -1.5}, "timeout must be > 0"),
        ({"name": ""}, "name must be"),
    ],
)
def test_bad_input_is_a_configuration_error(kwargs: dict[str, object], problem: str) -> None:
    arguments: dict[str, object] = {
        "url": "https://example.com/hook",
        "secret": Webhook.new_secret(),
    }
    arguments.update(kwargs)
    with pytest.raises(ConfigurationError) as caught:
        Webhook(**arguments)  # type: ignore[arg-type]
    assert problem in str(caught.value)
    assert "whsec_" + "A" * 10 not in str(caught.value)  # secrets are never echoed


def test_json_round_trip_and_identity() -> None:
    secrets = [Webhook.new_secret(), Webhook.new_secret()]
    hook = Webhook(
        "https://example.com/hooks/corral",
        secret=secrets,
        events=["failed"],
        headers={"X-Api-Key": "k"},
        result=True,
        timeout=3,
        name="billing",
    )
    data = orjson.loads(orjson.dumps(hook.to_json()))
    back = Webhook.from_json(data)
    assert back == hook and back.secrets == tuple(secrets) and back.to_json() == hook.to_json()
    assert back.key == hook.key and hook.key.startswith("webhook:")
    assert (
        Webhook("https://example.com/hooks/corral", secret=secrets[0], events=["failed"]).key
        == hook.key
    )
    assert (
        Webhook("https://example.com/hooks/other", secret=secrets[0], events=["failed"]).key
        != hook.key
    )
    assert Webhook("https://example.com/hooks/corral", secret=secrets[0]).key != hook.key
    assert secrets[0] not in repr(hook) and "/hooks/corral" not in repr(hook)
    with pytest.raises(ConfigurationError, match="'url' and 'secret'"):
        Webhook.from_json({"url": "https://example.com/"})
    with pytest.raises(ConfigurationError, match="24 to 64"):
        Webhook.from_json({**data, "secret": "whsec_QUJD"})


async def test_the_settings_timeout_applies_without_a_webhook_timeout(
    receiver: Receiver, secret: str
) -> None:
    settings = NotifySettings(allow=("127.0.0.1",), timeout=0.3)
    with pytest.raises(DeliveryError, match=r"no answer within 0\.3 s"):
        await Webhook(receiver.url("/slow"), secret=secret).deliver(make_notice(), settings)
