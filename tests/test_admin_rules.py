"""The admin's and the commands' rules as an operator meets them: who may issue for whom,
rolling, revocation that stays, resubmitted forms, audited deletions, names, odd input, races."""

from __future__ import annotations

import datetime
import io
import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apiauth.models import AlreadyRolled, APIKey, AuditEvent, RevokedCredential
from tests.factories import add_key, fresh_add_form, make_key, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:apiauth_apikey_changelist")
ADD = reverse("admin:apiauth_apikey_add")


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def staff(username: str, *codenames: str) -> User:
    user = make_user(username, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="apiauth", codename__in=codenames)
    )
    return user


def add(client: Client, **data: Any) -> Any:
    return add_key(client, **{"scopes": "*", **data})


def change_url(key: APIKey) -> str:
    return reverse("admin:apiauth_apikey_change", args=[key.pk])


def change_payload(key: APIKey, **data: Any) -> dict[str, Any]:
    return {
        "name": key.name,
        "owner": key.owner.pk if key.owner else "",
        "scopes": " ".join(key.scopes),
        "allowed_networks": "",
        "plan": "",
        "expires_at_0": "",
        "expires_at_1": "",
        **data,
    }


def raw_key_in(html: str) -> str:
    match = re.search(r'value="(apk_[A-Za-z0-9_]+)"', html)
    assert match, "no key on the page"
    return match.group(1)


class TestOwnerEscalation:
    """Only a superuser may make a key act as another user."""

    def test_staff_with_add_only_cannot_issue_for_a_superuser(self) -> None:
        root = User.objects.create_superuser("root", "", "pw")
        client = login(staff("issuer", "add_apikey", "view_apikey"))
        response = add(client, owner=root.pk)
        assert response.status_code == 200
        assert "You may not issue credentials acting as this user" in response.content.decode()
        assert not APIKey.objects.exists()

    def test_staff_may_choose_themselves_or_no_owner(self) -> None:
        issuer = staff("issuer", "add_apikey", "view_apikey")
        client = login(issuer)
        raw = raw_key_in(add(client, owner=issuer.pk).content.decode())
        assert APIClient().get("/v1/ping", HTTP_X_API_KEY=raw).json()["owner"] == "issuer"
        assert add(client, owner="").status_code == 200
        assert APIKey.objects.count() == 2

    def test_issue_for_others_never_reaches_staff(self) -> None:
        client = login(staff("issuer", "add_apikey", "view_apikey", "issue_for_others"))
        customer = make_user("customer")
        colleague = make_user("colleague", is_staff=True)
        root = User.objects.create_superuser("root", "", "pw")
        raw = raw_key_in(add(client, owner=customer.pk).content.decode())
        assert APIKey.objects.get_from_key(raw).owner == customer
        for privileged in (colleague, root):
            response = add(client, owner=privileged.pk)
            assert "You may not issue credentials" in response.content.decode()
        assert APIKey.objects.count() == 1

    def test_superuser_may_choose_anyone(self) -> None:
        other_root = User.objects.create_superuser("root2", "", "pw")
        client = login(User.objects.create_superuser("root", "", "pw"))
        raw = raw_key_in(add(client, owner=other_root.pk).content.decode())
        assert APIKey.objects.get_from_key(raw).owner == other_root

    def test_change_cannot_reassign_to_a_superuser(self) -> None:
        root = User.objects.create_superuser("root", "", "pw")
        issuer = staff("issuer", "change_apikey", "view_apikey")
        key, raw = make_key(owner=issuer)
        response = login(issuer).post(change_url(key), change_payload(key, owner=root.pk))
        assert "You may not issue credentials" in response.content.decode()
        key.refresh_from_db()
        assert key.owner == issuer
        assert APIClient().get("/v1/ping", HTTP_X_API_KEY=raw).json()["owner"] == "issuer"

    def test_a_superusers_key_is_view_only_and_cannot_be_rolled_by_staff(self) -> None:
        root = User.objects.create_superuser("root", "", "pw")
        key, _raw = make_key(owner=root, scopes=["orders:read"])
        client = login(staff("issuer", "change_apikey", "view_apikey"))
        client.post(change_url(key), change_payload(key, scopes="*"))
        key.refresh_from_db()
        assert key.scopes == ["orders:read"]
        response = client.post(
            CHANGELIST,
            {"action": "roll_key", "_selected_action": [key.pk], "apply": "1", "grace": "0"},
            follow=True,
        )
        assert "You may not roll a key acting as root" in response.content.decode()
        assert APIKey.objects.count() == 1
        assert client.get(reverse("admin:apiauth_apikey_roll", args=[key.pk])).status_code == 403
        # Revoking only takes reach away: allowed.
        page = client.get(change_url(key)).content.decode()
        assert "Revoke…" in page and "Roll…" not in page

    def test_createkey_needs_a_flag_for_a_staff_owner(self) -> None:
        User.objects.create_superuser("root", "", "pw")
        with pytest.raises(CommandError, match="--allow-staff-owner"):
            call_command(
                "apiauth_createkey", "--name", "x", "--owner", "root", stdout=io.StringIO()
            )
        assert not APIKey.objects.exists()
        out = io.StringIO()
        call_command(
            "apiauth_createkey", "--name", "x", "--owner", "root", "--allow-staff-owner", stdout=out
        )
        owner = APIKey.objects.get().owner
        assert owner is not None and owner.username == "root"


