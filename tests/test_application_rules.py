"""An OAuth application's pure rules: its identifiers and secret, and which redirect URIs and
grant types it may hold (RFC 6749 §3.1.2, RFC 8252 §7.3), word for word."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from apiauth.models import Application
from apiauth.models.oauth import (
    CLIENT_ID_ALPHABET,
    CLIENT_ID_RE,
    default_grant_types,
    generate_client_id,
    generate_client_secret,
    is_loopback,
    secret_digest,
    validate_grant_types,
    validate_redirect_uris,
)


def refusal(validator: Any, value: Any) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        validator(value)
    error = caught.value.error_list[0]
    return str(error.message % (error.params or {})), str(error.code)


def test_a_client_id() -> None:
    ids = {generate_client_id() for _ in range(50)}
    assert len(ids) == 50
    for client_id in ids:
        assert re.fullmatch(f"app_[{CLIENT_ID_ALPHABET}]{{20}}", client_id), client_id
        assert CLIENT_ID_RE.fullmatch(client_id)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        "",
        "\x00",
        "app_" + "a" * 19 + "\x00",
        "app_" + "a" * 19,
        "app_" + "a" * 21,
        "app_" + "A" * 20,
    ],
    ids=["empty", "nul", "nul-tail", "short", "long", "uppercase"],
)
def test_what_no_client_id_can_be_costs_no_query(
    value: str, django_assert_num_queries: Any
) -> None:
    """Whatever a client sends as its id reaches this lookup: a NUL would make PostgreSQL
    raise (a 500), anything else not generated cannot match."""
    with django_assert_num_queries(0):
        assert Application.objects.get_by_client_id(value) is None


@pytest.mark.django_db
def test_a_client_id_is_found_in_one_query(django_assert_num_queries: Any) -> None:
    app, _secret = Application.objects.create_application(
        name="Found", client_type="public", redirect_uris=["http://127.0.0.1/cb"]
    )
    with django_assert_num_queries(1):
        assert Application.objects.get_by_client_id(app.client_id) == app


def test_a_client_secret() -> None:
    secret = generate_client_secret()
    assert secret.startswith("cs_") and len(secret) == 3 + 43
    assert re.fullmatch(r"cs_[A-Za-z0-9_-]{43}", secret) and secret != generate_client_secret()


def test_the_secrets_digest() -> None:
    assert secret_digest("cs_x") == hashlib.sha256(b"cs_x").hexdigest()
    assert secret_digest("cs_é") == hashlib.sha256("cs_é".encode()).hexdigest()


@pytest.mark.parametrize(
    ("uri", "loopback"),
    [
        ("http://127.0.0.1/cb", True),
        ("http://127.0.0.1:53682/cb", True),
        ("http://[::1]:8080/cb", True),
        ("http://127.9.9.9/cb", True),
        ("https://127.0.0.1/cb", False),  # RFC 8252: loopback redirects are http
        ("http://localhost/cb", False),  # a name, not an IP literal (§8.3)
        ("http://10.0.0.1/cb", False),
        ("http:///cb", False),
        ("http://[zz]/cb", False),  # urlsplit refuses it
        ("http://[::1/cb", False),
    ],
)
def test_loopback(uri: str, loopback: bool) -> None:
    assert is_loopback(uri) is loopback


@pytest.mark.parametrize(
    ("value", "message", "code"),
    [
        ("https://a.example/cb", "Redirect URIs must be a list of strings.", "invalid_uris"),
        ([1], "Redirect URIs must be a list of strings.", "invalid_uris"),
        (
            [f"https://a.example/{n}" for n in range(21)],
            "At most 20 redirect URIs.",
            "invalid_uris",
        ),
        (["https://a.example/" + "x" * 500], None, "invalid_uri"),
        (["https://a.example/a b"], "“https://a.example/a b”: it is not a URI.", "invalid_uri"),
        (["https://[zz]/cb"], "“https://[zz]/cb”: it is not a URI.", "invalid_uri"),
        (
            ["https://a.example/cb#frag"],
            "“https://a.example/cb#frag”: a redirect URI has no fragment (RFC 6749 §3.1.2).",
            "invalid_uri",
        ),
        (
            ["javascript:alert(1)"],
            "“javascript:alert(1)”: give an https URI, a loopback http URI or an app's own scheme.",
            "invalid_uri",
        ),
        (
            ["/relative"],
            "“/relative”: give an https URI, a loopback http URI or an app's own scheme.",
            "invalid_uri",
        ),
        (
            ["http://a.example/cb"],
            "“http://a.example/cb”: plain http is only for loopback addresses (127.0.0.1, [::1]).",
            "invalid_uri",
        ),
        (["https:///cb"], "“https:///cb”: it names no host.", "invalid_uri"),
        *(
            (
                [uri],
                f"“{uri}”: a redirect URI has no fragment (RFC 6749 §3.1.2).",
                "invalid_uri",
            )
            for uri in ["https://a.example/cb#", "https://a.example/cb#x"]
        ),
        (["https://a.example/" + "x" * 483], None, "invalid_uri"),  # 501 characters
        *(
            (
                [f"{scheme}:x"],
                f"“{scheme}:x”: give an https URI, a loopback http URI or an app's own scheme.",
                "invalid_uri",
            )
            for scheme in ["data", "file", "vbscript", "JavaScript"]
        ),
    ],
)
def test_redirect_uris_refused(value: Any, message: str | None, code: str) -> None:
    said, said_code = refusal(validate_redirect_uris, value)
    assert said_code == code
    if message is not None:
        assert said == message
    else:
        assert said == f"“{value[0][:100]}”: it is not a URI."  # the URI cut to 100


@pytest.mark.parametrize(
    "value",
    [
        [],
        [f"https://a.example/{n}" for n in range(20)],
        ["https://a.example/cb", "http://127.0.0.1/cb", "com.example.app:/oauth"],
        ["https://a.example/" + "x" * 482],  # 500 characters
    ],
)
def test_redirect_uris_accepted(value: list[str]) -> None:
    validate_redirect_uris(value)


@pytest.mark.parametrize("value", ["authorization_code", [], ["password"], [1]])
def test_grant_types_refused(value: Any) -> None:
    assert refusal(validate_grant_types, value) == (
        "Grant types must be a non-empty list of: authorization_code, refresh_token, "
        "client_credentials.",
        "invalid_grants",
    )


def test_grant_types_accepted() -> None:
    validate_grant_types(["client_credentials"])
    assert default_grant_types() == ["authorization_code", "refresh_token"]
    assert default_grant_types() is not default_grant_types()  # a new list for each row


@pytest.mark.django_db
class TestAnApplicationsSecret:
    def make(self, client_type: str = "confidential") -> Any:
        from apiauth.models import Application

        return Application.objects.create_application(
            name="App", client_type=client_type, redirect_uris=["http://127.0.0.1/cb"]
        )

    def test_only_a_new_application_gets_one(self) -> None:
        app, _secret = self.make()
        with pytest.raises(ValueError) as caught:
            app.assign_new_secret()
        assert str(caught.value) == "Only a new application gets a secret; rotate an existing one."

    def test_rotation_refused(self) -> None:
        import datetime

        from apiauth.models import Application
        from apiauth.models.base import RevokedCredential

        public, _none = self.make("public")
        with pytest.raises(ValueError) as caught:
            Application.objects.rotate_secret(public, datetime.timedelta(hours=1))
        assert str(caught.value) == "A public client has no secret."
        revoked, _secret = self.make()
        revoked.revoke()
        with pytest.raises(RevokedCredential) as refused:
            Application.objects.rotate_secret(revoked, datetime.timedelta(hours=1))
        assert str(refused.value) == "A revoked application cannot be rotated."

    def test_rotation_keeps_the_previous_secret_for_its_grace(self) -> None:
        import datetime

        from apiauth.models import Application

        app, old = self.make()
        new = Application.objects.rotate_secret(app, datetime.timedelta(hours=1))
        stored = Application.objects.get(pk=app.pk)
        assert stored.check_secret(new) and stored.check_secret(old)
        assert stored.previous_secret_expires_at is not None

    def test_a_public_client_matches_no_secret(self) -> None:
        public, _none = self.make("public")
        assert not public.check_secret("")
        assert not public.check_secret("anything")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("http://127.0.0.1/cb", True),
        ("http://127.0.0.1:4567/cb", True),  # any port of a loopback redirect
        ("http://user@127.0.0.1:4567/cb", False),
        ("http://user:pw@127.0.0.1:4567/cb", False),
        ("http://:pw@127.0.0.1:4567/cb", False),
        ("http://127.0.0.1:4567/cb#", False),
        ("http://127.0.0.1:4567/cb#x", False),
        ("http://127.0.0.1:4567/other", False),
        ("http://[::1]:4567/cb", True),  # the second registered loopback URI
        ("https://a.example/cb", True),
        ("https://a.example:8443/cb", False),  # only loopback ports may differ
    ],
)
def test_which_redirect_uris_an_application_allows(uri: str, allowed: bool) -> None:
    from apiauth.models import Application

    app, _secret = Application.objects.create_application(
        name="App",
        client_type="public",
        redirect_uris=["https://a.example/cb", "http://127.0.0.1/cb", "http://[::1]/cb"],
    )
    assert app.redirect_uri_allowed(uri) is allowed
