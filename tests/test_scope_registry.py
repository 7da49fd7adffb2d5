"""The optional scope registry: checkboxes in the admin, unknown scopes refused everywhere."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.conf import settings
from django.core.checks import Tags, run_checks
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.urls import reverse

from apiauth.forms import scope_choices
from apiauth.models import APIKey
from tests.factories import fresh_add_form, make_key

pytestmark = pytest.mark.django_db

REGISTRY = {
    "orders:read": "Read orders",
    "orders:write": "Place orders",
    "reports:read": "Download reports",
    "status": "See service status",
}


def with_registry(**extra: Any) -> Any:
    return override_settings(APIAUTH={**settings.APIAUTH, "SCOPES": REGISTRY, **extra})


@pytest.fixture(autouse=True)
def _registry() -> Any:
    with with_registry():
        yield


def add(client: Client, scopes: list[str]) -> Any:
    return client.post(
        reverse("admin:apiauth_apikey_add"),
        {
            "form_token": fresh_add_form(client),
            "name": "partner",
            "scopes": scopes,
            "allowed_networks": "",
            "plan": "",
        },
    )


class TestAdmin:
    def test_scopes_are_checkboxes_with_descriptions_grouped(self, admin_client: Client) -> None:
        page = admin_client.get(reverse("admin:apiauth_apikey_add")).content.decode()
        assert 'type="checkbox" name="scopes" value="orders:read"' in page
        assert "orders:read — Read orders" in page
        assert "orders:* — every orders scope" in page
        assert "* — every scope, present and future" in page

    def test_issue_with_checked_scopes(self, admin_client: Client) -> None:
        add(admin_client, ["orders:read", "reports:read"])
        assert APIKey.objects.get().scopes == ["orders:read", "reports:read"]

    def test_a_wildcard_group(self, admin_client: Client) -> None:
        add(admin_client, ["orders:*"])
        assert APIKey.objects.get().scopes == ["orders:*"]

    def test_unknown_scope_refused(self, admin_client: Client) -> None:
        response = add(admin_client, ["orders:reed"])
        assert "Select a valid choice" in response.content.decode()
        assert not APIKey.objects.exists()

    def test_change_page_shows_the_current_scopes_checked(self, admin_client: Client) -> None:
        key, _raw = make_key(scopes=["reports:read"])
        page = admin_client.get(
            reverse("admin:apiauth_apikey_change", args=[key.pk])
        ).content.decode()
        assert re.search(r'name="scopes" value="reports:read"[^>]*checked', page)
        assert re.search(r'name="scopes" value="orders:read"[^>]*>', page)
        assert not re.search(r'name="scopes" value="orders:read"[^>]*checked', page)


class TestManagerAndCommand:
    def test_manager_refuses_unknown_scopes(self) -> None:
        with pytest.raises(ValidationError, match="Unknown scope"):
            make_key(scopes=["orders:read", "ordres:write"])
        with pytest.raises(ValidationError, match="Unknown scope"):
            make_key(scopes=["billing:*"])  # a wildcard covering nothing registered
        assert make_key(scopes=["orders:*", "status"])[0].scopes == ["orders:*", "status"]
        assert make_key(scopes=["*"])[0].scopes == ["*"]

    def test_command_refuses_unknown_scopes(self) -> None:
        with pytest.raises(CommandError, match="Unknown scope"):
            call_command(
                "apiauth_createkey", "--name", "x", "--scopes", "orders:raed", stdout=io.StringIO()
            )
        assert not APIKey.objects.exists()

    def test_without_a_registry_any_valid_scope(self) -> None:
        with override_settings(APIAUTH={**settings.APIAUTH, "SCOPES": {}}):
            assert make_key(scopes=["anything:goes"])[0].scopes == ["anything:goes"]


def test_choices() -> None:
    choices = scope_choices({"a:x": "X", "a:y": "Y", "b": "B"})
    assert choices[0][0] == "*"
    groups = dict(choices[1:])
    assert [value for value, _label in groups["a"]] == ["a:*", "a:x", "a:y"]
    assert [value for value, _label in groups["other"]] == ["b"]


def check_ids(**apiauth: Any) -> set[str]:
    with override_settings(APIAUTH={**settings.APIAUTH, **apiauth}):
        messages = run_checks(tags=[Tags.security], include_deployment_checks=False)
    return {str(message.id) for message in messages}


def test_w008_views_requiring_unregistered_scopes() -> None:
    # The demo's views require orders:read and orders:write.
    assert "apiauth.W008" not in check_ids(SCOPES=REGISTRY)
    assert "apiauth.W008" in check_ids(SCOPES={"orders:read": "Read orders"})
    assert "apiauth.W008" not in check_ids(SCOPES={})


@pytest.mark.parametrize(
    "registry",
    [["orders:read"], {"orders:*": "All"}, {"Orders Read": "x"}, {"orders:read": ""}, {1: "x"}],
)
def test_e016_malformed_registry(registry: Any) -> None:
    assert "apiauth.E016" in check_ids(SCOPES=registry)