class TestRoll:
    def test_rolling_twice_or_refreshing_the_result_is_no_500(self, admin_client: Client) -> None:
        key, _raw = make_key()
        payload = {"action": "roll_key", "_selected_action": [key.pk], "apply": "1", "grace": "0"}
        first = admin_client.post(CHANGELIST, payload)
        assert first.status_code == 200 and raw_key_in(first.content.decode())
        successor = APIKey.objects.get(rolled_from=key)
        for _ in range(2):  # the same POST again: a refresh of the result page
            again = admin_client.post(CHANGELIST, payload, follow=True)
            assert again.status_code == 200
            html = again.content.decode()
            assert f"already rolled to {successor.public_id}" in html
            assert not re.search(r'value="apk_', html)
        assert APIKey.objects.count() == 2

    def test_a_key_that_no_longer_validates_says_so(self, admin_client: Client) -> None:
        from django.conf import settings

        key, _raw = make_key(plan="pro")
        plans = {k: v for k, v in settings.APIAUTH["PLANS"].items() if k != "pro"}
        payload = {"action": "roll_key", "_selected_action": [key.pk], "apply": "1", "grace": "0"}
        with override_settings(APIAUTH={**settings.APIAUTH, "PLANS": plans}):
            response = admin_client.post(CHANGELIST, payload, follow=True)
        assert response.status_code == 200
        html = response.content.decode()
        assert "This key cannot be rolled as it is" in html and "Unknown plan" in html
        assert APIKey.objects.count() == 1

    def test_the_manager_says_which_successor(self) -> None:
        key, _raw = make_key()
        new, _new_raw = APIKey.objects.roll(key, datetime.timedelta(hours=1))
        with pytest.raises(AlreadyRolled) as excinfo:
            APIKey.objects.roll(key, datetime.timedelta(hours=1))
        assert excinfo.value.successor == new


class TestRevocationIsMonotonic:
    def test_saving_a_stale_copy_cannot_unrevoke(self) -> None:
        key, raw = make_key()
        stale = APIKey.objects.get(pk=key.pk)
        assert key.revoke(reason="leaked")
        stale.name = "renamed"
        with pytest.raises(RevokedCredential), transaction.atomic():
            stale.save()
        key.refresh_from_db()
        assert key.revoked_at is not None and key.name == "test key"
        assert APIClient().get("/v1/ping", HTTP_X_API_KEY=raw).status_code == 401

    def test_an_update_never_writes_the_revocation_fields(self) -> None:
        key, _raw = make_key()
        stale = APIKey.objects.get(pk=key.pk)
        stale.revoked_reason = "forged"
        stale.save()
        key.refresh_from_db()
        assert key.revoked_reason == "" and key.revoked_at is None

    def test_the_admin_form_of_a_key_revoked_meanwhile(self, admin_client: Client) -> None:
        key, raw = make_key()
        admin_client.get(change_url(key))  # the operator opens the page ...
        call_command("apiauth_revokekey", key.public_id, stdout=io.StringIO())  # ... meanwhile
        response = admin_client.post(change_url(key), change_payload(key, name="edited"))
        assert response.status_code in (200, 403)
        key.refresh_from_db()
        assert key.revoked_at is not None and key.name == "test key"


