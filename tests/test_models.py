from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apiauth import cache, crypto, models, sigv4
from apiauth.models import (
    HMAC_SECRET_LENGTH,
    AlreadyRolled,
    APIKey,
    AuditEvent,
    HMACCredential,
    RevokedCredential,
    SigningKey,
    TokenFamily,
    may_act_as,
    private_copy,
)
from tests.factories import make_hmac, make_key, make_user

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
    with pytest.raises(ValueError, match=r"^A revoked key cannot be rolled\.$"):
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


class TestRevocation:
    def test_by_nobody_and_a_long_reason(self) -> None:
        key, _raw = make_key()
        assert key.revoke(by=AnonymousUser(), reason="r" * 600)
        stored = APIKey.objects.get(pk=key.pk)
        assert stored.revoked_by is None and stored.revoked_reason == "r" * 500

    def test_the_instance_revoked_refuses_to_be_saved(self) -> None:
        key, _raw = make_key()
        key.revoke()
        key.name = "renamed"
        with pytest.raises(RevokedCredential, match=r"^A revoked credential cannot be changed\.$"):
            key.save()

    def test_a_copy_loaded_before_the_revocation(self) -> None:
        key, _raw = make_key()
        copy = APIKey.objects.get(pk=key.pk)
        key.revoke()
        copy.name = "renamed"
        message = r"^This credential was revoked meanwhile; it cannot be changed\.$"
        with pytest.raises(RevokedCredential, match=message), transaction.atomic():
            copy.save()
        assert APIKey.objects.get(pk=key.pk).name == key.name

    def test_expired_and_revoked_counts_as_revoked(self) -> None:
        key, _raw = make_key(expires_at=timezone.now() - datetime.timedelta(days=1))
        key.revoke()
        assert key.status == "revoked"
        assert not APIKey.objects.get_queryset().expired().exists()
        assert list(APIKey.objects.get_queryset().revoked()) == [key]


def test_allowed_networks_must_be_a_list() -> None:
    key = APIKey(name="n", allowed_networks="10.0.0.0/8")
    with pytest.raises(ValidationError) as caught:
        key.full_clean(exclude=["key_hash", "public_id"])
    [error] = caught.value.error_dict["allowed_networks"]
    assert error.code == "invalid_networks"
    assert error.messages == ["Allowed IPs must be a list of strings."]


