from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone

from apiauth import crypto
from apiauth.models import APIKey, AuditEvent
from tests.factories import make_key, make_user

pytestmark = pytest.mark.django_db


def test_create_key_stores_only_the_digest() -> None:
    key, raw = make_key()
    assert key.key_hash == crypto.hash_key(raw)
    assert raw.split("_")[1] == key.public_id
    stored = APIKey.objects.filter(pk=key.pk).values().get()
    assert raw not in {str(value) for value in stored.values()}


def test_get_from_key() -> None:
    key, raw = make_key()
    assert APIKey.objects.get_from_key(raw) == key
    with pytest.raises(crypto.MalformedKey):
        APIKey.objects.get_from_key("nope")
    with pytest.raises(APIKey.DoesNotExist):
        APIKey.objects.get_from_key(crypto.generate_key("apk").raw)


def test_create_key_validates() -> None:
    with pytest.raises(ValidationError) as info:
        make_key(scopes=["Bad Scope"], allowed_networks=["10.0.0.0/33"])
    assert {"scopes", "allowed_networks"} <= set(info.value.message_dict)
    with pytest.raises(ValidationError):
        make_key(scopes="orders:read")
    with pytest.raises(ValidationError):
        make_key(allowed_networks="10.0.0.0/8")
    assert not APIKey.objects.exists()


def test_plan_must_be_configured() -> None:
    with pytest.raises(ValidationError):
        make_key(plan="gold")
    with override_settings(APIAUTH={"PLANS": {"gold": {"rate": "10/min", "burst": 5}}}):
        key, _raw = make_key(plan="gold")
        assert key.to_credential().plan == "gold"


def test_rate_limit_overrides_must_be_an_object() -> None:
    with pytest.raises(ValidationError) as info:
        make_key(rate_limits=[1])
    assert "rate_limits" in info.value.message_dict


def test_clean_normalises() -> None:
    key, _raw = make_key(scopes=["b:r", "a:r", "a:r"], allowed_networks=["10.1.2.3/8"])
    assert key.scopes == ["a:r", "b:r"]
    assert key.allowed_networks == ["10.0.0.0/8"]


def test_assign_new_key_only_for_new_keys() -> None:
    key, _raw = make_key()
    with pytest.raises(ValueError):
        key.assign_new_key()


def test_status_and_querysets() -> None:
    active, _ = make_key(name="active")
    expired, _ = make_key(name="expired", expires_at=timezone.now() - datetime.timedelta(1))
    revoked, _ = make_key(name="revoked")
    revoked.revoke(reason="x")
    assert [active.status, expired.status, revoked.status] == ["active", "expired", "revoked"]
    assert list(APIKey.objects.usable()) == [active]
    assert list(APIKey.objects.get_queryset().expired()) == [expired]
    assert list(APIKey.objects.get_queryset().revoked()) == [revoked]
    assert str(active) == "active"


def test_revocation_is_irreversible_and_freezes() -> None:
    user = make_user("ops")
    key, _raw = make_key()
    assert key.revoke(by=user, reason="leaked")
    assert key.revoked_by == user and key.revoked_reason == "leaked"
    first = key.revoked_at
    assert not key.revoke(reason="again")
    assert key.revoked_at == first and key.revoked_reason == "leaked"
    key = APIKey.objects.get(pk=key.pk)
    key.revoked_at = None
    with pytest.raises(ValueError):
        key.save()
    key.name = "renamed"
    with pytest.raises(ValidationError):
        key.full_clean()
    with pytest.raises(ValueError, match="cannot be rolled"):
        APIKey.objects.roll(APIKey.objects.get(pk=key.pk), datetime.timedelta(0))


def test_roll_keeps_reach_and_shortens_old_expiry() -> None:
    owner = make_user()
    later = timezone.now() + datetime.timedelta(days=30)
    key, _raw = make_key(owner=owner, allowed_networks=["10.0.0.0/8"], expires_at=later)
    new, raw = APIKey.objects.roll(key, datetime.timedelta(hours=1), by=owner)
    assert (new.owner, new.scopes, new.allowed_networks) == (owner, key.scopes, ["10.0.0.0/8"])
    assert new.expires_at == later and new.created_by == owner
    assert new.lineage == key.lineage and key.rolled_to == new
    key.refresh_from_db()
    assert key.expires_at is not None and key.expires_at < later
    assert APIKey.objects.get_from_key(raw) == new


def test_roll_keeps_an_earlier_expiry() -> None:
    soon = timezone.now() + datetime.timedelta(minutes=5)
    key, _raw = make_key(expires_at=soon)
    APIKey.objects.roll(key, datetime.timedelta(days=1))
    key.refresh_from_db()
    assert key.expires_at == soon


def test_audit_event_str() -> None:
    event = AuditEvent(action="revoke", credential_kind="api_key", credential_id="X")
    assert str(event) == "revoked api_key X"