class TestResubmission:
    """An add form sent again issues nothing, and says so where the operator looks."""

    @staticmethod
    def visible_error(html: str) -> str:
        """The form-wide error list under "Please correct the error below." (not a hidden
        field's row)."""
        match = re.search(r'<ul class="errorlist nonfield"[^>]*>(.*?)</ul>', html, re.S)
        assert match, "no form-wide error on the page"
        return match.group(1)

    def payload(self, client: Client, **fields: str) -> dict[str, str]:
        return {
            "form_token": fresh_add_form(client),
            "name": "partner",
            "scopes": "orders:read",
            "allowed_networks": "",
            "plan": "",
            **fields,
        }

    def test_the_same_form_twice(self, admin_client: Client) -> None:
        payload = self.payload(admin_client)
        first = admin_client.post(ADD, payload)
        assert raw_key_in(first.content.decode())
        key = APIKey.objects.get()
        again = admin_client.post(ADD, payload)  # a refresh, or Back from a cached page
        html = again.content.decode()
        error = self.visible_error(html)
        assert "This form was already submitted" in error and key.public_id in error
        assert not re.search(r'value="apk_', html)
        assert APIKey.objects.count() == 1

    def test_back_then_save_on_a_refetched_form(self, admin_client: Client) -> None:
        """The add page is fetched anew (its token is new) and the browser restores the
        fields: still nothing issued, and the operator is told which key they have."""
        admin_client.post(ADD, self.payload(admin_client))
        key = APIKey.objects.get()
        again = admin_client.post(ADD, self.payload(admin_client))
        error = self.visible_error(again.content.decode())
        assert "a moment ago" in error and key.public_id in error and "partner" in error
        assert APIKey.objects.count() == 1
        # A second key on purpose has a name of its own.
        second = admin_client.post(ADD, self.payload(admin_client, name="partner 2"))
        assert raw_key_in(second.content.decode())
        assert APIKey.objects.count() == 2

    def test_what_is_not_a_resubmission(self, admin_client: Client) -> None:
        admin_client.post(ADD, self.payload(admin_client))
        mine = APIKey.objects.filter(created_by=APIKey.objects.get().created_by, owner=None)
        other = make_user("other", is_staff=True, is_superuser=True)
        # Another operator, another owner, an old or a revoked key of the same name: issued.
        assert raw_key_in(login(other).post(ADD, self.payload(login(other))).content.decode())
        owned = self.payload(admin_client, owner=str(other.pk))
        assert raw_key_in(admin_client.post(ADD, owned).content.decode())
        mine.update(created_at=timezone.now() - datetime.timedelta(minutes=11))
        assert raw_key_in(admin_client.post(ADD, self.payload(admin_client)).content.decode())
        mine.update(revoked_at=timezone.now())
        assert raw_key_in(admin_client.post(ADD, self.payload(admin_client)).content.decode())
        assert APIKey.objects.count() == 5

    def test_the_hmac_and_application_forms_too(self, admin_client: Client) -> None:
        for model, data in [
            ("hmaccredential", {}),
            (
                "application",
                {
                    "client_type": "confidential",
                    "redirect_uris": "https://a.example/cb",
                    "grant_types": ["authorization_code"],
                },
            ),
        ]:
            url = reverse(f"admin:apiauth_{model}_add")
            payload = {**self.payload(admin_client), **data}
            for _attempt in range(2):
                payload["form_token"] = fresh_add_form(admin_client, model)
                response = admin_client.post(url, payload)
            assert "a moment ago" in self.visible_error(response.content.decode()), model