class TestHMACSecrets:
    def test_a_secret_as_documented(self) -> None:
        _obj, secret = make_hmac()
        assert len(secret) == HMAC_SECRET_LENGTH == 43
        assert set(secret) <= set(crypto.ALPHABET)

    def test_decrypted_and_derived_once_per_copy(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A worker's copy serves many requests: one decryption, one derivation per day,
        region and service."""
        obj, _secret = make_hmac()
        obj = HMACCredential.objects.get(pk=obj.pk)
        decrypt, derive = HMACCredential.decrypt, sigv4.signing_key
        calls: list[str] = []

        def decrypting(self: HMACCredential, token: str) -> str:
            calls.append("decrypt")
            return decrypt(self, token)

        def deriving(*args: object) -> bytes:
            calls.append("derive")
            return derive(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(HMACCredential, "decrypt", decrypting)
        monkeypatch.setattr(sigv4, "signing_key", deriving)
        for _ in range(3):
            obj.signing_keys(sigv4.AWS, "20261203", "global", "apiauth")
        assert calls == ["decrypt", "derive"]
        obj.signing_keys(sigv4.AWS, "20261204", "global", "apiauth")
        assert calls == ["decrypt", "derive", "derive"]
        # At most 17 derivations kept: then they start again.
        for day in range(5, 20):
            obj.signing_keys(sigv4.AWS, f"202612{day:02}", "global", "apiauth")
        assert len(calls) == 2 + 16 and len(obj.__dict__["_signing_keys"]) == 17
        obj.signing_keys(sigv4.AWS, "20261203", "global", "apiauth")
        assert len(calls) == 18  # still kept
        obj.signing_keys(sigv4.AWS, "20261220", "global", "apiauth")
        assert len(obj.__dict__["_signing_keys"]) == 1
        obj.signing_keys(sigv4.AWS, "20261203", "global", "apiauth")
        assert len(calls) == 20
        # Kept by what the derivation reads: a scheme's other names share the key.
        obj.signing_keys(sigv4.Scheme(header_prefix="X-Acme-"), "20261203", "global", "apiauth")
        assert len(calls) == 20
        acme = sigv4.Scheme(secret_prefix="ACME1")
        assert obj.signing_keys(acme, "20261203", "global", "apiauth") != obj.signing_keys(
            sigv4.AWS, "20261203", "global", "apiauth"
        )
        assert len(calls) == 21

    def test_a_rotation_is_seen_by_the_instance_in_hand(self) -> None:
        obj, old = make_hmac()
        scope = (sigv4.AWS, "20261203", "global", "apiauth")
        assert obj.signing_keys(*scope) == [sigv4.signing_key(sigv4.AWS, old, *scope[1:])]
        new = HMACCredential.objects.rotate_secret(obj, datetime.timedelta(hours=1))
        assert obj.signing_keys(*scope) == [
            sigv4.signing_key(sigv4.AWS, new, *scope[1:]),
            sigv4.signing_key(sigv4.AWS, old, *scope[1:]),
        ]

    def test_the_previous_secret_ends_at_its_instant(self, monkeypatch: pytest.MonkeyPatch) -> None:
        obj, _old = make_hmac()
        HMACCredential.objects.rotate_secret(obj, datetime.timedelta(hours=1))
        assert obj.previous_secret_expires_at is not None
        scope = (sigv4.AWS, "20261203", "global", "apiauth")
        instant = obj.previous_secret_expires_at
        just_before = instant - datetime.timedelta(microseconds=1)
        monkeypatch.setattr(models.hmac, "timezone", SimpleNamespace(now=lambda: just_before))
        assert len(obj.signing_keys(*scope)) == 2
        monkeypatch.setattr(models.hmac, "timezone", SimpleNamespace(now=lambda: instant))
        assert len(obj.signing_keys(*scope)) == 1


def test_a_signing_key_revoked() -> None:
    key = SigningKey.objects.generate("ES256")
    before = timezone.now()
    assert SigningKey.objects.revoke(key, "k" * 600)
    stored = SigningKey.objects.get(pk=key.pk)
    assert stored.state == "revoked" and stored.reason == "k" * 500
    assert stored.revoked_at is not None and before <= stored.revoked_at <= timezone.now()


def test_a_family_past_its_lifetime_is_not_live() -> None:
    key, _raw = make_key()
    now = timezone.now()
    TokenFamily.objects.create(api_key=key, expires_at=now + datetime.timedelta(hours=1))
    TokenFamily.objects.create(api_key=key, expires_at=now - datetime.timedelta(seconds=1))
    assert [f.expires_at > now for f in TokenFamily.objects.live()] == [True]


class TestInTheirOwnWords:
    """Refusals a caller (the admin, a command, a script) shows as they are."""

    @pytest.mark.parametrize(
        ("field", "value", "code", "message"),
        [
            ("scopes", "orders:read", "invalid_scopes", "Scopes must be a list of strings."),
            (
                "name",
                "line\nbreak",
                "invalid_name",
                "Names may not contain control characters, line breaks or invisible formatting.",
            ),
        ],
    )
    def test_field_refusals(self, field: str, value: str, code: str, message: str) -> None:
        with pytest.raises(ValidationError) as caught:
            make_key(**{field: value})
        [error] = caught.value.error_dict[field]
        assert (error.code, error.messages) == (code, [message])

    def test_rate_limit_overrides(self) -> None:
        for overrides, code, message in [
            (["burst", 5], "invalid_limits", "Rate-limit overrides must be a JSON object."),
            (
                {"burst": "lots"},
                "invalid_limits",
                "burst must be a whole number between 1 and 1000000000.",
            ),
        ]:
            with pytest.raises(ValidationError) as caught:
                make_key(rate_limits=overrides)
            [error] = caught.value.error_dict["rate_limits"]
            assert (error.code, error.messages) == (code, [message])

    def test_revoked_without_a_reason(self) -> None:
        key, _raw = make_key()
        key.revoke()
        assert APIKey.objects.get(pk=key.pk).revoked_reason == ""
        signing_key = SigningKey.objects.generate("ES256")
        SigningKey.objects.revoke(signing_key)
        assert SigningKey.objects.get(pk=signing_key.pk).reason == ""

    def test_a_revoked_credential_in_a_form(self) -> None:
        key, _raw = make_key()
        key.revoke()
        key = APIKey.objects.get(pk=key.pk)
        with pytest.raises(ValidationError) as caught:
            key.full_clean()
        [error] = caught.value.error_dict["__all__"]
        assert error.code == "revoked"
        assert error.messages == [
            "This credential is revoked; revoked credentials cannot be changed."
        ]

    def test_an_unknown_plan(self) -> None:
        with pytest.raises(ValidationError) as caught:
            make_key(plan="gold")
        [error] = caught.value.error_dict["plan"]
        assert error.code == "unknown_plan"
        assert error.messages == [
            "Unknown plan “gold”: choose one of the plans in APIAUTH['PLANS']."
        ]

    def test_secrets_only_for_new_credentials(self) -> None:
        key, _raw = make_key()
        message = r"^Only a new key gets a secret; roll an existing key instead\.$"
        with pytest.raises(ValueError, match=message):
            key.assign_new_key()
        obj, _secret = make_hmac()
        message = r"^Only a new credential gets a secret; rotate an existing one\.$"
        with pytest.raises(ValueError, match=message):
            obj.assign_new_secret()
        obj.revoke()
        with pytest.raises(ValueError, match=r"^A revoked credential cannot be rotated\.$"):
            HMACCredential.objects.rotate_secret(obj, datetime.timedelta(hours=1))

    def test_no_such_key_and_already_rolled(self) -> None:
        key, raw = make_key()
        APIKey.objects.filter(pk=key.pk).delete()
        with pytest.raises(APIKey.DoesNotExist, match=r"^No API key matches\.$"):
            APIKey.objects.get_from_key(raw)
        key, _raw = make_key()
        successor, _raw = APIKey.objects.roll(key, datetime.timedelta(0))
        with pytest.raises(AlreadyRolled, match=r"^This key was already rolled\.$") as caught:
            APIKey.objects.roll(key, datetime.timedelta(0))
        assert caught.value.successor == successor

    def test_names(self) -> None:
        key = SigningKey.objects.generate("ES256")
        assert str(key) == f"ES256 {key.kid[:12]} (next)"
        api_key, _raw = make_key()
        family = TokenFamily.objects.create(api_key=api_key, expires_at=timezone.now())
        assert str(family) == f"{api_key.public_id} / {str(family.id)[:8]}"


class TestRolling:
    def test_the_successor_keeps_the_overrides_and_names_no_anonymous_creator(self) -> None:
        key, _raw = make_key(rate_limits={"burst": 5})
        new, _raw = APIKey.objects.roll(key, datetime.timedelta(0), by=AnonymousUser())
        assert new.rate_limits == {"burst": 5} and new.created_by is None


def test_who_may_act_as_whom() -> None:
    owner = make_user("owner")
    assert may_act_as(owner, owner) and may_act_as(None, None)
    assert not may_act_as(None, owner) and not may_act_as(AnonymousUser(), owner)
    # Something that does not say it is authenticated is not, whatever its pk.
    assert not may_act_as(SimpleNamespace(pk=owner.pk), owner)


def test_last_used_is_written_once_the_interval_has_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    key, _raw = make_key()
    now = timezone.now()
    key.last_used_at = now - datetime.timedelta(seconds=60)  # LAST_USED_INTERVAL
    APIKey.objects.filter(pk=key.pk).update(last_used_at=key.last_used_at)
    monkeypatch.setattr(models.base, "timezone", SimpleNamespace(now=lambda: now))
    key.touch("192.0.2.1")
    stored = APIKey.objects.get(pk=key.pk)
    assert (stored.last_used_at, stored.last_used_ip) == (now, "192.0.2.1")


def test_a_use_is_due_once_the_interval_has_passed() -> None:
    key, _raw = make_key()
    now = timezone.now()
    assert key.touch_is_due(now)  # never used
    key.last_used_at = now - datetime.timedelta(seconds=59.999)
    assert not key.touch_is_due(now) and not key.touch_is_due()
    key.last_used_at = now - datetime.timedelta(seconds=60)  # LAST_USED_INTERVAL
    assert key.touch_is_due(now)


@pytest.mark.django_db
def test_the_client_address_is_worked_out_only_when_a_use_is_recorded() -> None:
    """A warm request of a key without an allowlist needs no client address: it is resolved
    only for the use recorded once a minute (and, without a credential, the throttle's
    identity)."""
    from django.test import RequestFactory
    from rest_framework.request import Request

    from apiauth.authentication import APIKeyAuthentication

    _key, raw = make_key()

    def resolved() -> bool:
        request = RequestFactory().get("/", headers={"X-API-Key": raw})
        assert APIKeyAuthentication().authenticate(Request(request)) is not None
        return "_apiauth_client_ip" in request.__dict__

    assert resolved()  # the first use is recorded
    assert not resolved() and not resolved()


def test_a_private_copy_caches_its_own_relations() -> None:
    user = make_user()
    copy = private_copy(user)
    copy._state.fields_cache["example"] = object()
    assert "example" not in user._state.fields_cache
    assert copy.pk == user.pk and copy is not user


def test_a_save_of_some_fields_writes_only_those() -> None:
    key, _raw = make_key(scopes=["orders:read"])
    key.name, key.scopes = "renamed", ["orders:write"]
    key.save(update_fields=["name"])
    stored = APIKey.objects.get(pk=key.pk)
    assert (stored.name, stored.scopes) == ("renamed", ["orders:read"])


@pytest.mark.django_db
def test_last_used_is_written_at_most_once_a_minute() -> None:
    key, raw = make_key()
    thirty_seconds_ago = timezone.now() - datetime.timedelta(seconds=30)
    APIKey.objects.filter(pk=key.pk).update(last_used_at=thirty_seconds_ago)
    cache.invalidate([key.lineage_id])
    assert APIClient().get("/v1/ping", HTTP_X_API_KEY=raw).status_code == 200
    key.refresh_from_db()
    assert key.last_used_at == thirty_seconds_ago  # 30 s < 60 s: not written
    a_minute_ago = timezone.now() - datetime.timedelta(seconds=61)
    APIKey.objects.filter(pk=key.pk).update(last_used_at=a_minute_ago)
    cache.invalidate([key.lineage_id])
    APIClient().get("/v1/ping", HTTP_X_API_KEY=raw)
    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_at > a_minute_ago


@pytest.mark.django_db
def test_last_used_update_is_conditional() -> None:
    """A stale copy never writes over a fresher use (the UPDATE's WHERE)."""
    key, _raw = make_key()
    first, stale = APIKey.objects.get(pk=key.pk), APIKey.objects.get(pk=key.pk)
    first.touch("192.0.2.1")
    stale.touch("192.0.2.2")  # its last_used_at is still None
    key.refresh_from_db()
    assert key.last_used_ip == "192.0.2.1"
