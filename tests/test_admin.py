"""The operator's flows, through the admin with logged-in staff users."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apiauth import crypto
from apiauth.models import APIKey, AuditEvent
from tests.factories import add_key, make_key, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:apiauth_apikey_changelist")
ADD = reverse("admin:apiauth_apikey_add")
PLANS = {"free": {"rate": "60/min", "burst": 10}, "pro": {"rate": "600/min", "burst": 100}}


@pytest.fixture
def staff_client() -> Client:
    """Staff with every apiauth permission, but not a superuser."""
    user = make_user("staff", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="apiauth"))
    client = Client()
    client.force_login(user)
    return client


def change_url(key: APIKey) -> str:
    return reverse("admin:apiauth_apikey_change", args=[key.pk])


def raw_key_in(html: str) -> str:
    match = re.search(r'value="(apk_[A-Za-z0-9_]+)"', html)
    assert match, "no key on the page"
    return match.group(1)


def ping(raw: str) -> Any:
    return APIClient().get("/v1/ping", HTTP_X_API_KEY=raw)


def action(client: Client, name: str, keys: list[APIKey], **data: Any) -> Any:
    payload = {"action": name, "_selected_action": [k.pk for k in keys], **data}
    return client.post(CHANGELIST, payload, follow=True)


class TestAddShowsKeyOnce:
    def test_full_operator_flow(self, admin_client: Client) -> None:
        response = add_key(admin_client)
        assert response.status_code == 200
        html = response.content.decode()
        assert "shown only once" in html
        assert response["Cache-Control"] == "no-store"
        raw = raw_key_in(html)
        key = APIKey.objects.get_from_key(raw)
        assert key.scopes == ["orders:read", "orders:write"]
        assert key.created_by is not None and key.created_by.get_username() == "root"
        assert ping(raw).status_code == 200

        # Never visible again: not in the change page, the list, messages or the database.
        for url in (change_url(key), CHANGELIST, reverse("admin:index")):
            assert raw not in admin_client.get(url).content.decode()
        stored = APIKey.objects.filter(pk=key.pk).values().get()
        assert raw not in {str(value) for value in stored.values()}
        assert raw not in str(admin_client.cookies)

        # Revoke with a reason through the confirmation page.
        response = action(admin_client, "revoke_selected", [key])
        assert "Reason" in response.content.decode()
        assert APIKey.objects.get(pk=key.pk).status == "active"
        response = action(admin_client, "revoke_selected", [key], apply="1", reason="leaked")
        assert "Revoked 1 API key." in response.content.decode()
        key.refresh_from_db()
        assert key.status == "revoked" and key.revoked_reason == "leaked"
        assert key.revoked_by is not None and key.revoked_by.get_username() == "root"

        response = ping(raw)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        actions = list(AuditEvent.objects.order_by("created_at").values_list("action", flat=True))
        assert actions == ["issue", "revoke"]
        assert AuditEvent.objects.get(action="revoke").reason == "leaked"

    def test_messages_never_carry_the_key(self, admin_client: Client) -> None:
        response = add_key(admin_client)
        raw = raw_key_in(response.content.decode())
        follow = admin_client.get(CHANGELIST)
        assert raw not in follow.content.decode()
        assert (
            "messages" not in admin_client.cookies
            or raw not in admin_client.cookies["messages"].value
        )

    @override_settings(APIAUTH={"PLANS": PLANS, "DEFAULT_PLAN": "free"})
    def test_all_fields(self, admin_client: Client) -> None:
        owner = make_user("partner-owner")
        response = add_key(
            admin_client,
            owner=str(owner.pk),
            allowed_networks="10.0.0.0/8\n2001:db8::/32",
            plan="pro",
            expires_at_0="2999-01-01",
            expires_at_1="00:00:00",
        )
        key = APIKey.objects.get_from_key(raw_key_in(response.content.decode()))
        assert (key.owner, key.plan) == (owner, "pro")
        assert key.allowed_networks == ["10.0.0.0/8", "2001:db8::/32"]
        assert key.expires_at is not None and key.expires_at.year == 2999

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("scopes", "Orders Read", "is not a valid scope"),
            ("allowed_networks", "10.0.0.0/33", "is not an IPv4 or IPv6"),
            ("plan", "gold", "Select a valid choice"),
            ("name", "", "This field is required"),
        ],
    )
    def test_validation_errors(
        self, admin_client: Client, field: str, value: str, message: str
    ) -> None:
        with override_settings(APIAUTH={"PLANS": PLANS}):
            response = add_key(admin_client, **{field: value})
        assert response.status_code == 200
        assert message in response.content.decode()
        assert not APIKey.objects.exists()
        assert not AuditEvent.objects.exists()


class TestChange:
    def test_edit_writes_an_update_event(self, admin_client: Client) -> None:
        key, _raw = make_key(name="old name")
        response = admin_client.get(change_url(key))
        assert key.public_id in response.content.decode()
        response = admin_client.post(
            change_url(key),
            {
                "name": "new name",
                "owner": "",
                "scopes": "orders:read",
                "allowed_networks": "",
                "plan": "",
                "expires_at_0": "",
                "expires_at_1": "",
            },
        )
        assert response.status_code == 302
        key.refresh_from_db()
        assert (key.name, key.scopes) == ("new name", ["orders:read"])
        event = AuditEvent.objects.get()
        assert event.action == "update" and event.details == {"fields": ["name", "scopes"]}

    def test_revoked_key_is_read_only(self, admin_client: Client) -> None:
        key, _raw = make_key(name="frozen")
        key.revoke(reason="x")
        response = admin_client.get(change_url(key))
        assert response.status_code == 200
        assert b'name="name"' not in response.content  # no editable input
        response = admin_client.post(change_url(key), {"name": "thawed", "scopes": ""})
        assert response.status_code == 403
        key.refresh_from_db()
        assert key.name == "frozen"


class TestRevoke:
    def test_bulk_with_already_revoked(self, admin_client: Client) -> None:
        first, raw_first = make_key()
        second, raw_second = make_key()
        done, _ = make_key()
        done.revoke(reason="earlier")
        response = action(
            admin_client, "revoke_selected", [first, second, done], apply="1", reason="offboarding"
        )
        text = response.content.decode()
        assert "Revoked 2 API keys." in text and "1 API key already revoked." in text
        assert ping(raw_first).status_code == 401 and ping(raw_second).status_code == 401
        assert AuditEvent.objects.filter(action="revoke").count() == 2
        assert APIKey.objects.get(pk=done.pk).revoked_reason == "earlier"

    def test_reason_is_required(self, admin_client: Client) -> None:
        key, raw = make_key()
        response = action(admin_client, "revoke_selected", [key], apply="1", reason="")
        assert "This field is required" in response.content.decode()
        assert ping(raw).status_code == 200
        assert not AuditEvent.objects.exists()


class TestRoll:
    def test_roll_shows_new_key_once_and_old_key_stops(self, admin_client: Client) -> None:
        key, raw = make_key()
        response = action(admin_client, "roll_key", [key])
        assert "grace" in response.content.decode() or "stops working" in response.content.decode()
        response = action(admin_client, "roll_key", [key], apply="1", grace="0")
        new_raw = raw_key_in(response.content.decode())
        assert new_raw != raw
        new = APIKey.objects.get_from_key(new_raw)
        assert new.lineage == key.lineage
        assert ping(new_raw).status_code == 200
        assert ping(raw).status_code == 401
        assert new_raw not in admin_client.get(change_url(new)).content.decode()
        roll = AuditEvent.objects.get(action="roll")
        assert roll.credential_id == key.public_id
        assert roll.details["new_public_id"] == new.public_id
        assert AuditEvent.objects.filter(action="issue", credential_id=new.public_id).exists()

    def test_old_key_works_during_grace(self, admin_client: Client) -> None:
        key, raw = make_key()
        response = action(admin_client, "roll_key", [key], apply="1", grace="3600")
        new_raw = raw_key_in(response.content.decode())
        assert ping(raw).status_code == 200 and ping(new_raw).status_code == 200
        key.refresh_from_db()
        assert key.expires_at is not None
        assert key.expires_at - timezone.now() > datetime.timedelta(minutes=59)

    def test_roll_needs_exactly_one_usable_key(self, admin_client: Client) -> None:
        first, _ = make_key()
        second, _ = make_key()
        response = action(admin_client, "roll_key", [first, second], apply="1", grace="0")
        assert "Select exactly one API key" in response.content.decode()
        second.revoke()
        response = action(admin_client, "roll_key", [second], apply="1", grace="0")
        assert "Select exactly one API key" in response.content.decode()
        assert APIKey.objects.count() == 2


class TestChangeList:
    def test_columns_filters_and_search(self, admin_client: Client) -> None:
        owner = make_user("dora")
        active, _ = make_key(name="alpha", owner=owner)
        revoked, _ = make_key(name="beta")
        revoked.revoke()
        make_key(name="gamma", expires_at=timezone.now() - datetime.timedelta(1))
        text = admin_client.get(CHANGELIST).content.decode()
        for expected in ("alpha", active.public_id, "dora", "orders:read orders:write", "revoked"):
            assert expected in text
        assert "alpha" not in admin_client.get(CHANGELIST, {"status": "revoked"}).content.decode()
        assert "beta" in admin_client.get(CHANGELIST, {"status": "revoked"}).content.decode()
        expired = admin_client.get(CHANGELIST, {"status": "expired"}).content.decode()
        assert "gamma" in expired and "alpha" not in expired and "beta" not in expired
        for value, label in (("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")):
            assert f'<a href="?status={value}">{label}</a>' in text
        assert "beta" not in admin_client.get(CHANGELIST, {"status": "active"}).content.decode()
        for term in ("alpha", active.public_id, "dora"):
            found = admin_client.get(CHANGELIST, {"q": term}).content.decode()
            assert "alpha" in found and "beta" not in found

    def test_no_query_per_row(
        self, admin_client: Client, django_assert_max_num_queries: Any
    ) -> None:
        for i in range(3):
            make_key(owner=make_user(f"owner{i}"))
        admin_client.get(CHANGELIST)
        with django_assert_max_num_queries(12):
            admin_client.get(CHANGELIST)
        for i in range(3, 20):
            make_key(owner=make_user(f"owner{i}"))
        with django_assert_max_num_queries(12):
            admin_client.get(CHANGELIST)


class TestDelete:
    def test_staff_cannot_delete(self, staff_client: Client) -> None:
        key, _ = make_key()
        url = reverse("admin:apiauth_apikey_delete", args=[key.pk])
        assert staff_client.get(url).status_code == 403
        assert staff_client.post(url, {"post": "yes"}).status_code == 403
        assert APIKey.objects.filter(pk=key.pk).exists()
        # Staff can still revoke.
        action(staff_client, "revoke_selected", [key], apply="1", reason="done")
        assert APIKey.objects.get(pk=key.pk).is_revoked

    def test_superuser_delete_is_audited(self, admin_client: Client) -> None:
        key, _ = make_key()
        url = reverse("admin:apiauth_apikey_delete", args=[key.pk])
        admin_client.post(url, {"post": "yes"})
        assert not APIKey.objects.exists()
        assert AuditEvent.objects.get().action == "delete"

    def test_bulk_delete_is_audited(self, admin_client: Client) -> None:
        keys = [make_key()[0] for _ in range(2)]
        action(admin_client, "delete_selected", keys, post="yes")
        assert not APIKey.objects.exists()
        events = AuditEvent.objects.filter(action="delete")
        assert sorted(e.credential_id for e in events) == sorted(k.public_id for k in keys)
        for event in events:
            assert event.actor is not None and event.actor.is_superuser
            assert event.client_ip == "127.0.0.1"


class TestAuditEventAdmin:
    def test_read_only(self, admin_client: Client) -> None:
        key, raw = make_key()
        action(admin_client, "revoke_selected", [key], apply="1", reason="gone")
        event = AuditEvent.objects.get()
        listing = admin_client.get(reverse("admin:apiauth_auditevent_changelist"))
        assert key.public_id in listing.content.decode()
        assert raw not in listing.content.decode()
        assert admin_client.get(reverse("admin:apiauth_auditevent_add")).status_code == 403
        change = reverse("admin:apiauth_auditevent_change", args=[event.pk])
        assert admin_client.get(change).status_code == 200
        assert admin_client.post(change, {"reason": "edited"}).status_code == 403
        delete = reverse("admin:apiauth_auditevent_delete", args=[event.pk])
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
        assert AuditEvent.objects.get().reason == "gone"
        changelist = reverse("admin:apiauth_auditevent_changelist")
        revokes = admin_client.get(changelist, {"action": "revoke"}).content.decode()
        assert "1 audit event" in revokes and "gone" in revokes
        issues = admin_client.get(changelist, {"action": "issue"}).content.decode()
        assert "0 audit events" in issues and "gone" not in issues


def test_key_issued_page_names_the_key(admin_client: Client) -> None:
    response = add_key(admin_client, name="billing export")
    raw = raw_key_in(response.content.decode())
    assert "billing export" in response.content.decode()
    assert crypto.parse_key(raw, "apk")
    assert "<title>API key issued |" in response.content.decode()
    # The one page that holds the raw key: never kept by a browser or a proxy.
    assert response["Cache-Control"] == "no-store"


def test_operator_actions_name_the_operator_and_address(admin_client: Client) -> None:
    add_key(admin_client, name="audited")
    key = APIKey.objects.get(name="audited")
    data = {"name": "renamed", "owner": "", "scopes": "orders:read", "allowed_networks": ""}
    data |= {"plan": "", "expires_at_0": "", "expires_at_1": ""}
    assert admin_client.post(change_url(key), data, REMOTE_ADDR="192.0.2.31").status_code == 302
    events = {e.action: e for e in AuditEvent.objects.all()}
    assert set(events) == {"issue", "update"}
    for event, address in ((events["issue"], "127.0.0.1"), (events["update"], "192.0.2.31")):
        assert event.actor is not None and event.actor.is_superuser
        assert (event.credential_id, event.client_ip) == (key.public_id, address)


class TestChangeForm:
    def test_an_edit_keeps_what_it_does_not_touch(self, admin_client: Client) -> None:
        """The change form starts from the key's scopes, networks and overrides, so saving
        it as shown (here, a new name) cannot widen an allowlist or drop a limit."""
        key, _raw = make_key(
            name="before",
            allowed_networks=["10.0.0.0/8", "2001:db8::/32"],
            rate_limits={"rate": "120/min", "burst": 20},
        )
        form = admin_client.get(change_url(key)).context["adminform"].form
        assert form.initial["scopes"] == "orders:read orders:write"
        assert form.initial["allowed_networks"] == "10.0.0.0/8\n2001:db8::/32"
        assert json.loads(form.initial["rate_limits"]) == {"rate": "120/min", "burst": 20}
        data = {name: form.initial.get(name) or "" for name in form.fields}
        data |= {"name": "after", "owner": "", "expires_at_0": "", "expires_at_1": ""}
        assert admin_client.post(change_url(key), data).status_code == 302
        saved = APIKey.objects.get(pk=key.pk)
        assert saved.name == "after"
        assert (saved.scopes, saved.allowed_networks, saved.rate_limits) == (
            key.scopes,
            key.allowed_networks,
            key.rate_limits,
        )

    def test_a_key_revoked_while_edited(self) -> None:
        """Another operator revoked it between loading the page and saving: the form says so
        (the model would refuse the save anyway)."""
        from apiauth.forms import APIKeyForm

        key, _raw = make_key(name="racing")
        stale = APIKey.objects.get(pk=key.pk)
        key.revoke(reason="elsewhere")
        operator = make_user("op", is_staff=True, is_superuser=True)
        form_class = type("Form", (APIKeyForm,), {"actor": operator})
        data = {"name": "renamed", "scopes": "orders:read", "allowed_networks": "", "plan": ""}
        form = form_class(data=data, instance=stale)
        assert not form.is_valid()
        [error] = form.errors.as_data()["__all__"]
        assert error.code == "revoked"
        assert error.messages == [
            "This key was revoked while you edited it; revoked keys cannot be changed."
        ]