class TestDeletionIsAudited:
    def test_deleting_the_owner(self) -> None:
        alice = make_user("alice")
        key, _raw = make_key(owner=alice)
        alice.delete()
        assert not APIKey.objects.exists()
        event = AuditEvent.objects.get(action="delete")
        assert event.credential_id == key.public_id and event.reason == "owner alice deleted"

    def test_deleting_owners_in_bulk(self) -> None:
        for name in ("a", "b"):
            make_key(owner=make_user(name))
        User.objects.filter(username__in=["a", "b"]).delete()
        reasons = sorted(
            AuditEvent.objects.filter(action="delete").values_list("reason", flat=True)
        )
        assert reasons == ["owner a deleted", "owner b deleted"]

    def test_admin_deletion_names_the_actor(self, admin_client: Client) -> None:
        key, _raw = make_key()
        admin_client.post(reverse("admin:apiauth_apikey_delete", args=[key.pk]), {"post": "yes"})
        event = AuditEvent.objects.get(action="delete")
        assert event.actor_repr == "root" and event.client_ip == "127.0.0.1"


class TestNames:
    @pytest.mark.parametrize(
        "name", ["two\nlines", "\x1b[2Jcleared", "tab\there", "rlo\u202eevil", "nul\x00"]
    )
    def test_control_characters_are_refused(self, name: str) -> None:
        with pytest.raises(ValidationError) as excinfo:
            make_key(name=name)
        assert "name" in excinfo.value.message_dict
        with pytest.raises(CommandError, match="control characters"):
            call_command("apiauth_createkey", "--name", name, stdout=io.StringIO())
        assert not APIKey.objects.exists()

    def test_names_already_stored_are_escaped_in_output(self) -> None:
        key, raw = make_key(name="ok")
        APIKey.objects.filter(pk=key.pk).update(name="evil\x1b[2J\nname")
        out = io.StringIO()
        call_command("apiauth_listkeys", stdout=out)
        call_command("apiauth_revokekey", key.public_id, stdout=out)
        text = out.getvalue()
        assert "\x1b" not in text and "evil\\x1b[2J\\nname" in text
        assert make_key(name="évite, ünïcode ✓")[0].name == "évite, ünïcode ✓"


class TestCommandInput:
    @pytest.mark.parametrize(
        "value",
        [
            "xyz_3hT9cQ0bLx2W_Vd0tq7SECRETSECRETSECRET",
            "apk3hT9cQ0bLx2WVd0tq7SECRET",
            "Vd0tq7SECRETSECRETSECRET",
        ],
    )
    def test_revokekey_never_echoes_a_secret(self, value: str) -> None:
        with pytest.raises(CommandError) as excinfo:
            call_command("apiauth_revokekey", value, stdout=io.StringIO())
        message = str(excinfo.value)
        assert not any(value[i : i + 6] in message for i in range(len(value) - 5))

    def test_createkey_far_expiry_is_an_error_not_a_traceback(self) -> None:
        with pytest.raises(CommandError, match="before the year 9999"):
            call_command(
                "apiauth_createkey",
                "--name",
                "x",
                "--expires",
                "9999-12-31T23:00:00-05:00",
                stdout=io.StringIO(),
            )
        assert not APIKey.objects.exists()


class TestChangePageButtons:
    def test_revoke_from_the_change_page(self, admin_client: Client) -> None:
        key, raw = make_key()
        page = admin_client.get(change_url(key)).content.decode()
        revoke_url = reverse("admin:apiauth_apikey_revoke", args=[key.pk])
        assert f'href="{revoke_url}"' in page
        confirm = admin_client.get(revoke_url).content.decode()
        assert "Revocation cannot be undone" in confirm and key.public_id in confirm
        response = admin_client.post(
            revoke_url,
            {
                "action": "revoke_selected",
                "_selected_action": [key.pk],
                "apply": "1",
                "reason": "x",
            },
        )
        assert response.status_code == 302 and response["Location"] == change_url(key)
        key.refresh_from_db()
        assert key.revoked_reason == "x"
        assert APIClient().get("/v1/ping", HTTP_X_API_KEY=raw).status_code == 401
        # Revoked: neither button any more.
        page = admin_client.get(change_url(key)).content.decode()
        assert "Revoke…" not in page and "Roll…" not in page
        assert admin_client.get(revoke_url).status_code == 403

    def test_roll_from_the_change_page(self, admin_client: Client) -> None:
        key, _raw = make_key()
        roll_url = reverse("admin:apiauth_apikey_roll", args=[key.pk])
        assert f'href="{roll_url}"' in admin_client.get(change_url(key)).content.decode()
        assert "Roll the key" in admin_client.get(roll_url).content.decode()
        response = admin_client.post(
            roll_url,
            {"action": "roll_key", "_selected_action": [key.pk], "apply": "1", "grace": "0"},
        )
        new_raw = raw_key_in(response.content.decode())
        assert APIClient().get("/v1/ping", HTTP_X_API_KEY=new_raw).status_code == 200

    def test_unknown_object(self, admin_client: Client) -> None:
        assert admin_client.get(reverse("admin:apiauth_apikey_roll", args=[999])).status_code == 404


