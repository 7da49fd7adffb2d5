"""A worker's copy that would refuse a credential is confirmed first: a refusal must not
outlive the change that undid it, any more than an acceptance outlives a revocation."""

from __future__ import annotations

import datetime
from typing import Any

import jwt
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apiauth.models import APIKey, SigningKey
from tests.factories import make_key, make_user
from tests.utils import call, form, obtain, refused

pytestmark = pytest.mark.django_db


def ping(raw: str, address: str = "127.0.0.1") -> Any:
    return APIClient().get("/v1/ping", HTTP_X_API_KEY=raw, REMOTE_ADDR=address)


def test_a_reactivated_owner() -> None:
    owner = make_user("olga")
    _key, raw = make_key(owner=owner)
    assert ping(raw).status_code == 200
    owner.is_active = False
    owner.save()
    assert ping(raw).json()["code"] == "owner_inactive"
    assert ping(raw).json()["code"] == "owner_inactive"  # this worker's copy refuses now
    owner.is_active = True
    owner.save()
    assert ping(raw).status_code == 200


def test_an_expiry_pushed_back() -> None:
    key, raw = make_key()
    assert ping(raw).status_code == 200
    key.expires_at = timezone.now() - datetime.timedelta(seconds=1)
    key.save()
    assert ping(raw).json()["code"] == "expired"
    key.expires_at = timezone.now() + datetime.timedelta(days=1)
    key.save()
    assert ping(raw).status_code == 200


def test_an_allowlist_widened() -> None:
    key, raw = make_key(allowed_networks=["10.0.0.0/8"])
    assert ping(raw, "10.1.2.3").status_code == 200
    assert ping(raw, "192.0.2.7").status_code == 403
    key.allowed_networks = ["10.0.0.0/8", "192.0.2.0/24"]
    key.save()
    assert ping(raw, "192.0.2.7").status_code == 200


def test_a_refusal_that_stands_costs_one_round_trip_and_no_query(
    django_assert_num_queries: Any,
) -> None:
    owner = make_user("ida", is_active=False)
    _key, raw = make_key(owner=owner)
    assert ping(raw).json()["code"] == "owner_inactive"
    with django_assert_num_queries(0):
        assert ping(raw).json()["code"] == "owner_inactive"


def test_a_tokens_key_owner_reactivated(client: Client, signing_key: Any) -> None:
    owner = make_user("tom")
    _key, raw = make_key(owner=owner, scopes=["orders:read"], plan="pro")
    token = obtain(client, raw).json()["access_token"]
    assert call(client, token).status_code == 200
    owner.is_active = False
    owner.save()
    refused(call(client, token), "owner_inactive")
    owner.is_active = True
    owner.save()
    assert call(client, token).status_code == 200


class TestRevokeAcrossARoll:
    """During a roll's grace period the predecessor and its successor are one client: each
    revokes the other's tokens (RFC 7009 §2.1: the token was issued to the client)."""

    def test_access_token(self, client: Client, signing_key: Any, client_key: Any) -> None:
        key, raw = client_key
        token = obtain(client, raw).json()["access_token"]
        _successor, successor_raw = APIKey.objects.roll(key, datetime.timedelta(hours=1))
        assert form("/auth/revoke", client, successor_raw, token=token).status_code == 200
        refused(call(client, token), "revoked")

    def test_refresh_token(self, client: Client, signing_key: Any, client_key: Any) -> None:
        key, raw = client_key
        issued = obtain(client, raw).json()
        _successor, successor_raw = APIKey.objects.roll(key, datetime.timedelta(hours=1))
        response = form("/auth/revoke", client, successor_raw, token=issued["refresh_token"])
        assert response.status_code == 200
        refused(call(client, issued["access_token"]), "revoked")

    def test_another_clients_token_is_left_alone(
        self, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        token = obtain(client, client_key[1]).json()["access_token"]
        _other, other_raw = make_key(scopes=["orders:read"], plan="pro")
        assert form("/auth/revoke", client, other_raw, token=token).status_code == 200
        assert call(client, token).status_code == 200


def test_a_signing_key_revoked_in_another_process_signs_nothing(
    client: Client, client_key: Any
) -> None:
    """This process's key ring still names the old key active; the database does not."""
    old = SigningKey.objects.generate("ES256", state="active")
    first = obtain(client, client_key[1]).json()["access_token"]
    assert jwt.get_unverified_header(first)["kid"] == old.kid
    # Another process's work: no signal reaches this one.
    SigningKey.objects.filter(pk=old.pk).update(state="revoked")
    new = SigningKey.objects.generate("ES256", state="next")
    SigningKey.objects.filter(pk=new.pk).update(state="active")
    second = obtain(client, client_key[1]).json()["access_token"]
    assert jwt.get_unverified_header(second)["kid"] == new.kid
    assert call(client, second).status_code == 200
    # And with no active key left at all: 503, never a token signed by the revoked one.
    SigningKey.objects.filter(pk=new.pk).update(state="revoked")
    response = obtain(client, client_key[1])
    assert response.status_code == 503, response.content
