"""The admin of signing keys and token families, used as an operator would."""

from __future__ import annotations

import datetime
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Permission
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from apiauth.models import AuditEvent, SigningKey, TokenFamily
from tests.factories import make_key

pytestmark = pytest.mark.django_db


def act(client: Client, model: str, action: str, *pks: Any, **data: Any) -> Any:
    return client.post(
        reverse(f"admin:apiauth_{model}_changelist"),
        {"action": action, "_selected_action": [str(pk) for pk in pks], **data},
        follow=True,
    )


def audited(action: str, kid: str) -> bool:
    return AuditEvent.objects.filter(action=action, credential_id=kid).exists()


def test_generate_promote_retire_revoke(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:apiauth_signingkey_add"), {"algorithm": "RS256", "key_size": "3072"}
    )
    assert response.status_code == 302, response.content
    key = SigningKey.objects.get()
    assert (key.algorithm, key.key_size, key.state) == ("RS256", 3072, "next")
    assert audited("issue", key.kid)
    page = admin_client.get(reverse("admin:apiauth_signingkey_change", args=[key.pk]))
    assert b"PRIVATE" not in page.content and key.kid.encode() in page.content

    act(admin_client, "signingkey", "promote_key", key.pk)
    key.refresh_from_db()
    assert key.state == "active" and audited("promote", key.kid)

    second = SigningKey.objects.generate("ES256")
    act(admin_client, "signingkey", "promote_key", second.pk)
    key.refresh_from_db()
    assert key.state == "retired" and audited("retire", key.kid)

    third = SigningKey.objects.generate("EdDSA")
    act(admin_client, "signingkey", "retire_keys", third.pk)
    third.refresh_from_db()
    assert third.state == "retired" and audited("retire", third.kid)

    confirm = act(admin_client, "signingkey", "revoke_selected", key.pk)
    assert b"Revocation cannot be undone" in confirm.content and key.kid.encode() in confirm.content
    key.refresh_from_db()
    assert key.state == "retired"
    act(admin_client, "signingkey", "revoke_selected", key.pk, apply="1", reason="leaked")
    key.refresh_from_db()
    assert key.state == "revoked" and key.reason == "leaked" and audited("revoke", key.kid)


def test_second_next_key_is_refused_by_the_form(admin_client: Client) -> None:
    SigningKey.objects.generate("ES256")
    response = admin_client.post(
        reverse("admin:apiauth_signingkey_add"), {"algorithm": "ES256", "key_size": ""}
    )
    assert response.status_code == 200
    assert SigningKey.objects.count() == 1


def test_key_size_only_for_rsa(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:apiauth_signingkey_add"), {"algorithm": "ES256", "key_size": "2048"}
    )
    assert response.status_code == 200 and not SigningKey.objects.exists()


def test_retire_active_is_refused_with_a_message(admin_client: Client) -> None:
    key = SigningKey.objects.generate("ES256", state="active")
    response = act(admin_client, "signingkey", "retire_keys", key.pk)
    assert b"promoting another" in response.content
    key.refresh_from_db()
    assert key.state == "active"


def test_promote_needs_exactly_one(admin_client: Client) -> None:
    a, b = (
        SigningKey.objects.generate("ES256"),
        SigningKey.objects.generate("ES256", state="retired"),
    )
    response = act(admin_client, "signingkey", "promote_key", a.pk, b.pk)
    assert b"exactly one" in response.content


