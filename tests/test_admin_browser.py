"""The admin pages in a real browser (headless Chromium, driven by Playwright), at a laptop's
width: copy buttons that copy, the signing key's form and buttons, lists that fit, the
"already issued" message where the operator looks, the login lock.

With ``APIAUTH_SCREENSHOTS=<dir>`` each page is also saved there (docs/images holds the ones
docs/admin.md shows: ``make screenshots``)."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from apiauth.models import APIKey, Application, AuditEvent, SigningKey, TokenFamily
from apiauth.throttling import lockout
from tests.conftest import needs_chromium
from tests.factories import make_hmac, make_key, make_user

WIDTH, HEIGHT = 1280, 800

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_redis"),
    needs_chromium,
]


@pytest.fixture
def operator(live_site: str, chromium: Any) -> Any:
    """A superuser's page, signed in through the login form as a person does."""
    user = make_user("operator", is_staff=True, is_superuser=True)
    user.set_password("correct horse battery")
    user.save()
    context = chromium.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{live_site}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_site}/admin/")
    return page


def shoot(page: Any, name: str) -> None:
    folder = os.environ.get("APIAUTH_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def fits(page: Any) -> bool:
    """Nothing wider than its room: no page-wide scroll bar, and no column of the list hidden
    behind the list's own scroll bar (Django's admin clips a wide table there)."""
    return bool(
        page.evaluate(
            """document.documentElement.scrollWidth <= window.innerWidth &&
            [...document.querySelectorAll("#changelist .results")].every(
                (el) => el.scrollWidth <= el.clientWidth + 1)"""
        )
    )


def copy(page: Any, target: str) -> str:
    """Click a copy button; the clipboard once the button says the copy is done (the write
    is asynchronous: reading at once may find it empty on a busy machine)."""
    button = f"[data-apiauth-copy={target}]"
    page.click(button)
    page.wait_for_function(
        "(selector) => document.querySelector(selector).textContent === 'Copied'", arg=button
    )
    return str(page.evaluate("navigator.clipboard.readText()"))


def test_issue_a_key_copy_it_and_back_then_save(live_site: str, operator: Any) -> None:
    page = operator
    page.goto(f"{live_site}/admin/apiauth/apikey/add/")
    page.fill("#id_name", "partner")
    page.fill("#id_scopes", "orders:read")
    page.click("input[name=_save]")
    raw = page.input_value("#apiauth-raw-key")
    assert raw.startswith("apk_")
    assert copy(page, "apiauth-raw-key") == raw
    shoot(page, "key-issued")
    # Back, then Save: the page is fetched anew; the operator (or the browser) fills it again.
    page.go_back()
    page.fill("#id_name", "partner")
    page.fill("#id_scopes", "orders:read")
    page.click("input[name=_save]")
    error = page.locator(".errorlist.nonfield li")
    error.wait_for(state="visible")  # above the fields, under "Please correct the error below."
    assert "a moment ago" in error.inner_text()
    assert APIKey.objects.count() == 1
    shoot(page, "key-back-then-save")


def test_hmac_credentials_show_both_values_with_copy_buttons(live_site: str, operator: Any) -> None:
    page = operator
    page.goto(f"{live_site}/admin/apiauth/hmaccredential/add/")
    page.fill("#id_name", "billing signer")
    page.fill("#id_scopes", "orders:read")
    page.click("input[name=_save]")
    access_key_id = page.input_value("#apiauth-access-key-id")
    assert copy(page, "apiauth-access-key-id") == access_key_id
    assert copy(page, "apiauth-raw-key") == page.input_value("#apiauth-raw-key")
    shoot(page, "hmac-issued")


def test_a_signing_key_from_its_add_page_to_its_buttons(live_site: str, operator: Any) -> None:
    page = operator
    page.goto(f"{live_site}/admin/apiauth/signingkey/add/")
    assert page.input_value("#id_algorithm") == "ES256"
    assert not page.locator(".field-key_size").is_visible()
    page.select_option("#id_algorithm", "RS256")
    assert page.locator(".field-key_size").is_visible()
    page.select_option("#id_algorithm", "EdDSA")
    assert not page.locator(".field-key_size").is_visible()
    shoot(page, "signing-key-add")
    page.click("input[name=_save]")
    key = SigningKey.objects.get()
    page.goto(f"{live_site}/admin/apiauth/signingkey/{key.pk}/change/")
    assert page.locator("input[name=_save]").count() == 0
    shoot(page, "signing-key-page")
    page.click("input[name=_promote]")
    assert page.locator(".messagelist").inner_text().startswith(f"Promoted {key.kid}")
    key.refresh_from_db()
    assert key.state == "active"
    page.click("text=Revoke…")
    page.fill("#id_reason", "leaked")
    shoot(page, "signing-key-revoke")
    page.click("input[type=submit][value='Yes, revoke']")
    key.refresh_from_db()
    assert key.state == "revoked" and key.reason == "leaked"


def test_the_wide_lists_fit_a_laptop(live_site: str, operator: Any) -> None:
    page = operator
    SigningKey.objects.generate("RS256", state="active")
    SigningKey.objects.generate("EdDSA")
    soon = timezone.now() + datetime.timedelta(days=90)
    key, _raw = make_key(
        name="a partner with a rather long name", scopes=["orders:read"], expires_at=soon
    )
    hmac, _secret = make_hmac(name="billing signer", expires_at=soon)
    app, _app_secret = Application.objects.create_application(
        name="Partner portal",
        client_type="confidential",
        first_party=True,
        redirect_uris=["https://portal.example/callback"],
    )
    for used in (key, hmac, app):
        type(used).objects.filter(pk=used.pk).update(last_used_at=timezone.now())
    for n in range(3):
        TokenFamily.objects.create(
            api_key=key,
            scopes=["orders:read", "orders:write"],
            expires_at=timezone.now() + datetime.timedelta(days=30 - n),
        )
        AuditEvent.objects.create(
            action="revoke",
            credential_kind="api_key",
            credential_id=key.public_id,
            actor_repr="operator",
            client_ip="2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            reason=(
                "leaked in a public repository, found by the secret scanner, rotated"
                if n
                else "apiauth_createhmac_and_its_rotation_by_the_nightly_job_of_the_partner"
            ),
        )
    for name, path in [
        ("api-keys", "apikey"),
        ("hmac-credentials", "hmaccredential"),
        ("applications", "application"),
        ("signing-keys", "signingkey"),
        ("token-families", "tokenfamily"),
        ("audit", "auditevent"),
    ]:
        page.goto(f"{live_site}/admin/apiauth/{path}/")
        shoot(page, f"list-{name}")
        assert fits(page), path
        shoot(page, f"list-{name}")


def test_the_login_lock(live_site: str, chromium: Any) -> None:
    lockout.limiter.clear()
    make_user("operator", is_staff=True)
    page = chromium.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    limits = {"FAILED_AUTH_LIMITS": {"rate": "1/min", "burst": 2}}
    with override_settings(APIAUTH={**settings.APIAUTH, **limits}):
        for _ in range(2):
            page.goto(f"{live_site}/admin/login/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", "guess")
            with page.expect_navigation() as answered:
                page.click("input[type=submit]")
        response = answered.value
        # The browser (and a script) sees the status and when to come back.
        assert response.status == 429 and int(response.headers["retry-after"]) >= 1
        assert "Too many wrong passwords" in page.inner_text("main")
        shoot(page, "login-locked")
    lockout.limiter.clear()
