"""No raw key ever reaches a log record; failures are logged with what an operator needs."""

from __future__ import annotations

import datetime
import io
import logging
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from apiauth import crypto
from apiauth.models import APIKey
from tests.factories import make_key

pytestmark = pytest.mark.django_db


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        parts = []
        for record in self.records:
            parts.append(record.getMessage())
            parts.extend(repr(value) for value in record.__dict__.values())
        return "\n".join(parts)


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def audit_records(handler: Capture) -> list[dict[str, object]]:
    return [r.apiauth for r in handler.records if r.name == "apiauth.audit"]  # type: ignore[attr-defined]


def test_no_raw_key_in_any_log_record(captured: Capture) -> None:
    client = APIClient()
    raws: list[str] = []

    key, raw = make_key()
    raws.append(raw)
    out = io.StringIO()
    call_command("apiauth_createkey", "--name", "cmd", stdout=out)
    raws.append(out.getvalue().splitlines()[-1])

    client.get("/v1/ping", HTTP_X_API_KEY=raw)
    client.get("/v1/ping", HTTP_AUTHORIZATION=f"Bearer {raw}")
    tampered = raw[:-3] + ("AAA" if raw[-3:] != "AAA" else "BBB")
    unknown = crypto.generate_key("apk").raw
    raws.append(unknown)
    for value in (tampered, unknown, "apk_short", "x" * 5000):
        client.get("/v1/ping", HTTP_X_API_KEY=value)
        client.get("/v1/ping", HTTP_AUTHORIZATION=f"Bearer {value}")

    expired, raw_expired = make_key(expires_at=timezone.now() - datetime.timedelta(1))
    raws.append(raw_expired)
    client.get("/v1/ping", HTTP_X_API_KEY=raw_expired)

    new, raw_new = APIKey.objects.roll(key, datetime.timedelta(0))
    raws.append(raw_new)
    call_command("apiauth_revokekey", raw_new, "--reason", "test", stdout=io.StringIO())
    client.get("/v1/ping", HTTP_X_API_KEY=raw_new)
    client.get("/v1/ping", HTTP_X_API_KEY=raw)

    text = captured.text()
    assert captured.records, "the scenario should have logged"
    for secret in raws:
        assert secret not in text
        assert secret.rsplit("_", 1)[1] not in text  # the secret part alone
        assert crypto.hash_key(secret) not in text


def test_failures_are_logged_with_reason_public_id_and_address(captured: Capture) -> None:
    key, raw = make_key()
    key.revoke()
    APIClient().get("/v1/ping", HTTP_X_API_KEY=raw, REMOTE_ADDR="192.0.2.9")
    APIClient().get("/v1/ping", HTTP_X_API_KEY="garbage", REMOTE_ADDR="192.0.2.10")
    records = audit_records(captured)
    assert {
        "event": "auth_failure",
        "reason": "revoked",
        "credential_kind": "api_key",
        "credential_id": key.public_id,
        "client_ip": "192.0.2.9",
    } in records
    assert {
        "event": "auth_failure",
        "reason": "malformed",
        "credential_kind": "api_key",
        "credential_id": None,
        "client_ip": "192.0.2.10",
    } in records


def test_ip_refusal_is_logged(captured: Capture) -> None:
    key, raw = make_key(allowed_networks=["10.0.0.0/8"])
    response = APIClient().get("/v1/ping", HTTP_X_API_KEY=raw, REMOTE_ADDR="192.0.2.9")
    assert response.status_code == 403
    assert response.json()["detail"] == "This credential may not be used from your address."
    assert audit_records(captured) == [
        {
            "event": "auth_failure",
            "reason": "ip_not_allowed",
            "credential_kind": "api_key",
            "credential_id": key.public_id,
            "client_ip": "192.0.2.9",
        }
    ]


@pytest.mark.parametrize(
    ("state", "detail"),
    [
        ("revoked", "This credential has been revoked."),
        ("expired", "This credential has expired."),
        ("owner_inactive", "This credential's owner is inactive."),
    ],
)
def test_each_lifecycle_refusal_names_the_credential(
    captured: Capture, state: str, detail: str
) -> None:
    from tests.factories import make_user

    owner = make_user(username="holder")
    key, raw = make_key(owner=owner)
    if state == "revoked":
        key.revoke()
    elif state == "expired":
        APIKey.objects.filter(pk=key.pk).update(
            expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
    else:
        owner.is_active = False
        owner.save()
    response = APIClient().get("/v1/ping", HTTP_X_API_KEY=raw, REMOTE_ADDR="192.0.2.9")
    assert response.status_code == 401
    assert (response.json()["code"], response.json()["detail"]) == (state, detail)
    assert {
        "event": "auth_failure",
        "reason": state,
        "credential_kind": "api_key",
        "credential_id": key.public_id,
        "client_ip": "192.0.2.9",
    } in audit_records(captured)
