"""The authentication classes' extension points: the attributes a subclass sets are the ones
used, a refusal is recorded once, and the throttle's call back is a named protocol."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client, RequestFactory, override_settings
from rest_framework.request import Request

from apiauth import verification
from apiauth.authentication import (
    APIKeyAuthentication,
    CredentialAuthentication,
    HMACAuthentication,
    JWTAuthentication,
)
from apiauth.authentication.base import Refused
from apiauth.cache import CredentialCache
from apiauth.credentials import Confirmable
from apiauth.models import APIKey
from tests.factories import make_hmac, make_key
from tests.utils import audited, call, form, obtain, send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_redis")]

lookups: list[str] = []


def counted_lookup(value: str) -> APIKey | None:
    lookups.append(value)
    return APIKey.objects.get_by_public_id(value)


def counted_digest_lookup(value: str) -> APIKey | None:
    lookups.append(value)
    return APIKey.objects.get_by_digest(value)


class CountingVerifier(verification.TokenVerifier):
    calls = 0

    def verify(self, token: str) -> verification.Verified:
        CountingVerifier.calls += 1
        return super().verify(token)


class ProjectJWTAuthentication(JWTAuthentication):
    verifier = CountingVerifier()
    clients = CredentialCache(counted_lookup, lambda key: key.lineage_id)


class ProjectKeyAuthentication(APIKeyAuthentication):
    cache = CredentialCache(counted_digest_lookup, lambda key: key.lineage_id)


PROJECT_CLASSES = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tests.test_authentication_hooks.ProjectKeyAuthentication",
        "tests.test_authentication_hooks.ProjectJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "apiauth.permissions.HasScopes",
        "rest_framework.permissions.IsAuthenticated",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["apiauth.throttling.TokenBucketThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apiauth.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apiauth.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}


@pytest.fixture(autouse=True)
def _fresh() -> None:
    lookups.clear()
    CountingVerifier.calls = 0
    ProjectJWTAuthentication.clients.clear()
    ProjectKeyAuthentication.cache.clear()
    ProjectJWTAuthentication.verifier.clear()


def test_the_key_cache_a_subclass_sets_is_the_one_read() -> None:
    key, raw = make_key()
    request = Request(RequestFactory().get("/v1/ping", HTTP_X_API_KEY=raw))
    user, credential = ProjectKeyAuthentication().authenticate(request)  # type: ignore[misc]
    assert credential.id == key.public_id
    assert lookups == [key.key_hash, key.key_hash]  # the fill reads the row after the token


@override_settings(REST_FRAMEWORK=PROJECT_CLASSES)
def test_the_verifier_and_clients_a_subclass_sets_serve_the_api_and_the_endpoints(
    client: Client, signing_key: Any, client_key: tuple[APIKey, str]
) -> None:
    key, raw = client_key
    token = obtain(client, raw).json()["access_token"]
    request = Request(RequestFactory().get("/v1/ping", HTTP_AUTHORIZATION=f"Bearer {token}"))
    _user, credential = ProjectJWTAuthentication().authenticate(request)  # type: ignore[misc]
    assert credential.id == key.public_id
    assert CountingVerifier.calls == 1
    assert key.public_id in lookups  # the token's client, from the subclass's cache
    _server, server_raw = make_key(scopes=["tokens:introspect"], plan="pro")
    response = form("/auth/introspect", client, server_raw, token=token)
    assert response.json()["active"] is True
    assert CountingVerifier.calls == 2  # introspection judged the token with the same verifier


def test_the_endpoints_share_the_default_verifier(
    client: Client, signing_key: Any, client_key: tuple[APIKey, str]
) -> None:
    assert JWTAuthentication.verifier is verification.verifier
    verification.verifier.clear()
    _key, raw = client_key
    token = obtain(client, raw).json()["access_token"]
    _server, server_raw = make_key(scopes=["tokens:introspect"], plan="pro")
    assert form("/auth/introspect", client, server_raw, token=token).json()["active"] is True
    assert len(verification.verifier.verified) == 1  # remembered by introspection...
    assert call(client, token).status_code == 200
    assert len(verification.verifier.verified) == 1  # ...and served to the API from memory


class BusinessHoursKeyAuthentication(APIKeyAuthentication):
    """A project's own rule beside the lifecycle and network ones."""

    open = True
    rules_run = 0

    def validate_credential(self, request: Any, obj: Any, credential_id: str) -> None:
        BusinessHoursKeyAuthentication.rules_run += 1
        super().validate_credential(request, obj, credential_id)
        if not self.open:
            raise Refused("closed", "Come back tomorrow.", credential_id, forbidden=True)


