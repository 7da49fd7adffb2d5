"""How an OAuth application authenticates itself at the token endpoint (RFC 6749 §2.3):
``client_secret_basic``, ``client_secret_post``, ``none``; every malformed or conflicting way
of sending it, with the exact answer the client gets and the reason the audit records."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.test import Client

from apiauth.models import Application
from tests.utils import FORM, audited, oauth_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_redis", "signing_key")]

MALFORMED_BASIC = "Malformed HTTP Basic credentials."


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token(data: dict[str, Any] | list[tuple[str, str]], authorization: str | None = None) -> Any:
    headers = {"Authorization": authorization} if authorization is not None else {}
    body = urlencode(data if isinstance(data, list) else list(data.items()))
    return Client().post("/auth/token", body, content_type=FORM, headers=headers)


@pytest.fixture
def batch() -> tuple[Application, str]:
    """A confidential application that may use the client credentials grant."""
    return Application.objects.create_application(
        name="Batch",
        client_type="confidential",
        grant_types=["client_credentials"],
        scopes=["orders:read"],
        plan="pro",
    )


@pytest.fixture
def spa() -> Application:
    app, _none = Application.objects.create_application(
        name="SPA",
        client_type="public",
        redirect_uris=["http://127.0.0.1/cb"],
        scopes=["orders:read"],
    )
    return app


GRANT = {"grant_type": "client_credentials"}


class TestAccepted:
    def test_basic(self, batch: tuple[Application, str]) -> None:
        app, secret = batch
        assert token(GRANT, basic(app.client_id, secret)).status_code == 200

    def test_basic_in_any_case_with_spaces(self, batch: tuple[Application, str]) -> None:
        app, secret = batch
        encoded = basic(app.client_id, secret).split(" ", 1)[1]
        assert token(GRANT, f"  bAsIc   {encoded}  ").status_code == 200

    def test_basic_values_are_form_urlencoded(self, batch: tuple[Application, str]) -> None:
        """RFC 6749 §2.3.1: the id and the secret are encoded before they are joined."""
        app, secret = batch
        every_char = "".join(f"%{ord(c):02X}" for c in app.client_id)
        assert token(GRANT, basic(every_char, quote(secret, safe=""))).status_code == 200

    def test_post(self, batch: tuple[Application, str]) -> None:
        app, secret = batch
        data = {**GRANT, "client_id": app.client_id, "client_secret": secret}
        assert token(data).status_code == 200

    def test_basic_with_the_same_client_id_in_the_body(
        self, batch: tuple[Application, str]
    ) -> None:
        app, secret = batch
        data = {**GRANT, "client_id": app.client_id}
        assert token(data, basic(app.client_id, secret)).status_code == 200


def test_a_public_client_names_itself(spa: Application) -> None:
    """``none``: the client is known, and the grant (here one it may not use) decides."""
    response = token({**GRANT, "client_id": spa.client_id})
    oauth_error(response, 400, "unauthorized_client")


def test_a_client_id_that_is_not_an_applications_is_left_to_api_keys() -> None:
    response = token({**GRANT, "client_id": "someone"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Api-Key")


class TestRefused:
    def refused(self, caplog: Any, response: Any, reason: str, description: str) -> Any:
        body = oauth_error(response, 401, "invalid_client", description)
        assert response["WWW-Authenticate"].startswith('Basic realm="api"')
        assert len(audited(caplog, reason)) == 1
        return body

    @pytest.mark.parametrize(
        "value",
        [
            "Basic %%%",  # not base64
            "Basic " + base64.b64encode(b"\xff\xfe:secret").decode(),  # not UTF-8
            "Basic " + base64.b64encode(b"app_nocolon").decode(),  # no colon
            "Basic YXBw!!OmI=",  # base64 with characters outside its alphabet
            "Basic",  # no value
        ],
    )
    def test_malformed_basic(self, caplog: Any, value: str) -> None:
        self.refused(caplog, token(GRANT, value), "malformed", MALFORMED_BASIC)

    @pytest.mark.parametrize("name", ["client_id", "client_secret"])
    def test_a_parameter_twice(
        self, caplog: Any, batch: tuple[Application, str], name: str
    ) -> None:
        app, secret = batch
        data = [
            *GRANT.items(),
            ("client_id", app.client_id),
            ("client_secret", secret),
            (name, app.client_id if name == "client_id" else secret),
        ]
        self.refused(
            caplog, token(data), "malformed", "A client parameter was sent more than once."
        )

    def test_a_secret_without_its_client_id(
        self, caplog: Any, batch: tuple[Application, str]
    ) -> None:
        self.refused(
            caplog,
            token({**GRANT, "client_secret": batch[1]}),
            "malformed",
            "A client secret was sent without its client_id.",
        )

    def test_basic_and_post_together(self, caplog: Any, batch: tuple[Application, str]) -> None:
        app, secret = batch
        data = {**GRANT, "client_id": app.client_id, "client_secret": secret}
        self.refused(
            caplog,
            token(data, basic(app.client_id, secret)),
            "ambiguous",
            "Use one client authentication method, not several.",
        )

    def test_basic_for_one_client_and_another_client_id(
        self, caplog: Any, batch: tuple[Application, str], spa: Application
    ) -> None:
        app, secret = batch
        self.refused(
            caplog,
            token({**GRANT, "client_id": spa.client_id}, basic(app.client_id, secret)),
            "ambiguous",
            "The client_id does not match the authenticated client.",
        )

    @pytest.mark.parametrize(
        "client_id", ["", "app_" + "x" * 61, "app_é", "app_\u0430bc"], ids=str.__len__
    )
    def test_a_malformed_client_id(self, caplog: Any, client_id: str) -> None:
        self.refused(
            caplog, token(GRANT, basic(client_id, "s")), "malformed", "Malformed client_id."
        )

    def test_the_longest_client_id_is_looked_up(self, caplog: Any) -> None:
        self.refused(
            caplog, token(GRANT, basic("app_" + "x" * 60, "s")), "unknown_client", "Unknown client."
        )

    @pytest.mark.parametrize("client_id", ["\x00", "app_" + "a" * 19 + "\x00"], ids=["nul", "tail"])
    def test_a_nul_in_the_client_id(self, caplog: Any, client_id: str) -> None:
        """Never sent to the database: PostgreSQL refuses a NUL in a parameter (a 500)."""
        self.refused(
            caplog, token(GRANT, basic(client_id, "s")), "unknown_client", "Unknown client."
        )

    def test_an_unknown_client(self, caplog: Any) -> None:
        unknown = "app_" + "z" * 40
        self.refused(caplog, token(GRANT, basic(unknown, "s")), "unknown_client", "Unknown client.")
        assert audited(caplog, "unknown_client")[0]["credential_id"] == unknown[:32]

    def test_a_colon_belongs_to_the_secret(
        self, caplog: Any, batch: tuple[Application, str]
    ) -> None:
        """RFC 7617: the user id ends at the first colon; the rest, colons too, is the secret."""
        app, secret = batch
        response = token(GRANT, basic(app.client_id, secret + ":x"))
        self.refused(caplog, response, "bad_secret", "Client authentication failed.")

    def test_an_applications_allowlist(self, caplog: Any, batch: tuple[Application, str]) -> None:
        app, secret = batch
        Application.objects.filter(pk=app.pk).update(allowed_networks=["10.0.0.0/8"])
        response = token(GRANT, basic(app.client_id, secret))
        assert response.status_code in (401, 403)
        (refusal,) = audited(caplog, "ip_not_allowed")
        assert refusal["credential_id"] == app.client_id

    @pytest.mark.parametrize("how", ["basic", "post", "none", "long"])
    def test_a_confidential_client_without_its_secret(
        self, caplog: Any, batch: tuple[Application, str], how: str
    ) -> None:
        app, secret = batch
        if how == "basic":
            response = token(GRANT, basic(app.client_id, secret + "x"))
        elif how == "post":
            response = token({**GRANT, "client_id": app.client_id, "client_secret": "x"})
        elif how == "long":  # the secret, then more: compared only up to the longest secret
            data = {**GRANT, "client_id": app.client_id, "client_secret": secret + "x" * 500}
            response = token(data)
        else:
            response = token({**GRANT, "client_id": app.client_id})
        self.refused(caplog, response, "bad_secret", "Client authentication failed.")
        assert audited(caplog, "bad_secret")[0]["credential_id"] == app.client_id

    @pytest.mark.parametrize("how", ["basic", "post"])
    def test_a_public_client_sends_no_secret(self, caplog: Any, spa: Application, how: str) -> None:
        if how == "basic":
            response = token(GRANT, basic(spa.client_id, "anything"))
        else:
            response = token({**GRANT, "client_id": spa.client_id, "client_secret": ""})
        self.refused(caplog, response, "public_client", "A public client has no secret to send.")
        assert audited(caplog, "public_client")[0]["credential_id"] == spa.client_id

    def test_a_revoked_application(self, caplog: Any, batch: tuple[Application, str]) -> None:
        app, secret = batch
        app.revoke(reason="test")
        response = token(GRANT, basic(app.client_id, secret))
        oauth_error(response, 401, "invalid_client")
        assert len(audited(caplog, "revoked")) == 1