class TestPlanFilter:
    @override_settings(
        APIAUTH={
            "PLANS": {"free": {"rate": "60/min"}, "pro": {"rate": "600/min"}},
            "DEFAULT_PLAN": "free",
        }
    )
    def test_lists_and_filters_the_plans(self, admin_client: Client) -> None:
        make_key(name="on-default")
        make_key(name="on-pro", plan="pro")
        page = admin_client.get(CHANGELIST).content.decode()
        assert '<a href="?plan=__default__">Default plan (free)</a>' in page
        assert "?plan=pro" in page and "?plan=free" in page
        pro = admin_client.get(CHANGELIST + "?plan=pro").content.decode()
        assert "on-pro" in pro and "on-default" not in pro
        default = admin_client.get(CHANGELIST + "?plan=__default__").content.decode()
        assert "on-default" in default and "on-pro" not in default
        assert "0 API keys" in admin_client.get(CHANGELIST + "?plan=free").content.decode()

    @override_settings(APIAUTH={"PLANS": {"pro": {"rate": "600/min"}}, "DEFAULT_PLAN": None})
    def test_no_default_plan(self, admin_client: Client) -> None:
        page = admin_client.get(CHANGELIST).content.decode()
        assert '<a href="?plan=__default__">Default plan</a>' in page


class TestRaces:
    """The database constraint decides when two operators act at once: no 500, no second key."""

    @pytest.fixture
    def model_admin(self) -> Any:
        from django.contrib import admin

        return admin.site._registry[APIKey]

    def request_by(self, user: User) -> Any:
        from django.test import RequestFactory

        request = RequestFactory().post("/")
        request.user = user
        return request

    def test_revoked_between_the_form_check_and_the_update(self, model_admin: Any) -> None:
        request = self.request_by(User.objects.create_superuser("root", "", "pw"))
        key, _raw = make_key()
        form = model_admin.get_form(request, key, change=True)(
            change_payload(key, name="edited"), instance=key
        )
        assert form.is_valid()
        APIKey.objects.get(pk=key.pk).revoke(reason="meanwhile")
        with pytest.raises(PermissionDenied), transaction.atomic():  # the admin's own atomic
            model_admin.save_model(request, form.instance, form, True)
        key.refresh_from_db()
        assert key.revoked_at is not None and key.name == "test key"

    def test_the_same_add_form_submitted_twice_at_once(self, model_admin: Any) -> None:
        request = self.request_by(User.objects.create_superuser("root", "", "pw"))
        form_class = model_admin.get_form(request, None, change=False)
        data = {"form_token": "t" * 32, "name": "x", "scopes": "", "allowed_networks": ""}
        forms = [form_class(data), form_class(data)]
        assert all(form.is_valid() for form in forms)  # both pass before either saves
        model_admin.save_model(request, forms[0].save(commit=False), forms[0], False)
        with pytest.raises(PermissionDenied):
            model_admin.save_model(request, forms[1].save(commit=False), forms[1], False)
        assert APIKey.objects.count() == 1

    def test_two_rolls_at_once(self) -> None:
        from django.db.models.signals import pre_save

        key, _raw = make_key()
        competing: list[APIKey] = []

        def roll_meanwhile(sender: Any, instance: APIKey, **kwargs: Any) -> None:
            if instance.rolled_from_id == key.pk and not competing:
                competing.append(instance)  # guards the nested save below
                competing[0] = APIKey.objects.create_key(name="other", rolled_from=key)[0]

        pre_save.connect(roll_meanwhile, sender=APIKey)
        try:
            with pytest.raises(AlreadyRolled):
                APIKey.objects.roll(key, datetime.timedelta(hours=1))
        finally:
            pre_save.disconnect(roll_meanwhile, sender=APIKey)
        # The losing roll changed nothing. (Here the competitor shared the loser's savepoint
        # and went with it; a real concurrent roll commits in its own transaction.)
        key.refresh_from_db()
        assert key.expires_at is None
        assert APIKey.objects.count() == 1


