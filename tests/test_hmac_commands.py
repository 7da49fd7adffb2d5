"""The HMAC management commands: their output contract and their refusals."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from apiauth import encryption
from apiauth.models import AuditEvent, HMACCredential
from tests.factories import make_hmac, make_user
from tests.utils import send

pytestmark = pytest.mark.django_db


def run(*args: str, **options: Any) -> list[str]:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue().splitlines()


def test_createhmac_prints_the_pair_on_its_last_line() -> None:
    make_user("bob")
    lines = run(
        "apiauth_createhmac",
        "--name",
        "partner",
        "--owner",
        "bob",
        "--scopes",
        "orders:read,orders:write",
        "--allow-ip",
        "127.0.0.0/8",
        "--expires-in",
        "3600",
        "--plan",
        "pro",
    )
    akid, secret = lines[-1].split(" ")
    credential = HMACCredential.objects.get(access_key_id=akid)
    assert credential.owner is not None and credential.owner.username == "bob"
    assert credential.scopes == ["orders:read", "orders:write"] and credential.plan == "pro"
    assert credential.allowed_networks == ["127.0.0.0/8"] and credential.expires_at
    assert secret not in credential.secret and credential.secrets() == [secret]
    assert send((credential, secret), "GET", "/v1/orders").status_code == 200
    assert AuditEvent.objects.filter(action="issue", credential_id=akid).exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--name", ""],
        ["--name", "x", "--owner", "nobody"],
        ["--name", "x", "--scopes", "BAD SCOPE"],
        ["--name", "x", "--allow-ip", "999.0.0.1"],
        ["--name", "x", "--plan", "gold"],
        ["--name", "x", "--expires-in", "0"],
    ],
)
def test_createhmac_refuses_bad_arguments_and_writes_nothing(args: list[str]) -> None:
    with pytest.raises(CommandError):
        run("apiauth_createhmac", *args)
    assert not HMACCredential.objects.exists()


def test_revokehmac_is_idempotent() -> None:
    credential, secret = make_hmac()
    assert run("apiauth_revokehmac", credential.access_key_id, "--reason", "leaked")[-1].startswith(
        "Revoked"
    )
    assert "already revoked" in run("apiauth_revokehmac", credential.access_key_id)[-1]
    assert send((credential, secret)).json()["code"] == "revoked"
    event = AuditEvent.objects.get(action="revoke", credential_id=credential.access_key_id)
    assert event.reason == "leaked"


@pytest.mark.parametrize("value", ["AAAAAAAAAAAAAAAAAAAA", "a-secret-pasted-by-mistake"])
def test_revokehmac_unknown_or_not_an_id(value: str) -> None:
    with pytest.raises(CommandError) as error:
        run("apiauth_revokehmac", value)
    assert "pasted" not in str(error.value)


def test_rotatehmac_keeps_the_old_secret_for_the_grace() -> None:
    credential, old = make_hmac()
    akid, new = run("apiauth_rotatehmac", credential.access_key_id, "--grace", "60")[-1].split()
    assert akid == credential.access_key_id and new != old
    assert send((credential, old)).status_code == 200
    assert send((credential, new)).status_code == 200
    run("apiauth_rotatehmac", credential.access_key_id, "--grace", "0")
    assert send((credential, new)).json()["code"] == "signature_mismatch"
    assert AuditEvent.objects.filter(action="rotate").count() == 2
    credential.revoke()
    with pytest.raises(CommandError):
        run("apiauth_rotatehmac", credential.access_key_id)


def test_encryptionkey_and_reencrypt() -> None:
    credential, secret = make_hmac()
    new_key = run("apiauth_encryptionkey")[-1]
    assert len(encryption.decode_key(new_key)) == 32
    from django.conf import settings

    old = settings.APIAUTH["ENCRYPTION_KEYS"]
    with override_settings(APIAUTH={**settings.APIAUTH, "ENCRYPTION_KEYS": [new_key, *old]}):
        assert run("apiauth_reencrypt")[-1] == "Re-encrypted 1 HMAC credential(s)."
    with override_settings(APIAUTH={**settings.APIAUTH, "ENCRYPTION_KEYS": [new_key]}):
        assert HMACCredential.objects.get(pk=credential.pk).secrets() == [secret]
    with (
        override_settings(
            APIAUTH={**settings.APIAUTH, "ENCRYPTION_KEYS": [encryption.generate_key()]}
        ),
        pytest.raises(CommandError),
    ):
        run("apiauth_reencrypt")
