"""The credential admins' own pages as Django builds them: the URLs each admin adds, the
change page's form and sections, the confirmation pages' hidden fields — what an operator's
browser receives."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from apiauth.admin import APIKeyAdmin, ApplicationAdmin, HMACCredentialAdmin
from apiauth.crypto import hash_key
from apiauth.models import APIKey, Application, HMACCredential
from tests.factories import add_key, make_hmac, make_key

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_redis")]

ADMINS = [
    (APIKeyAdmin, APIKey, "apikey", "roll"),
    (HMACCredentialAdmin, HMACCredential, "hmaccredential", "rotate"),
    (ApplicationAdmin, Application, "application", "rotate"),
]


@pytest.mark.parametrize(("admin_class", "model", "name", "renew"), ADMINS)
def test_each_admin_adds_its_revoke_and_renew_urls(
    admin_class: type[Any], model: type[Any], name: str, renew: str
) -> None:
    """Built afresh (the URLconf in memory was built before any test ran)."""
    patterns = admin_class(model, admin.site).get_urls()
    ours = {p.name: str(p.pattern) for p in patterns[:2]}
    assert ours == {
        f"apiauth_{name}_revoke": "<path:object_id>/revoke/",
        f"apiauth_{name}_{renew}": f"<path:object_id>/{renew}/",
    }
    assert all(p.callback.__name__ for p in patterns[:2])  # admin_view-wrapped views
    assert {f"apiauth_{name}_change", f"apiauth_{name}_changelist"} <= {p.name for p in patterns}


def test_the_urls_answer_through_the_admin_wrapper(admin_client: Client) -> None:
    key, _raw = make_key()
    patterns = APIKeyAdmin(APIKey, admin.site).get_urls()
    revoke = patterns[0].callback
    assert getattr(revoke, "__wrapped__", None) is not None or revoke.__name__ == "revoke_view"
    anonymous = Client().get(reverse("admin:apiauth_apikey_revoke", args=[key.pk]))
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]


def test_the_change_page(admin_client: Client) -> None:
    key, _raw = make_key()
    page = admin_client.get(reverse("admin:apiauth_apikey_change", args=[key.pk]))
    html = page.content.decode()
    assert '<form method="post" id="apikey_form"' in html  # no action: it posts to itself
    assert 'class="fieldset-heading">Identity and lifecycle</h2>' in html
    assert reverse("admin:apiauth_apikey_roll", args=[key.pk]) in html


def test_save_as_new_offers_no_buttons(admin_client: Client) -> None:
    key, _raw = make_key()
    url = reverse("admin:apiauth_apikey_change", args=[key.pk])
    page = admin_client.post(url, {"_saveasnew": "1", "name": ""})
    assert page.status_code == 200
    html = page.content.decode()
    assert reverse("admin:apiauth_apikey_revoke", args=[key.pk]) not in html
    assert reverse("admin:apiauth_apikey_roll", args=[key.pk]) not in html


@pytest.mark.parametrize(
    ("name", "make", "action"),
    [("apikey", make_key, "roll_key"), ("hmaccredential", make_hmac, "rotate_secret")],
)
def test_a_confirmation_page_posts_its_action_back(
    admin_client: Client, name: str, make: Any, action: str
) -> None:
    obj, _secret = make()
    changelist = reverse(f"admin:apiauth_{name}_changelist")
    for chosen in ("revoke_selected", action):
        page = admin_client.post(changelist, {"action": chosen, "_selected_action": [obj.pk]})
        html = page.content.decode()
        assert f'name="action" value="{chosen}"' in html
        assert f'name="_selected_action" value="{obj.pk}"' in html
        assert re.search(r'name="csrfmiddlewaretoken" value="[^"]+"', html)
        assert page.context["opts"].model_name == name


def test_the_secret_page_is_never_stored(admin_client: Client) -> None:
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    key, _raw = make_key()
    request = RequestFactory().get("/admin/")
    request.user = User.objects.create_superuser("boss", "", "pw")
    response = APIKeyAdmin(APIKey, admin.site).render_secret(request, key, "apk_shown", "Issued")
    assert response["Cache-Control"] == "no-store"
    html = response.render().content.decode()  # type: ignore[attr-defined]
    assert "apk_shown" in html and "boss" in html  # rendered with the request's user


@pytest.mark.parametrize(
    ("model", "data", "shown"),
    [
        ("apikey", {}, ["apiauth-raw-key"]),
        ("hmaccredential", {}, ["apiauth-access-key-id", "apiauth-raw-key"]),
        (
            "application",
            {
                "client_type": "confidential",
                "redirect_uris": "https://a.example/cb",
                "grant_types": ["authorization_code"],
            },
            ["apiauth-client-id", "apiauth-raw-key"],
        ),
        (
            "application",
            {
                "client_type": "public",
                "redirect_uris": "https://a.example/cb",
                "grant_types": ["authorization_code"],
            },
            ["apiauth-client-id"],
        ),
    ],
)
def test_every_value_shown_once_has_its_copy_button(
    admin_client: Client, model: str, data: dict[str, Any], shown: list[str]
) -> None:
    response = add_key(admin_client, model, **data)
    html = response.content.decode()
    assert response["Cache-Control"] == "no-store"
    inputs = dict(
        re.findall(r'<input id="(apiauth-[a-z-]+)" type="text" readonly value="([^"]+)"', html)
    )
    buttons = re.findall(r'data-apiauth-copy="([a-z-]+)"', html)
    assert list(inputs) == shown and buttons == shown
    obj: Any = {"apikey": APIKey, "hmaccredential": HMACCredential, "application": Application}[
        model
    ]._default_manager.get()
    identifier = getattr(obj, "access_key_id", None) or getattr(obj, "client_id", None)
    if len(shown) == 2 or model == "application":
        assert inputs[shown[0]] == identifier
    secret = inputs.get("apiauth-raw-key")
    if model == "apikey":
        assert secret is not None and APIKey.objects.get_by_digest(hash_key(secret)) == obj
    elif model == "hmaccredential":
        assert obj.secrets() == [secret]
    elif secret is not None:
        assert obj.check_secret(secret)
    assert "apiauth/copy.js" in html


def test_a_public_client_has_no_secret_to_rotate(admin_client: Client) -> None:
    app, _secret = Application.objects.create_application(
        name="CLI", client_type="public", redirect_uris=["http://127.0.0.1/cb"]
    )
    rotate = reverse("admin:apiauth_application_rotate", args=[app.pk])
    response = admin_client.post(rotate, follow=True)
    assert '<li class="error">A public client has no secret.</li>' in response.content.decode()
    app.refresh_from_db()
    assert not app.secret_hash


def test_a_moment_as_lists_show_it() -> None:
    import datetime

    from django.utils import timezone

    from apiauth.admin.audited import moment

    assert moment(None) == "—"
    when = datetime.datetime(2026, 12, 4, 22, 39, 7, tzinfo=datetime.UTC)
    local = timezone.localtime(when)
    iso = local.isoformat()
    assert moment(when) == (f'<time datetime="{iso}" title="{iso}">{local:%Y-%m-%d %H:%M}</time>')
    assert moment(when, "date").endswith(f">{local:%Y-%m-%d}</time>")
    assert moment(when, "seconds").endswith(f">{local:%Y-%m-%d %H:%M:%S}</time>")