def test_nobody_acts_as_a_user_anonymously() -> None:
    from apiauth.models import may_act_as

    alice = make_user("alice")
    assert may_act_as(None, None)
    assert not may_act_as(None, alice)


class TestAdminInput:
    """Odd input to the admin's own URLs and fields: answers, never 500s."""

    @pytest.mark.parametrize("object_id", ["abc", "1.5", "_5F", "999"])
    def test_per_key_urls_with_odd_ids(self, admin_client: Client, object_id: str) -> None:
        for name in ("roll", "revoke"):
            url = reverse(f"admin:apiauth_apikey_{name}", args=[object_id])
            assert admin_client.get(url).status_code == 404

    def test_save_as_new_with_errors(self, admin_client: Client) -> None:
        key, _raw = make_key()
        response = admin_client.post(
            change_url(key), {**change_payload(key, name=""), "_saveasnew": "1"}
        )
        assert response.status_code == 200
        assert "This field is required" in response.content.decode()

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ("[" * 50_000, "at most 2000 characters"),
            ("[" * 1999, "Enter valid JSON."),  # a RecursionError in json.loads
            ('{"a":' * 399, "Enter valid JSON."),
            ('{"rate": {"burst": {"x": {"y": 1}}}}', "Enter limits such as"),
            ('{"\\ud800": 1}', "Enter limits such as"),
            ('{"bürst": 1}', "unknown key(s) &#x27;b\\xfcrst&#x27;"),
            ('{"rate": "1/s"' + " " * 3000 + "}", "at most 2000 characters"),
            ('{"rate": "1/99999999999999999999s"}', "the numbers are too large"),
            ('{"quotas": ["1/99999999999999day"]}', "the numbers are too large"),
            ('{"rate": "1/100000000day"}', "the period must be between 1 second and 366 days"),
        ],
    )
    def test_rate_limit_overrides(self, admin_client: Client, overrides: str, message: str) -> None:
        response = add(admin_client, rate_limits=overrides)
        assert response.status_code == 200
        assert message in response.content.decode()
        assert not APIKey.objects.exists()

    def test_reset_skips_keys_the_operator_may_only_view(self, _redis: Any) -> None:
        from apiauth.throttling.limiter import credential_state

        root = User.objects.create_superuser("root", "", "pw")
        key, raw = make_key(owner=root)
        for _ in range(3):
            APIClient().get("/v1/ping", HTTP_X_API_KEY=raw)
        client = login(staff("issuer", "change_apikey", "view_apikey"))
        response = client.post(
            CHANGELIST,
            {"action": "reset_rate_limits", "_selected_action": [key.pk]},
            follow=True,
        )
        assert f"Skipped {key.public_id}: you may not change it." in response.content.decode()
        decision, _error = credential_state(key.to_credential())
        assert decision is not None and decision.states[0].remaining == 7

    def test_allowlist_entries_that_could_never_match(self, admin_client: Client) -> None:
        response = add(admin_client, allowed_networks="fe80::1%eth0")
        assert "is not an IPv4 or IPv6 address" in response.content.decode()
        add(admin_client, allowed_networks="::ffff:10.0.0.0/104, ::ffff:192.0.2.7")
        assert APIKey.objects.get().allowed_networks == ["10.0.0.0/8", "192.0.2.7/32"]
        _key, raw = make_key(allowed_networks=["::ffff:10.0.0.0/104"])
        ping = "/v1/ping"
        assert APIClient().get(ping, HTTP_X_API_KEY=raw, REMOTE_ADDR="10.1.2.3").status_code == 200
        assert APIClient().get(ping, HTTP_X_API_KEY=raw, REMOTE_ADDR="11.0.0.1").status_code == 403