def test_keys_cannot_be_deleted(admin_client: Client) -> None:
    key = SigningKey.objects.generate("ES256")
    response = admin_client.post(
        reverse("admin:apiauth_signingkey_delete", args=[key.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert SigningKey.objects.filter(pk=key.pk).exists()


def test_live_families_on_the_key_page_and_revocation(admin_client: Client, client: Client) -> None:
    SigningKey.objects.generate("ES256", state="active")
    key, raw = make_key(plan="pro")
    issued = client.post(
        "/auth/token",
        urlencode({"grant_type": "client_credentials"}),
        content_type="application/x-www-form-urlencoded",
        headers={"X-API-Key": raw},
    ).json()
    family = TokenFamily.objects.get()
    page = admin_client.get(reverse("admin:apiauth_apikey_change", args=[key.pk]))
    assert str(family.pk)[:8].encode() in page.content
    act(admin_client, "tokenfamily", "revoke_families", family.pk)
    family.refresh_from_db()
    assert family.revoked_at is not None
    assert AuditEvent.objects.filter(action="revoke", credential_kind="token_family").exists()
    refused = client.get("/v1/ping", HTTP_AUTHORIZATION=f"Bearer {issued['access_token']}")
    assert refused.status_code == 401 and refused.json()["code"] == "revoked"
    page = admin_client.get(reverse("admin:apiauth_apikey_change", args=[key.pk]))
    assert str(family.pk)[:8].encode() not in page.content
    assert (
        admin_client.get(reverse("admin:apiauth_tokenfamily_change", args=[family.pk])).status_code
        == 200
    )


def test_key_actions_name_the_operator_and_address(admin_client: Client) -> None:
    add = reverse("admin:apiauth_signingkey_add")
    response = admin_client.post(add, {"algorithm": "ES256"}, REMOTE_ADDR="192.0.2.40")
    assert response.status_code == 302, response.content
    key = SigningKey.objects.get()
    act(admin_client, "signingkey", "promote_key", key.pk)
    second = SigningKey.objects.generate("ES256")
    act(admin_client, "signingkey", "promote_key", second.pk)  # retires the first
    events = AuditEvent.objects.filter(credential_id=key.kid).order_by("created_at", "pk")
    assert [(e.action, e.reason) for e in events] == [
        ("issue", ""),
        ("promote", ""),
        ("retire", "replaced by a promotion"),
    ]
    for event in events:
        assert event.actor is not None and event.actor.is_superuser
    assert [e.client_ip for e in events] == ["192.0.2.40", "127.0.0.1", "127.0.0.1"]


def test_families_are_not_added_or_deleted_by_hand(admin_client: Client) -> None:
    """Families come from the token endpoint and end by revocation, which is audited."""
    key, _raw = make_key(plan="pro")
    family = TokenFamily.objects.create(api_key=key, expires_at=timezone.now())
    assert admin_client.get(reverse("admin:apiauth_tokenfamily_add")).status_code == 403
    delete = reverse("admin:apiauth_tokenfamily_delete", args=[family.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert TokenFamily.objects.filter(pk=family.pk).exists()


def page_of(client: Client, key: SigningKey) -> str:
    return client.get(reverse("admin:apiauth_signingkey_change", args=[key.pk])).content.decode()


class TestAKeysPage:
    """No Save on a page where nothing is edited: the buttons say what can happen instead."""

    @pytest.mark.parametrize(
        ("state", "buttons"),
        [
            ("next", ["promote", "retire", "revoke"]),
            ("active", ["revoke"]),
            ("retired", ["promote", "revoke"]),
            ("revoked", []),
        ],
    )
    def test_the_buttons_of_each_state(
        self, admin_client: Client, state: str, buttons: list[str]
    ) -> None:
        key = SigningKey.objects.generate("ES256", state="active" if state == "active" else "next")
        if state in ("retired", "revoked"):
            SigningKey.objects.retire(key)
        if state == "revoked":
            SigningKey.objects.revoke(key)
        html = page_of(admin_client, key)
        assert 'name="_save"' not in html and 'name="_continue"' not in html
        assert 'name="_addanother"' not in html
        for step in ["promote", "retire", "revoke"]:
            url = reverse(f"admin:apiauth_signingkey_{step}", args=[key.pk])
            assert (url in html) is (step in buttons), step
        if "revoke" in buttons:
            assert re.search(r'class="deletelink"[^>]*>Revoke…', html)

    def test_promote_and_retire_by_their_buttons(self, admin_client: Client) -> None:
        first = SigningKey.objects.generate("ES256")
        promote = reverse("admin:apiauth_signingkey_promote", args=[first.pk])
        assert admin_client.get(promote).status_code == 405  # a link followed changes nothing
        response = admin_client.post(promote, follow=True)
        first.refresh_from_db()
        assert first.state == "active" and audited("promote", first.kid)
        assert response.redirect_chain[-1][0].endswith(f"/{first.pk}/change/")
        assert f"Promoted {first.kid}." in response.content.decode()

        second = SigningKey.objects.generate("EdDSA")
        retire = reverse("admin:apiauth_signingkey_retire", args=[second.pk])
        admin_client.post(retire)
        second.refresh_from_db()
        assert second.state == "retired" and audited("retire", second.kid)
        # Retiring it again says why not, on its page.
        again = admin_client.post(retire, follow=True).content.decode()
        assert "Only a next key can be retired" in again

    def test_revoke_by_its_button_asks_why(self, admin_client: Client) -> None:
        key = SigningKey.objects.generate("ES256", state="active")
        revoke = reverse("admin:apiauth_signingkey_revoke", args=[key.pk])
        confirm = admin_client.get(revoke)
        html = confirm.content.decode()
        assert confirm.status_code == 200 and key.kid in html and 'name="reason"' in html
        assert "var(--delete-button-bg)" in html  # the irreversible button looks dangerous
        no_reason = admin_client.post(revoke, {"action": "revoke_selected", "apply": "1"})
        assert no_reason.status_code == 200
        key.refresh_from_db()
        assert key.state == "active"
        done = admin_client.post(
            revoke, {"action": "revoke_selected", "apply": "1", "reason": "leaked"}, follow=True
        )
        key.refresh_from_db()
        assert key.state == "revoked" and key.reason == "leaked"
        assert done.redirect_chain[-1][0].endswith(f"/{key.pk}/change/")

    def test_the_buttons_need_the_change_permission(
        self, client: Client, django_user_model: Any
    ) -> None:
        viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
        viewer.user_permissions.add(Permission.objects.get(codename="view_signingkey"))
        client.force_login(viewer)
        key = SigningKey.objects.generate("ES256")
        assert 'name="_promote"' not in page_of(client, key)
        for step in ["promote", "retire", "revoke"]:
            url = reverse(f"admin:apiauth_signingkey_{step}", args=[key.pk])
            assert client.post(url).status_code == 403
        key.refresh_from_db()
        assert key.state == "next"

    def test_an_unknown_key(self, admin_client: Client) -> None:
        url = reverse("admin:apiauth_signingkey_promote", args=["999999"])
        assert admin_client.post(url).status_code == 404
        assert admin_client.post(url.replace("999999", "abc")).status_code == 404


class TestTheAddPage:
    def test_the_configured_algorithm_is_chosen_and_explained(self, admin_client: Client) -> None:
        page = admin_client.get(reverse("admin:apiauth_signingkey_add"))
        html = page.content.decode()
        assert "---------" not in html.split('name="algorithm"')[1].split("</select>")[0]
        assert re.search(r'<option value="ES256" selected>', html)
        assert "starts as next" in html and "RSA keys only" in html
        assert "apiauth/signing_key_form.js" in html

    @override_settings(APIAUTH={"JWT": {"SIGNING_ALGORITHM": "EdDSA"}})
    def test_another_configured_algorithm(self, admin_client: Client) -> None:
        html = admin_client.get(reverse("admin:apiauth_signingkey_add")).content.decode()
        assert re.search(r'<option value="EdDSA" selected>', html)

    def test_a_size_for_a_key_that_has_none(self, admin_client: Client) -> None:
        response = admin_client.post(
            reverse("admin:apiauth_signingkey_add"), {"algorithm": "EdDSA", "key_size": "2048"}
        )
        assert "Only RSA keys have a size: leave it empty for EdDSA." in response.content.decode()
        assert not SigningKey.objects.exists()


@pytest.mark.usefixtures("_redis")
def test_token_families_read_as_words_with_links(admin_client: Client, client: Client) -> None:
    SigningKey.objects.generate("ES256", state="active")
    key, raw = make_key(plan="pro", scopes=["orders:read", "orders:write"])
    client.post(
        "/auth/token",
        urlencode({"grant_type": "client_credentials"}),
        content_type="application/x-www-form-urlencoded",
        headers={"X-API-Key": raw},
    )
    family = TokenFamily.objects.get()
    key_page = reverse("admin:apiauth_apikey_change", args=[key.pk])
    listing = admin_client.get(reverse("admin:apiauth_tokenfamily_changelist")).content.decode()
    assert f'<a href="{key_page}">{key.name}</a> (<code>{key.public_id}</code>)' in listing
    assert "orders:read orders:write" in listing and '["orders' not in listing
    assert f'<code title="{family.pk}">{str(family.pk)[:8]}</code>' in listing
    assert ">live<br><small>until " in listing

    page = admin_client.get(reverse("admin:apiauth_tokenfamily_change", args=[family.pk]))
    html = page.content.decode()
    assert f'href="{key_page}"' in html and "orders:read orders:write" in html
    assert 'name="_save"' not in html and 'name="_continue"' not in html

    act(admin_client, "tokenfamily", "revoke_families", family.pk)
    families = reverse("admin:apiauth_tokenfamily_changelist")
    listing = admin_client.get(families).content.decode()
    assert ">revoked<" in listing and "Not revoked" in listing  # the filter's words
    assert str(family.pk)[:8] not in admin_client.get(families + "?revoked=no").content.decode()
    assert str(family.pk)[:8] in admin_client.get(families + "?revoked=yes").content.decode()
    TokenFamily.objects.filter(pk=family.pk).update(
        revoked_at=None, expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    listing = admin_client.get(reverse("admin:apiauth_tokenfamily_changelist")).content.decode()
    assert ">ended<" in listing


def test_a_keys_page_shows_no_help_meant_for_the_add_page(admin_client: Client) -> None:
    key = SigningKey.objects.generate("ES256")
    assert "starts as next" not in page_of(admin_client, key)


class TestThePagesBuiltAfresh:
    """The URLconf in memory was built before any test ran: these build the admin's own URLs
    again and call them, as the admin site would."""

    def request(self, admin_user: Any, method: str = "post") -> Any:
        from django.contrib.messages.storage.fallback import FallbackStorage
        from django.contrib.sessions.backends.db import SessionStore
        from django.test import RequestFactory

        request = getattr(RequestFactory(), method)("/")
        request.user, request.session = admin_user, SessionStore()
        request._messages = FallbackStorage(request)
        request._dont_enforce_csrf_checks = True
        return request

    def test_each_button_has_its_url_and_does_its_step(self, admin_user: Any) -> None:
        from django.contrib import admin

        from apiauth.admin import SigningKeyAdmin

        patterns = SigningKeyAdmin(SigningKey, admin.site).get_urls()
        ours = {p.name: str(p.pattern) for p in patterns[:3]}
        assert ours == {
            f"apiauth_signingkey_{step}": f"<path:object_id>/{step}/"
            for step in ("promote", "retire", "revoke")
        }
        steps = {str(p.name).rsplit("_", 1)[1]: p.callback for p in patterns[:3]}
        key = SigningKey.objects.generate("ES256")
        response = steps["retire"](self.request(admin_user), object_id=str(key.pk))
        key.refresh_from_db()
        assert response.status_code == 302 and key.state == "retired"
        response = steps["promote"](self.request(admin_user), object_id=str(key.pk))
        key.refresh_from_db()
        assert response.status_code == 302 and key.state == "active"
        page = steps["revoke"](self.request(admin_user, "get"), object_id=str(key.pk))
        assert page.status_code == 200 and 'name="reason"' in page.rendered_content

    def test_a_step_is_posted(self, admin_client: Client) -> None:
        key = SigningKey.objects.generate("ES256")
        for step in ("promote", "retire"):
            url = reverse(f"admin:apiauth_signingkey_{step}", args=[key.pk])
            response = admin_client.get(url)
            assert response.status_code == 405 and response["Allow"] == "POST"

    def test_a_keys_page_posts_to_itself(self, admin_client: Client) -> None:
        key = SigningKey.objects.generate("ES256")
        html = page_of(admin_client, key)
        assert '<form method="post" id="signingkey_form"' in html  # no action attribute

    def test_an_unknown_keys_page(self, admin_client: Client) -> None:
        url = reverse("admin:apiauth_signingkey_change", args=["999999"])
        assert admin_client.get(url).status_code == 302  # Django: back to the index, said why

    def test_a_key_is_never_saved_again(self, admin_client: Client) -> None:
        key = SigningKey.objects.generate("ES256", state="active")  # no next key to refuse
        url = reverse("admin:apiauth_signingkey_change", args=[key.pk])
        response = admin_client.post(url, {"_save": "1"})
        assert response.status_code == 403
        assert "Signing keys" not in response.content.decode()  # a 403 says nothing of why


class TestFamilies:
    def families(self) -> tuple[TokenFamily, TokenFamily]:
        key, _raw = make_key()
        later = timezone.now() + datetime.timedelta(days=1)
        live = TokenFamily.objects.create(api_key=key, expires_at=later)
        ended = TokenFamily.objects.create(api_key=key, expires_at=later)
        TokenFamily.objects.filter(pk=ended.pk).update(revoked_at=timezone.now())
        return live, ended

    def listed(self, client: Client, query: str = "") -> set[str]:
        html = client.get(reverse("admin:apiauth_tokenfamily_changelist") + query).content
        return set(re.findall(r"/tokenfamily/([0-9a-f-]{36})/change/", html.decode()))

    def test_the_revoked_filter(self, admin_client: Client) -> None:
        live, ended = self.families()
        assert self.listed(admin_client) == {str(live.pk), str(ended.pk)}
        assert self.listed(admin_client, "?revoked=yes") == {str(ended.pk)}
        assert self.listed(admin_client, "?revoked=no") == {str(live.pk)}
        html = admin_client.get(reverse("admin:apiauth_tokenfamily_changelist")).content.decode()
        assert re.search(r'href="\?revoked=no"[^>]*>Not revoked<', html)
        assert re.search(r'href="\?revoked=yes"[^>]*>Revoked<', html)

    def test_a_familys_page_has_nothing_to_save(self, admin_client: Client) -> None:
        live, _ended = self.families()
        url = reverse("admin:apiauth_tokenfamily_change", args=[live.pk])
        html = admin_client.get(url).content.decode()
        assert '<form method="post" id="tokenfamily_form"' in html
        for button in ("_save", "_continue", "_addanother", "_saveasnew"):
            assert f'name="{button}"' not in html, button
