"""Rate limits in the admin: a key's current state, and resetting its buckets."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apiauth.models import APIKey, AuditEvent
from tests.conftest import RedisServer
from tests.factories import fresh_add_form, make_key

pytestmark = pytest.mark.django_db


def test_change_page_shows_plan_and_bucket_state(admin_client: Client) -> None:
    key, raw = make_key()
    for _ in range(3):
        APIClient().get("/v1/ping", HTTP_X_API_KEY=raw)
    page = admin_client.get(reverse("admin:apiauth_apikey_change", args=[key.pk])).content.decode()
    assert "Plan <strong>free</strong>" in page
    assert "burst: 7 of 10 left" in page
    assert "day: 997 of 1000 left" in page
    # The view scopes' limits too, which throttle the views that declare them (orders).
    assert "orders: 20 of 20 left" in page
    APIClient().get("/v1/orders", HTTP_X_API_KEY=raw)
    page = admin_client.get(reverse("admin:apiauth_apikey_change", args=[key.pk])).content.decode()
    assert "orders: 19 of 20 left" in page and "burst: 6 of 10 left" in page
    # Looking does not spend.
    page = admin_client.get(reverse("admin:apiauth_apikey_change", args=[key.pk])).content.decode()
    assert "burst: 6 of 10 left" in page


def test_reset_action(admin_client: Client) -> None:
    key, raw = make_key()
    for _ in range(10):
        APIClient().get("/v1/ping", HTTP_X_API_KEY=raw)
    assert APIClient().get("/v1/ping", HTTP_X_API_KEY=raw).status_code == 429
    response = admin_client.post(
        reverse("admin:apiauth_apikey_changelist"),
        {"action": "reset_rate_limits", "_selected_action": [key.pk]},
        follow=True,
    )
    assert "Reset the rate limits of 1 API key" in response.content.decode()
    assert APIClient().get("/v1/ping", HTTP_X_API_KEY=raw).status_code == 200
    assert AuditEvent.objects.get().action == "reset_limits"


def test_state_when_the_store_is_down(admin_client: Client, _redis: RedisServer) -> None:
    key, _raw = make_key()
    _redis.stop()
    try:
        page = admin_client.get(reverse("admin:apiauth_apikey_change", args=[key.pk]))
        assert "Unavailable" in page.content.decode()
        response = admin_client.post(
            reverse("admin:apiauth_apikey_changelist"),
            {"action": "reset_rate_limits", "_selected_action": [key.pk]},
            follow=True,
        )
        assert "cannot be reached" in response.content.decode()
        assert not AuditEvent.objects.exists()
    finally:
        _redis.start()


def test_state_without_a_plan(admin_client: Client, settings: object) -> None:
    from django.test import override_settings

    key, _raw = make_key()
    with override_settings(APIAUTH={"PLANS": {}, "DEFAULT_PLAN": None}):
        page = admin_client.get(reverse("admin:apiauth_apikey_change", args=[key.pk]))
    assert "No limits" in page.content.decode()
    assert APIKey.objects.count() == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{", "Enter valid JSON."),
        ("[1]", "Enter a JSON object."),
        ('{"rate": "fast"}', "is not a rate"),
        ('{"burst": 0}', "burst must be"),
    ],
)
def test_override_validation(admin_client: Client, value: str, message: str) -> None:
    response = admin_client.post(
        reverse("admin:apiauth_apikey_add"),
        {
            "form_token": fresh_add_form(admin_client),
            "name": "x",
            "scopes": "",
            "allowed_networks": "",
            "plan": "",
            "rate_limits": value,
        },
    )
    assert message in response.content.decode()
    assert not APIKey.objects.exists()


def test_override_saved_and_shown(admin_client: Client) -> None:
    admin_client.post(
        reverse("admin:apiauth_apikey_add"),
        {
            "form_token": fresh_add_form(admin_client),
            "name": "x",
            "scopes": "",
            "allowed_networks": "",
            "plan": "",
            "rate_limits": '{"burst": 3}',
        },
    )
    key = APIKey.objects.get()
    assert key.rate_limits == {"burst": 3}
    page = admin_client.get(reverse("admin:apiauth_apikey_change", args=[key.pk])).content.decode()
    assert "burst: 3 of 3 left" in page
    assert "{&quot;burst&quot;: 3}" in page