def test_a_rule_of_the_projects_own_judges_every_request() -> None:
    """``validate_credential`` runs once per request, on the worker's copy too, and its own
    refusal is not taken for a refused copy to confirm."""
    from rest_framework import exceptions

    _key, raw = make_key()
    auth = BusinessHoursKeyAuthentication()

    def authenticate() -> Any:
        return auth.authenticate(Request(RequestFactory().get("/v1/ping", HTTP_X_API_KEY=raw)))

    BusinessHoursKeyAuthentication.rules_run = 0
    assert authenticate() is not None and authenticate() is not None  # a fill, then the copy
    assert BusinessHoursKeyAuthentication.rules_run == 2
    auth.open = False
    with pytest.raises(exceptions.PermissionDenied) as refusal:
        authenticate()
    assert refusal.value.get_codes() == "closed"
    assert BusinessHoursKeyAuthentication.rules_run == 3


@pytest.mark.parametrize("scheme", [APIKeyAuthentication, HMACAuthentication, JWTAuthentication])
def test_every_scheme_can_be_confirmed_by_the_throttle(scheme: type[Any]) -> None:
    assert issubclass(scheme, CredentialAuthentication)
    assert isinstance(scheme(), Confirmable)


def counted_once(refused: Any) -> list[int]:
    """Statuses of three refused requests under a failed-auth bucket of two: a refusal
    debited twice would lock the address out at the second."""
    with override_settings(
        APIAUTH={**settings.APIAUTH, "FAILED_AUTH_LIMITS": {"rate": "1/hour", "burst": 2}}
    ):
        return [refused().status_code for _ in range(3)]


class TestOneRefusalOneRecord:
    """Whichever step refuses, the refusal is audited once and debited once from the client
    address's failed-authentication bucket."""

    def test_api_key(self, client: Client, caplog: pytest.LogCaptureFixture) -> None:
        key, raw = make_key()
        key.delete()
        assert counted_once(lambda: client.get("/v1/ping", HTTP_X_API_KEY=raw)) == [401, 401, 429]
        assert len(audited(caplog, "unknown")) == 3

    def test_a_revoked_api_key(self, client: Client, caplog: pytest.LogCaptureFixture) -> None:
        key, raw = make_key()
        key.revoke()
        assert counted_once(lambda: client.get("/v1/ping", HTTP_X_API_KEY=raw)) == [401, 401, 429]
        assert len(audited(caplog, "revoked")) == 3

    def test_hmac(self, client: Client, caplog: pytest.LogCaptureFixture) -> None:
        obj, secret = make_hmac()
        wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        assert counted_once(lambda: send((obj, wrong))) == [401, 401, 429]
        assert len(audited(caplog, "signature_mismatch")) == 3

    def test_jwt(
        self,
        client: Client,
        caplog: pytest.LogCaptureFixture,
        signing_key: Any,
        client_key: tuple[APIKey, str],
    ) -> None:
        key, raw = client_key
        token = obtain(client, raw).json()["access_token"]
        key.revoke()
        assert counted_once(lambda: call(client, token)) == [401, 401, 429]
        assert len(audited(caplog, "revoked")) == 3

    def test_a_forbidden_address_is_audited_and_not_counted(
        self, client: Client, caplog: pytest.LogCaptureFixture
    ) -> None:
        _key, raw = make_key(allowed_networks=["192.0.2.0/24"])
        assert counted_once(lambda: client.get("/v1/ping", HTTP_X_API_KEY=raw)) == [403, 403, 403]
        assert len(audited(caplog, "ip_not_allowed")) == 3
