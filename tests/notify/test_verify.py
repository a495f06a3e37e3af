"""``corral.notify.verify``: the receiver's check, against headers made by the
``standardwebhooks`` reference library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook as ReferenceWebhook

from corral.errors import ConfigurationError, ValidationError
from corral.notify import InvalidSignature, Webhook, verify

BODY = b'{"type":"job.completed","timestamp":null,"data":{"id":"job-1"}}'


def signed(secret: str, body: bytes = BODY, age: timedelta = timedelta()) -> dict[str, str]:
    when = datetime.now(UTC) - age
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": ReferenceWebhook(secret).sign("msg_1", when, body),
    }


@pytest.fixture
def secret() -> str:
    return Webhook.new_secret()


def test_a_good_webhook_returns_its_body(secret: str) -> None:
    assert verify(BODY, signed(secret), secret) == {
        "type": "job.completed",
        "timestamp": None,
        "data": {"id": "job-1"},
    }
    capitalised = {k.title(): v for k, v in signed(secret).items()}  # Webhook-Id...
    assert verify(BODY.decode(), capitalised, secret)["data"]["id"] == "job-1"


def test_any_of_several_secrets_verifies(secret: str) -> None:
    assert verify(BODY, signed(secret), [Webhook.new_secret(), secret])["type"] == "job.completed"


def test_a_tampered_body_is_rejected(secret: str) -> None:
    with pytest.raises(InvalidSignature, match="No matching signature"):
        verify(BODY.replace(b"job-1", b"job-2"), signed(secret), secret)


def test_a_wrong_secret_is_rejected(secret: str) -> None:
    with pytest.raises(InvalidSignature, match=r"'msg_1' rejected.*checked with 2 secrets"):
        verify(BODY, signed(secret), [Webhook.new_secret(), Webhook.new_secret()])


@pytest.mark.parametrize(("age", "reason"), [(600, "too old"), (-600, "too new")])
def test_a_timestamp_outside_5_minutes_is_rejected(secret: str, age: int, reason: str) -> None:
    with pytest.raises(InvalidSignature, match=reason):
        verify(BODY, signed(secret, age=timedelta(seconds=age)), secret)
    verify(BODY, signed(secret, age=timedelta(seconds=240)), secret)  # within tolerance


def test_missing_headers_are_named(secret: str) -> None:
    headers = signed(secret)
    del headers["webhook-signature"]
    with pytest.raises(InvalidSignature, match=r"missing header.*webhook-signature"):
        verify(BODY, headers, secret)


def test_a_signed_body_that_is_not_json(secret: str) -> None:
    with pytest.raises(ValidationError, match="not JSON"):
        verify(b"<html>", signed(secret, b"<html>"), secret)


def test_a_malformed_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"verify\(\): a secret must start with 'whsec_'"):
        verify(BODY, {}, "hunter2")


def test_invalid_signature_is_a_validation_error() -> None:
    assert issubclass(InvalidSignature, ValidationError)
