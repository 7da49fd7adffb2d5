"""API key authentication over HTTP, through the demo's DRF views."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apiauth import cache, crypto
from apiauth.models import APIKey
from tests.factories import make_key, make_user

pytestmark = pytest.mark.django_db

PING = "/v1/ping"
WHOAMI = "/v1/whoami"


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert body["title"] and body["detail"]
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Api-Key realm=")
    return body


class TestPresentation:
    def test_x_api_key_header(self, client: APIClient) -> None:
        key, raw = make_key()
        response = client.get(PING, HTTP_X_API_KEY=raw)
        assert response.status_code == 200
        assert response.json()["kind"] == "api_key"
        assert response.json()["id"] == key.public_id
        assert raw not in response.content.decode()

    def test_authorization_api_key_scheme(self, client: APIClient) -> None:
        _key, raw = make_key()
        assert client.get(PING, HTTP_AUTHORIZATION=f"Api-Key {raw}").status_code == 200
        assert client.get(PING, HTTP_AUTHORIZATION=f"api-key   {raw}  ").status_code == 200

    def test_bearer_with_our_prefix(self, client: APIClient) -> None:
        _key, raw = make_key()
        assert client.get(PING, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200

    def test_bearer_without_our_prefix_is_not_ours(self, client: APIClient) -> None:
        # JWT-shaped: the API key class steps aside and JWTAuthentication refuses it.
        response = client.get(PING, HTTP_AUTHORIZATION="Bearer eyJhbGciOi.eyJzdWIiOiIxIn0.sig")
        assert response.status_code == 401
        assert response.json()["code"] == "malformed"
        assert response["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')

    def test_no_credentials(self, client: APIClient) -> None:
        assert_problem(client.get(PING), 401, "not_authenticated")

    def test_query_param_ignored_by_default(self, client: APIClient) -> None:
        _key, raw = make_key()
        assert_problem(client.get(PING, {"api_key": raw}), 401, "not_authenticated")

    def test_query_param_when_enabled(self, client: APIClient) -> None:
        _key, raw = make_key()
        with override_settings(APIAUTH={"KEY_QUERY_PARAM": "api_key"}):
            assert client.get(PING, {"api_key": raw}).status_code == 200

    def test_query_param_enabled_but_absent(self, client: APIClient) -> None:
        _key, raw = make_key()
        with override_settings(APIAUTH={"KEY_QUERY_PARAM": "api_key"}):
            assert client.get(PING, {"page": "2"}, HTTP_X_API_KEY=raw).status_code == 200

    def test_two_different_keys_are_refused(self, client: APIClient) -> None:
        _a, raw_a = make_key()
        _b, raw_b = make_key()
        response = client.get(PING, HTTP_X_API_KEY=raw_a, HTTP_AUTHORIZATION=f"Api-Key {raw_b}")
        body = assert_problem(response, 401, "ambiguous")
        assert body["detail"] == "More than one API key was presented."

    def test_same_key_twice_is_fine(self, client: APIClient) -> None:
        _key, raw = make_key()
        response = client.get(PING, HTTP_X_API_KEY=raw, HTTP_AUTHORIZATION=f"Api-Key {raw}")
        assert response.status_code == 200

    def test_custom_header_and_prefix(self, client: APIClient) -> None:
        with override_settings(APIAUTH={"KEY_HEADER": "X-Service-Token", "KEY_PREFIX": "acme"}):
            _key, raw = make_key()
            assert raw.startswith("acme_")
            assert client.get(PING, HTTP_X_SERVICE_TOKEN=raw).status_code == 200
            assert_problem(client.get(PING, HTTP_X_API_KEY=raw), 401, "not_authenticated")


class TestRejections:
    def test_unknown_key(self, client: APIClient, caplog: Any) -> None:
        generated = crypto.generate_key("apk")
        body = assert_problem(client.get(PING, HTTP_X_API_KEY=generated.raw), 401, "unknown")
        assert body["detail"] == "Invalid API key."
        [record] = [r for r in caplog.records if hasattr(r, "apiauth")]
        assert record.apiauth["credential_id"] == generated.public_id

    def test_revoked(self, client: APIClient) -> None:
        key, raw = make_key()
        assert client.get(PING, HTTP_X_API_KEY=raw).status_code == 200
        key.revoke(reason="leaked")
        assert_problem(client.get(PING, HTTP_X_API_KEY=raw), 401, "revoked")

    def test_expired(self, client: APIClient) -> None:
        _key, raw = make_key(expires_at=timezone.now() - datetime.timedelta(seconds=1))
        assert_problem(client.get(PING, HTTP_X_API_KEY=raw), 401, "expired")

    def test_not_yet_expired(self, client: APIClient) -> None:
        _key, raw = make_key(expires_at=timezone.now() + datetime.timedelta(hours=1))
        assert client.get(PING, HTTP_X_API_KEY=raw).status_code == 200

    def test_inactive_owner(self, client: APIClient) -> None:
        _key, raw = make_key(owner=make_user(is_active=False))
        assert_problem(client.get(PING, HTTP_X_API_KEY=raw), 401, "owner_inactive")

    def test_revocation_is_checked_before_expiry(self, client: APIClient) -> None:
        key, raw = make_key(expires_at=timezone.now() - datetime.timedelta(seconds=1))
        key.revoke()
        assert_problem(client.get(PING, HTTP_X_API_KEY=raw), 401, "revoked")

    @pytest.mark.parametrize(
        "value",
        [
            "",
            " ",
            "apk",
            "apk_" + "A" * 8192,
            "A" * 8192,
            "apk_' OR '1'='1",
            "apk_AAAAAAAAAAAA_../../etc/passwd",
            "apk_%00%0d%0a",
            "Ã©Ã¨ non-ascii ключ",
            "\x00\x01\x02",
        ],
    )
    def test_malformed_values_are_401_without_a_query(
        self, client: APIClient, value: str, django_assert_num_queries: Any
    ) -> None:
        with django_assert_num_queries(0):
            response = client.get(PING, HTTP_X_API_KEY=value)
        assert assert_problem(response, 401, "malformed")["detail"] == "Malformed API key."

    def test_a_key_of_the_maximum_length(self, client: APIClient) -> None:
        _key, raw = make_key()
        with override_settings(APIAUTH={"MAX_CREDENTIAL_LENGTH": len(raw)}):
            assert client.get(PING, HTTP_X_API_KEY=raw).status_code == 200
        with override_settings(APIAUTH={"MAX_CREDENTIAL_LENGTH": len(raw) - 1}):
            body = assert_problem(client.get(PING, HTTP_X_API_KEY=raw), 401, "malformed")
        assert body["detail"] == "Malformed API key."

    def test_one_character_changed(self, client: APIClient, django_assert_num_queries: Any) -> None:
        _key, raw = make_key()
        index = len(raw) // 2
        tampered = raw[:index] + ("B" if raw[index] != "B" else "C") + raw[index + 1 :]
        with django_assert_num_queries(0):
            assert_problem(client.get(PING, HTTP_X_API_KEY=tampered), 401, "malformed")

    @pytest.mark.parametrize(
        "authorization",
        ["Api-Key", "Api-Key ", "Bearer", "Basic Zm9vOmJhcg==", "Api-Key x y z", "🔑 key"],
    )
    def test_odd_authorization_headers_never_500(
        self, client: APIClient, authorization: str
    ) -> None:
        response = client.get(PING, HTTP_AUTHORIZATION=authorization)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"


class TestIPAllowlist:
    def test_allowed_network(self, client: APIClient) -> None:
        _key, raw = make_key(allowed_networks=["127.0.0.0/8", "2001:db8::/32"])
        assert client.get(PING, HTTP_X_API_KEY=raw).status_code == 200

    def test_disallowed_address_is_403(self, client: APIClient) -> None:
        _key, raw = make_key(allowed_networks=["10.0.0.0/8"])
        response = client.get(PING, HTTP_X_API_KEY=raw)
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "ip_not_allowed"

    def test_forwarded_for_ignored_without_trusted_proxies(self, client: APIClient) -> None:
        _key, raw = make_key(allowed_networks=["10.0.0.0/8"])
        response = client.get(PING, HTTP_X_API_KEY=raw, HTTP_X_FORWARDED_FOR="10.1.2.3")
        assert response.status_code == 403

    def test_forwarded_for_from_trusted_proxy(self, client: APIClient) -> None:
        _key, raw = make_key(allowed_networks=["10.0.0.0/8"])
        with override_settings(APIAUTH={"TRUSTED_PROXIES": ["127.0.0.1/32"]}):
            response = client.get(PING, HTTP_X_API_KEY=raw, HTTP_X_FORWARDED_FOR="10.1.2.3")
            assert response.status_code == 200
            # The client's own left-most entries are not believed.
            response = client.get(
                PING, HTTP_X_API_KEY=raw, HTTP_X_FORWARDED_FOR="10.1.2.3, 192.0.2.7"
            )
            assert response.status_code == 403


class TestPrincipal:
    def test_owner_becomes_request_user(self, client: APIClient) -> None:
        user = make_user("bob")
        _key, raw = make_key(owner=user)
        assert client.get(PING, HTTP_X_API_KEY=raw).json()["owner"] == "bob"
        assert client.get(WHOAMI, HTTP_X_API_KEY=raw).json()["user"] == "bob"

    def test_machine_principal_without_owner(self, client: APIClient) -> None:
        key, raw = make_key()
        body = client.get(PING, HTTP_X_API_KEY=raw).json()
        assert body["owner"] is None
        assert body["scopes"] == ["orders:read", "orders:write"]
        user = client.get(WHOAMI, HTTP_X_API_KEY=raw).json()["user"]
        assert user == f"api_key:{key.public_id}"


class TestQueries:
    def test_no_query_in_steady_state(
        self, client: APIClient, django_assert_num_queries: Any
    ) -> None:
        _key, raw = make_key(owner=make_user())
        # First sight: the row, the version token, the row again (read after the token).
        with django_assert_num_queries(3):  # the third records last_used_at
            assert client.get(PING, HTTP_X_API_KEY=raw).status_code == 200
        with django_assert_num_queries(0):
            assert client.get(PING, HTTP_X_API_KEY=raw).status_code == 200

    def test_an_expired_copy_costs_one_query(
        self, client: APIClient, settings: Any, django_assert_num_queries: Any
    ) -> None:
        settings.APIAUTH = {**settings.APIAUTH, "CREDENTIAL_CACHE_TTL": 0.05}
        _key, raw = make_key()
        client.get(PING, HTTP_X_API_KEY=raw)
        time.sleep(0.06)
        with django_assert_num_queries(1):  # the worker knows the lineage: token, then row
            assert client.get(PING, HTTP_X_API_KEY=raw).status_code == 200

    def test_without_the_cache_one_query_per_request(
        self, client: APIClient, settings: Any, django_assert_num_queries: Any
    ) -> None:
        settings.APIAUTH = {**settings.APIAUTH, "CREDENTIAL_CACHE_TTL": 0}
        _key, raw = make_key()
        client.get(PING, HTTP_X_API_KEY=raw)
        with django_assert_num_queries(1):
            assert client.get(PING, HTTP_X_API_KEY=raw).status_code == 200

    def test_last_used_is_written_after_the_response(self) -> None:
        """Authentication only marks the use: the ``UPDATE`` waits for ``request_finished``
        (``usage.flush``), which WSGI servers send once the response has gone."""
        from django.db import connection
        from django.test import RequestFactory
        from django.test.utils import CaptureQueriesContext
        from rest_framework.request import Request

        from apiauth import usage
        from apiauth.authentication import APIKeyAuthentication

        key, raw = make_key()
        request = Request(RequestFactory().get(PING, HTTP_X_API_KEY=raw))
        with CaptureQueriesContext(connection) as queries:
            assert APIKeyAuthentication().authenticate(request) is not None
        assert not [q for q in queries if q["sql"].startswith("UPDATE")]
        assert APIKey.objects.get(pk=key.pk).last_used_at is None
        usage.flush()
        assert APIKey.objects.get(pk=key.pk).last_used_at is not None

    def test_last_used_written_at_most_once_per_interval(self, client: APIClient) -> None:
        key, raw = make_key()
        assert key.last_used_at is None
        client.get(PING, HTTP_X_API_KEY=raw, REMOTE_ADDR="192.0.2.1")
        key.refresh_from_db()
        first = key.last_used_at
        assert first is not None and key.last_used_ip == "192.0.2.1"
        client.get(PING, HTTP_X_API_KEY=raw, REMOTE_ADDR="192.0.2.2")
        key.refresh_from_db()
        assert key.last_used_at == first and key.last_used_ip == "192.0.2.1"
        APIKey.objects.filter(pk=key.pk).update(last_used_at=first - datetime.timedelta(seconds=61))
        cache.invalidate([key.lineage_id])  # a bulk update announces itself
        client.get(PING, HTTP_X_API_KEY=raw, REMOTE_ADDR="192.0.2.2")
        key.refresh_from_db()
        assert key.last_used_at > first and key.last_used_ip == "192.0.2.2"


class TestRevocationIsImmediate:
    def test_revoked_elsewhere_fails_on_next_request(self, client: APIClient) -> None:
        key, raw = make_key()
        assert client.get(PING, HTTP_X_API_KEY=raw).status_code == 200
        # Another process revokes it: a fresh instance, nothing shared in memory.
        APIKey.objects.get(pk=key.pk).revoke(reason="compromised")
        assert_problem(client.get(PING, HTTP_X_API_KEY=raw), 401, "revoked")


class TestRoll:
    def test_old_key_works_during_grace_then_stops(self, client: APIClient) -> None:
        key, raw = make_key(plan="")
        new, new_raw = APIKey.objects.roll(key, datetime.timedelta(hours=1))
        assert new.lineage == key.lineage and new.rolled_from == key
        assert client.get(PING, HTTP_X_API_KEY=raw).status_code == 200
        assert client.get(PING, HTTP_X_API_KEY=new_raw).status_code == 200
        APIKey.objects.filter(pk=key.pk).update(expires_at=timezone.now())
        cache.invalidate([key.lineage_id])
        assert_problem(client.get(PING, HTTP_X_API_KEY=raw), 401, "expired")
        assert client.get(PING, HTTP_X_API_KEY=new_raw).status_code == 200

    def test_the_grace_ends_on_time_for_a_cached_copy(
        self, client: APIClient, django_assert_num_queries: Any
    ) -> None:
        key, raw = make_key(plan="")
        APIKey.objects.roll(key, datetime.timedelta(milliseconds=300))
        assert client.get(PING, HTTP_X_API_KEY=raw).status_code == 200
        time.sleep(0.35)
        with django_assert_num_queries(0):  # the copy knows when it expires
            assert_problem(client.get(PING, HTTP_X_API_KEY=raw), 401, "expired")


def test_insufficient_scope_names_the_scheme_that_authenticated() -> None:
    from tests.factories import make_key as _make_key

    _key, raw = _make_key(scopes=["orders:read"])
    response = APIClient().post(
        "/v1/orders", {"sku": "ABC-1", "quantity": 1}, format="json", HTTP_X_API_KEY=raw
    )
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        'Api-Key realm="api", error="insufficient_scope", scope="orders:write"'
    )
    assert response.json()["detail"] == "This credential lacks the scope(s): orders:write."
