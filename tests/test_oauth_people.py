"""People's tokens over HTTP: the authorization endpoint, consent, the code + PKCE exchange,
client authentication, refresh, and ending an authorization — every error on the way."""

from __future__ import annotations

import base64
import datetime
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiauth import authorization
from apiauth.models import Application, AuditEvent, AuthorizationCode, Consent, TokenFamily
from apiauth.tokens import GrantError
from apiauth.views.authorize import PARAMETERS
from tests.factories import add_key, make_user
from tests.utils import FORM, ISS, call

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_redis", "signing_key")]

CALLBACK = "http://127.0.0.1/callback"
WEB = "https://app.example/oauth/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, authorization.s256(verifier)


def make_app(**fields: Any) -> tuple[Application, str]:
    fields.setdefault("name", "Orders CLI")
    fields.setdefault("client_type", "public")
    fields.setdefault("redirect_uris", [CALLBACK])
    fields.setdefault("scopes", ["orders:read", "orders:write"])
    fields.setdefault("plan", "pro")
    return Application.objects.create_application(**fields)


@pytest.fixture
def person() -> Any:
    return make_user("pat")


@pytest.fixture
def browser(person: Any) -> Client:
    client = Client()
    client.force_login(person)
    return client


@pytest.fixture
def cli() -> tuple[Application, str]:
    return make_app()


def authorize(browser: Client, app: Application, challenge: str, **params: Any) -> Any:
    query = {
        "client_id": app.client_id,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "orders:read",
        "state": "s-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **params,
    }
    query = {name: value for name, value in query.items() if value is not None}
    return browser.get("/auth/authorize?" + urlencode(query))


def allow(browser: Client, page: Any, choice: str = "allow") -> Any:
    assert page.status_code == 200, page.content
    fields = dict(page.context["params"])
    return browser.post("/auth/authorize", {**fields, choice: "1"})


def answer(response: Any) -> dict[str, str]:
    """The parameters of a redirect back to the client."""
    assert response.status_code == 302, response.content
    location = response["Location"]
    assert location.startswith(CALLBACK.split("?")[0].rsplit("/", 1)[0]) or location.startswith(WEB)
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def exchange(app: Application, code: str, verifier: str | None, **extra: Any) -> Any:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": app.client_id,
        **({"code_verifier": verifier} if verifier is not None else {}),
        **extra,
    }
    data = {name: value for name, value in data.items() if value is not None}
    return Client().post("/auth/token", urlencode(data), content_type=FORM)


def signed_in(browser: Client, app: Application, scope: str = "orders:read") -> dict[str, Any]:
    """The whole flow: authorize, consent, exchange."""
    verifier, challenge = pkce()
    first = authorize(browser, app, challenge, scope=scope)
    response = first if first.status_code == 302 else allow(browser, first)
    code = answer(response)["code"]
    tokens = exchange(app, code, verifier)
    assert tokens.status_code == 200, tokens.content
    return dict(tokens.json())


class TestTheFlow:
    def test_sign_in_consent_code_token_call_refresh(
        self, browser: Client, cli: tuple[Application, str], person: Any
    ) -> None:
        app, secret = cli
        assert secret == ""  # a public client holds none
        verifier, challenge = pkce()
        page = authorize(browser, app, challenge)
        assert page.status_code == 200
        html = page.content.decode()
        assert "Orders CLI" in html and "orders:read" in html
        assert page["X-Frame-Options"] == "DENY"
        assert "no-store" in page["Cache-Control"]
        back = answer(allow(browser, page))
        assert back["state"] == "s-123" and back["iss"] == ISS
        issued = exchange(app, back["code"], verifier)
        assert issued.status_code == 200 and issued["Cache-Control"] == "no-store"
        body = issued.json()
        assert body["token_type"] == "Bearer" and body["scope"] == "orders:read"
        assert body["expires_in"] > 0 and body["refresh_token"]
        me = call(Client(), body["access_token"], "/v1/whoami")
        assert me.status_code == 200 and me.json()["user"] == "pat"
        orders = call(Client(), body["access_token"], "/v1/orders")
        assert orders.status_code == 200
        refreshed = Client().post(
            "/auth/token",
            urlencode(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": body["refresh_token"],
                    "client_id": app.client_id,
                }
            ),
            content_type=FORM,
        )
        assert refreshed.status_code == 200, refreshed.content
        assert call(Client(), refreshed.json()["access_token"]).status_code == 200
        assert Consent.objects.get(user=person, application=app).scopes == ["orders:read"]
        assert AuditEvent.objects.filter(action="consent", credential_id=app.client_id).exists()

    def test_the_token_is_the_persons(
        self, browser: Client, cli: tuple[Application, str], person: Any
    ) -> None:
        import jwt

        body = signed_in(browser, cli[0])
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == str(person.pk) and claims["client_id"] == cli[0].client_id
        assert claims["scope"] == "orders:read" and claims["sid"]
        header = jwt.get_unverified_header(body["access_token"])
        assert header["typ"] == "at+jwt"

    def test_a_standing_consent_is_not_asked_again(
        self, browser: Client, cli: tuple[Application, str]
    ) -> None:
        signed_in(browser, cli[0])
        _verifier, challenge = pkce()
        again = authorize(browser, cli[0], challenge)
        assert "code" in answer(again)
        wider = authorize(browser, cli[0], challenge, scope="orders:read orders:write")
        assert wider.status_code == 200  # more than was allowed: asked

    def test_allowing_more_widens_the_standing_consent(
        self, browser: Client, cli: tuple[Application, str], person: Any
    ) -> None:
        signed_in(browser, cli[0], scope="orders:read")
        before = Consent.objects.get()
        _verifier, challenge = pkce()
        allow(browser, authorize(browser, cli[0], challenge, scope="orders:write"))
        after = Consent.objects.get()
        assert after.scopes == ["orders:read", "orders:write"]
        assert after.created_at == before.created_at and after.updated_at > before.updated_at
        assert after.revoked_at is None

    def test_allowing_again_after_ending_it_grants_anew(
        self, browser: Client, cli: tuple[Application, str], person: Any
    ) -> None:
        signed_in(browser, cli[0], scope="orders:read orders:write")
        before = Consent.objects.get()
        authorization.end_authorization(cli[0], person, reason="test")
        _verifier, challenge = pkce()
        page = authorize(browser, cli[0], challenge, scope="orders:read")
        assert page.status_code == 200  # an ended authorization is asked again
        allow(browser, page)
        after = Consent.objects.get()
        assert after.scopes == ["orders:read"]  # nothing of the ended one stands
        assert after.revoked_at is None and after.created_at > before.created_at

    def test_a_consent_is_one_persons_for_one_app(
        self, browser: Client, cli: tuple[Application, str], person: Any
    ) -> None:
        other_app, _ = make_app(name="Other app")
        authorization.record_consent(cli[0], make_user("sam"), ["orders:read"])
        authorization.record_consent(other_app, person, ["orders:read"])
        _verifier, challenge = pkce()
        assert authorize(browser, cli[0], challenge).status_code == 200  # asked

    def test_a_first_party_app_asks_nothing(self, browser: Client) -> None:
        app, _secret = make_app(first_party=True)
        _verifier, challenge = pkce()
        assert "code" in answer(authorize(browser, app, challenge))

    def test_signing_in_first(self, cli: tuple[Application, str]) -> None:
        _verifier, challenge = pkce()
        response = authorize(Client(), cli[0], challenge)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=/auth/authorize%3F")

    def test_a_loopback_redirect_on_any_port(self, browser: Client) -> None:
        app, _ = make_app(first_party=True)
        verifier, challenge = pkce()
        uri = "http://127.0.0.1:53682/callback"
        response = authorize(browser, app, challenge, redirect_uri=uri)
        assert response["Location"].startswith(uri + "?code=")
        code = answer(response)["code"]
        assert exchange(app, code, verifier, redirect_uri=uri).status_code == 200

    def test_the_scopes_asked_default_to_the_apps(self, browser: Client) -> None:
        app, _ = make_app(first_party=True)
        body = signed_in(browser, app, scope=None)  # type: ignore[arg-type]
        assert body["scope"] == "orders:read orders:write"


class TestShownNotRedirected:
    """Errors before the client and its redirect URI are trusted: shown, never redirected."""

    @pytest.mark.parametrize(
        "changes",
        [
            {"client_id": "app_unknownunknownunkn"},
            {"client_id": None},
            {"redirect_uri": None},
            {"redirect_uri": "https://evil.example/callback"},
            {"redirect_uri": "http://127.0.0.1/callback/../evil"},
            {"redirect_uri": "http://127.0.0.1/callback?x=1"},
            {"redirect_uri": "http://127.0.0.1.evil.example/callback"},
            {"redirect_uri": "http://localhost/callback"},
            {"redirect_uri": "HTTP://127.0.0.1/callback#frag"},
            # Hosts Python's urlsplit itself refuses (they were a 500).
            {"redirect_uri": "http://[zz]/callback"},
            {"redirect_uri": "http://[::1/callback"},
        ],
    )
    def test_shown(
        self, browser: Client, cli: tuple[Application, str], changes: dict[str, Any]
    ) -> None:
        _verifier, challenge = pkce()
        response = authorize(browser, cli[0], challenge, **changes)
        assert response.status_code == 400
        assert "Location" not in response
        assert "cannot be completed" in response.content.decode()

    def test_a_revoked_application(self, browser: Client, cli: tuple[Application, str]) -> None:
        cli[0].revoke()
        _verifier, challenge = pkce()
        assert authorize(browser, cli[0], challenge).status_code == 400

    def test_two_client_ids(self, browser: Client, cli: tuple[Application, str]) -> None:
        _verifier, challenge = pkce()
        url = authorize(browser, cli[0], challenge).request["QUERY_STRING"]
        response = browser.get(f"/auth/authorize?{url}&client_id={cli[0].client_id}")
        assert response.status_code == 400


class TestRedirectedErrors:
    @pytest.mark.parametrize(
        ("changes", "error"),
        [
            ({"response_type": "token"}, "unsupported_response_type"),
            ({"response_type": None}, "unsupported_response_type"),
            ({"code_challenge": None}, "invalid_request"),
            ({"code_challenge_method": "plain"}, "invalid_request"),
            ({"code_challenge_method": None}, "invalid_request"),
            ({"code_challenge": "short"}, "invalid_request"),
            ({"scope": "admin:everything"}, "invalid_scope"),
            ({"scope": "orders:read  orders:write"}, "invalid_scope"),
            ({"state": "x" * 501}, "invalid_request"),
        ],
    )
    def test_redirected_with_the_state(
        self, browser: Client, cli: tuple[Application, str], changes: dict[str, Any], error: str
    ) -> None:
        _verifier, challenge = pkce()
        back = answer(authorize(browser, cli[0], challenge, **changes))
        assert back["error"] == error and back["error_description"]
        assert back["iss"] == ISS
        if "state" not in changes:
            assert back["state"] == "s-123"

    def test_a_parameter_twice(self, browser: Client, cli: tuple[Application, str]) -> None:
        _verifier, challenge = pkce()
        url = authorize(browser, cli[0], challenge).request["QUERY_STRING"]
        back = answer(browser.get(f"/auth/authorize?{url}&scope=orders:write"))
        assert back["error"] == "invalid_request"

    def test_an_app_without_the_grant(self, browser: Client) -> None:
        app, _ = make_app(client_type="confidential", grant_types=["client_credentials"])
        _verifier, challenge = pkce()
        assert answer(authorize(browser, app, challenge))["error"] == "unauthorized_client"

    def test_denied(self, browser: Client, cli: tuple[Application, str]) -> None:
        _verifier, challenge = pkce()
        back = answer(allow(browser, authorize(browser, cli[0], challenge), "deny"))
        assert back["error"] == "access_denied" and back["state"] == "s-123"
        assert not Consent.objects.exists() and not AuthorizationCode.objects.exists()

    def test_consent_needs_the_person_signed_in(self, cli: tuple[Application, str]) -> None:
        _verifier, challenge = pkce()
        response = Client().post(
            "/auth/authorize",
            {
                "client_id": cli[0].client_id,
                "redirect_uri": CALLBACK,
                "response_type": "code",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "allow": "1",
            },
        )
        assert response.status_code == 403 and not AuthorizationCode.objects.exists()

    def test_consent_needs_the_csrf_token(self, person: Any, cli: tuple[Application, str]) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(person)
        _verifier, challenge = pkce()
        page = authorize(client, cli[0], challenge)
        fields = dict(page.context["params"])
        assert client.post("/auth/authorize", {**fields, "allow": "1"}).status_code == 403


class TestTheExchange:
    def code(self, browser: Client, app: Application) -> tuple[str, str]:
        verifier, challenge = pkce()
        page = authorize(browser, app, challenge)
        response = page if page.status_code == 302 else allow(browser, page)
        return answer(response)["code"], verifier

    def refused(self, response: Any, error: str = "invalid_grant") -> str:
        assert response.status_code in (400, 401), response.content
        body = response.json()
        assert body["error"] == error, body
        return str(body["error_description"])

    NO_MATCH = "The code_verifier does not match the challenge."
    INVALID = "The authorization code is invalid."

    def test_a_wrong_verifier(self, browser: Client, cli: tuple[Application, str]) -> None:
        code, verifier = self.code(browser, cli[0])
        other, _ = pkce()
        assert self.refused(exchange(cli[0], code, other)) == self.NO_MATCH

    def test_no_verifier(self, browser: Client, cli: tuple[Application, str]) -> None:
        code, _verifier = self.code(browser, cli[0])
        assert self.refused(exchange(cli[0], code, None)) == self.NO_MATCH

    def test_a_verifier_out_of_spec(self, browser: Client, cli: tuple[Application, str]) -> None:
        code, _verifier = self.code(browser, cli[0])
        assert self.refused(exchange(cli[0], code, "short")) == self.NO_MATCH

    @pytest.mark.parametrize("raw", ["x" * 201, "code-é", "c" * 200], ids=["long", "utf8", "200"])
    def test_a_code_that_cannot_be_one(self, cli: tuple[Application, str], raw: str) -> None:
        assert self.refused(exchange(cli[0], raw, "v" * 43)) == self.INVALID

    def test_spending_one_code_leaves_the_others(
        self, browser: Client, cli: tuple[Application, str]
    ) -> None:
        first, first_verifier = self.code(browser, cli[0])
        second, second_verifier = self.code(browser, cli[0])
        assert exchange(cli[0], first, first_verifier).status_code == 200
        assert exchange(cli[0], second, second_verifier).status_code == 200

    def test_the_code_twice_revokes_what_it_issued(
        self, browser: Client, cli: tuple[Application, str]
    ) -> None:
        code, verifier = self.code(browser, cli[0])
        first = exchange(cli[0], code, verifier)
        assert first.status_code == 200
        again = self.refused(exchange(cli[0], code, verifier))
        assert again == "The authorization code was already used."
        family = TokenFamily.objects.get()
        assert family.revoked_reason == "authorization code reused"
        reuse = AuditEvent.objects.get(action="reuse")
        assert reuse.reason == "an authorization code was presented again"
        assert reuse.credential_id == str(family.pk)
        assert call(Client(), first.json()["access_token"]).status_code == 401
        refresh = Client().post(
            "/auth/token",
            urlencode(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": first.json()["refresh_token"],
                    "client_id": cli[0].client_id,
                }
            ),
            content_type=FORM,
        )
        self.refused(refresh)

    def test_an_expired_code(self, browser: Client, cli: tuple[Application, str]) -> None:
        code, verifier = self.code(browser, cli[0])
        AuthorizationCode.objects.update(expires_at=timezone.now())
        assert self.refused(exchange(cli[0], code, verifier)) == (
            "The authorization code has expired."
        )

    def test_codes_live_a_minute(self, browser: Client, cli: tuple[Application, str]) -> None:
        self.code(browser, cli[0])
        code = AuthorizationCode.objects.get()
        assert code.expires_at - code.created_at == datetime.timedelta(seconds=60)
        assert len(code.code_hash) == 64

    def test_another_clients_code(self, browser: Client, cli: tuple[Application, str]) -> None:
        code, verifier = self.code(browser, cli[0])
        other, _ = make_app(name="Other")
        assert self.refused(exchange(other, code, verifier)) == self.INVALID
        assert exchange(cli[0], code, verifier).status_code == 200  # not spent by the attempt

    def test_another_redirect_uri(self, browser: Client, cli: tuple[Application, str]) -> None:
        code, verifier = self.code(browser, cli[0])
        uri = "http://127.0.0.1:8080/callback"
        assert self.refused(exchange(cli[0], code, verifier, redirect_uri=uri)) == (
            "The redirect_uri differs from the authorization's."
        )

    def test_an_unknown_code(self, cli: tuple[Application, str]) -> None:
        assert self.refused(exchange(cli[0], "nope", "x" * 43)) == self.INVALID

    def test_an_api_key_has_no_authorizations(self, client_key: Any) -> None:
        response = Client().post(
            "/auth/token",
            urlencode({"grant_type": "authorization_code", "code": "x"}),
            content_type=FORM,
            headers={"X-API-Key": client_key[1]},
        )
        self.refused(response, "unauthorized_client")

    def test_an_inactive_person(
        self, browser: Client, cli: tuple[Application, str], person: Any
    ) -> None:
        code, verifier = self.code(browser, cli[0])
        person.is_active = False
        person.save()
        assert self.refused(exchange(cli[0], code, verifier)) == "The user is inactive."


class TestClientAuthentication:
    @pytest.fixture
    def web(self) -> tuple[Application, str]:
        return make_app(name="Web", client_type="confidential", redirect_uris=[WEB])

    def flow(self, browser: Client, app: Application) -> tuple[str, str]:
        verifier, challenge = pkce()
        page = authorize(browser, app, challenge, redirect_uri=WEB)
        return answer(allow(browser, page))["code"], verifier

    def post(self, data: dict[str, str], **headers: str) -> Any:
        return Client().post("/auth/token", urlencode(data), content_type=FORM, headers=headers)

    def test_client_secret_basic(self, browser: Client, web: tuple[Application, str]) -> None:
        app, secret = web
        code, verifier = self.flow(browser, app)
        basic = base64.b64encode(f"{app.client_id}:{secret}".encode()).decode()
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": WEB,
            "code_verifier": verifier,
        }
        assert self.post(data, Authorization=f"Basic {basic}").status_code == 200

    def test_client_secret_post(self, browser: Client, web: tuple[Application, str]) -> None:
        app, secret = web
        code, verifier = self.flow(browser, app)
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": WEB,
            "code_verifier": verifier,
            "client_id": app.client_id,
            "client_secret": secret,
        }
        assert self.post(data).status_code == 200

    @pytest.mark.parametrize("how", ["wrong", "missing", "basic-wrong", "garbled"])
    def test_a_confidential_client_must_prove_itself(
        self, browser: Client, web: tuple[Application, str], how: str
    ) -> None:
        app, secret = web
        code, verifier = self.flow(browser, app)
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": WEB,
            "code_verifier": verifier,
            "client_id": app.client_id,
        }
        headers: dict[str, str] = {}
        if how == "wrong":
            data["client_secret"] = secret + "x"
        elif how == "basic-wrong":
            basic = base64.b64encode(f"{app.client_id}:nope".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        elif how == "garbled":
            headers["Authorization"] = "Basic %%%"
        response = self.post(data, **headers)
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"
        if how.startswith("basic") or how == "garbled":
            assert response["WWW-Authenticate"].startswith("Basic")
        assert self.post({**data, "client_secret": secret}).status_code == 200  # code unspent

    def test_a_public_client_sends_no_secret(self, cli: tuple[Application, str]) -> None:
        data = {
            "grant_type": "authorization_code",
            "code": "x",
            "client_id": cli[0].client_id,
            "client_secret": "anything",
        }
        response = self.post(data)
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"

    def test_a_rotated_secret_keeps_working_for_its_grace(
        self, browser: Client, web: tuple[Application, str]
    ) -> None:
        app, old = web
        new = Application.objects.rotate_secret(app, datetime.timedelta(hours=1))
        assert app.check_secret(old) and app.check_secret(new) and not app.check_secret("x")
        Application.objects.filter(pk=app.pk).update(previous_secret_expires_at=timezone.now())
        app.refresh_from_db()
        assert not app.check_secret(old) and app.check_secret(new)

    def test_client_credentials_for_a_confidential_app(self) -> None:
        app, secret = make_app(
            name="Batch", client_type="confidential", grant_types=["client_credentials"]
        )
        data = {
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": secret,
        }
        response = self.post(data)
        assert response.status_code == 200, response.content
        assert call(Client(), response.json()["access_token"]).status_code == 200
        public, _ = make_app(name="SPA")
        response = self.post({"grant_type": "client_credentials", "client_id": public.client_id})
        assert response.json()["error"] == "unauthorized_client"


class TestEndingIt:
    def test_the_person_revokes_an_app_on_their_page(
        self, browser: Client, cli: tuple[Application, str]
    ) -> None:
        body = signed_in(browser, cli[0])
        page = browser.get("/auth/authorizations")
        assert page.status_code == 200 and "Orders CLI" in page.content.decode()
        consent = Consent.objects.get()
        ended = browser.post("/auth/authorizations", {"consent": consent.pk})
        assert ended.status_code == 302
        assert call(Client(), body["access_token"]).status_code == 401
        consent.refresh_from_db()
        assert consent.revoked_at is not None
        assert "Orders CLI" not in browser.get("/auth/authorizations").content.decode()
        _verifier, challenge = pkce()
        assert authorize(browser, cli[0], challenge).status_code == 200  # asked again

    def test_another_persons_authorization_is_not_theirs_to_end(
        self, browser: Client, cli: tuple[Application, str]
    ) -> None:
        other = Client()
        other.force_login(make_user("sam"))
        body = signed_in(other, cli[0])
        consent = Consent.objects.get()
        browser.post("/auth/authorizations", {"consent": consent.pk})
        browser.post("/auth/authorizations", {"consent": "x"})
        assert call(Client(), body["access_token"]).status_code == 200

    def test_the_page_needs_a_sign_in(self) -> None:
        assert Client().get("/auth/authorizations").status_code == 302

    def test_sign_out_everywhere(
        self, browser: Client, cli: tuple[Application, str], person: Any
    ) -> None:
        first = signed_in(browser, cli[0])
        web, _ = make_app(name="Web", first_party=True)
        second = signed_in(browser, web)
        assert authorization.sign_out_everywhere(person) == 2
        assert call(Client(), first["access_token"]).status_code == 401
        assert call(Client(), second["access_token"]).status_code == 401
        assert not TokenFamily.objects.filter(revoked_at__isnull=True).exists()
        # Signing in again works, and asks nothing new.
        again = signed_in(browser, cli[0])
        assert call(Client(), again["access_token"]).status_code == 200

    def test_an_inactive_persons_tokens_stop(
        self, browser: Client, cli: tuple[Application, str], person: Any
    ) -> None:
        body = signed_in(browser, cli[0])
        person.is_active = False
        person.save()
        response = call(Client(), body["access_token"])
        assert response.status_code == 401 and response.json()["code"] == "owner_inactive"

    def test_a_revoked_app_ends_its_tokens(
        self, browser: Client, cli: tuple[Application, str]
    ) -> None:
        body = signed_in(browser, cli[0])
        cli[0].revoke()
        assert call(Client(), body["access_token"]).status_code == 401


class TestEndingOneAuthorization:
    """Ending what one person authorized one application ends that and nothing else."""

    def test_only_that_person_and_that_application(
        self, browser: Client, cli: tuple[Application, str], person: Any
    ) -> None:
        other = make_user("sam")
        other_browser = Client()
        other_browser.force_login(other)
        web, _ = make_app(name="Web")
        mine = signed_in(browser, cli[0])
        mine_elsewhere = signed_in(browser, web)
        theirs = signed_in(other_browser, cli[0])
        assert Consent.objects.count() == 3

        assert authorization.end_authorization(cli[0], person, reason="r" * 600) == 1

        ended = Consent.objects.get(user=person, application=cli[0])
        family = TokenFamily.objects.get(user=person, application=cli[0])
        assert ended.revoked_at is not None and family.revoked_at == ended.revoked_at
        assert family.revoked_reason == "r" * 500
        standing = Consent.objects.exclude(pk=ended.pk)
        assert standing.count() == 2 and not standing.filter(revoked_at__isnull=False).exists()
        others = TokenFamily.objects.exclude(pk=family.pk)
        assert others.count() == 2 and not others.filter(revoked_at__isnull=False).exists()
        assert call(Client(), mine["access_token"]).status_code == 401
        assert call(Client(), mine_elsewhere["access_token"]).status_code == 200
        assert call(Client(), theirs["access_token"]).status_code == 200

    def test_a_mark_the_store_cannot_take_is_logged(
        self, _redis: Any, cli: tuple[Application, str], person: Any, caplog: Any
    ) -> None:
        _redis.stop()
        with caplog.at_level("ERROR", logger="apiauth.authorization"):
            authorization.end_authorization(cli[0], person, reason="test")
        (message,) = [r.getMessage() for r in caplog.records if r.name == "apiauth.authorization"]
        said = (
            f"person {person.pk} signed out of {cli[0].lineage_id}; its mark waits for the store: "
        )
        assert message.startswith(said) and len(message) > len(said)  # and why


class TestTheExchangeAlone:
    """``exchange_code`` checks what the token endpoint checked before it: called on its own,
    it refuses alike, before any query."""

    def test_an_application_without_the_grant(self, django_assert_num_queries: Any) -> None:
        app, _secret = make_app(grant_types=["client_credentials"], client_type="confidential")
        with django_assert_num_queries(0), pytest.raises(GrantError) as caught:
            authorization.exchange_code(app, "code", CALLBACK, "v" * 43)
        assert (caught.value.error, caught.value.description) == (
            "unauthorized_client",
            "This client may not use this grant.",
        )

    @pytest.mark.parametrize("raw", ["", "c" * 201, "cödé"])
    def test_codes_that_cannot_be_one(
        self, cli: tuple[Application, str], raw: str, django_assert_num_queries: Any
    ) -> None:
        with django_assert_num_queries(0), pytest.raises(GrantError) as caught:
            authorization.exchange_code(cli[0], raw, CALLBACK, "v" * 43)
        assert (caught.value.error, caught.value.description) == (
            "invalid_grant",
            "The authorization code is invalid.",
        )

    def test_the_longest_code_is_looked_up(self, cli: tuple[Application, str]) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with (
            CaptureQueriesContext(connection) as queries,
            pytest.raises(GrantError, match="code is invalid"),
        ):
            authorization.exchange_code(cli[0], "c" * 200, CALLBACK, "v" * 43)
        assert any("code_hash" in query["sql"] for query in queries)


class TestLimits:
    def test_each_person_their_own_share(self, cli: tuple[Application, str]) -> None:
        tokens = []
        for name in ("ann", "bob"):
            browser = Client()
            browser.force_login(make_user(name))
            tokens.append(signed_in(browser, cli[0])["access_token"])
        person = {"rate": "1/hour", "burst": 2}
        from django.conf import settings

        with override_settings(APIAUTH={**settings.APIAUTH, "PERSON_LIMITS": person}):
            assert [call(Client(), tokens[0]).status_code for _ in range(3)] == [200, 200, 429]
            assert call(Client(), tokens[1]).status_code == 200


def test_the_metadata() -> None:
    for path in (
        "/.well-known/oauth-authorization-server",
        "/auth/.well-known/oauth-authorization-server",
    ):
        document = Client().get(path).json()
        assert document["issuer"] == ISS
        assert document["authorization_endpoint"] == "http://testserver/auth/authorize"
        assert document["token_endpoint"] == "http://testserver/auth/token"
        assert document["jwks_uri"] == "http://testserver/auth/.well-known/jwks.json"
        assert document["code_challenge_methods_supported"] == ["S256"]
        assert document["response_types_supported"] == ["code"]
        assert set(document["token_endpoint_auth_methods_supported"]) == {
            "client_secret_basic",
            "client_secret_post",
            "none",
        }
        assert document["authorization_response_iss_parameter_supported"] is True


def add_tenant(claims: dict[str, Any], *, client: Any, user: Any) -> dict[str, Any]:
    return {"tenant": "acme", "sub": "someone else", "scope": "everything"}


@override_settings()
def test_the_claims_hook_adds_and_never_overrides(
    browser: Client, cli: tuple[Application, str], person: Any
) -> None:
    import jwt
    from django.conf import settings

    hook = "tests.test_oauth_people.add_tenant"
    with override_settings(
        APIAUTH={**settings.APIAUTH, "JWT": {**settings.APIAUTH["JWT"], "CLAIMS_HOOK": hook}}
    ):
        body = signed_in(browser, cli[0])
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["tenant"] == "acme"
    assert claims["sub"] == str(person.pk) and claims["scope"] == "orders:read"


class TestAdmin:
    def test_registering_an_application_shows_its_secret_once(self, admin_client: Client) -> None:
        response = add_key(
            admin_client,
            "application",
            name="Web",
            client_type="confidential",
            redirect_uris="https://app.example/cb\nhttp://127.0.0.1/callback",
            grant_types=["authorization_code", "refresh_token"],
        )
        assert response.status_code == 200, response.content
        assert response["Cache-Control"] == "no-store"
        app = Application.objects.get()
        html = response.content.decode()
        assert app.client_id in html and "cs_" in html
        assert app.redirect_uris == ["https://app.example/cb", "http://127.0.0.1/callback"]
        assert app.secret_hash and "cs_" not in app.secret_hash
        assert AuditEvent.objects.filter(action="issue", credential_id=app.client_id).exists()

    def test_a_public_app_gets_no_secret(self, admin_client: Client) -> None:
        response = add_key(
            admin_client,
            "application",
            name="CLI",
            client_type="public",
            redirect_uris="http://127.0.0.1/callback",
            grant_types=["authorization_code"],
        )
        assert "has no secret" in response.content.decode()
        assert Application.objects.get().secret_hash == ""

    @pytest.mark.parametrize(
        ("data", "error"),
        [
            ({"redirect_uris": "javascript:alert(1)"}, "app's own scheme"),
            ({"redirect_uris": "http://app.example/cb"}, "only for loopback"),
            ({"redirect_uris": "https://app.example/cb#x"}, "no fragment"),
            ({"redirect_uris": ""}, "needs a redirect URI"),
            (
                {"client_type": "public", "grant_types": ["client_credentials"]},
                "cannot use client credentials",
            ),
        ],
    )
    def test_refused(self, admin_client: Client, data: dict[str, Any], error: str) -> None:
        payload = {
            "name": "App",
            "client_type": "confidential",
            "redirect_uris": "https://app.example/cb",
            "grant_types": ["authorization_code"],
            **data,
        }
        response = add_key(admin_client, "application", **payload)
        assert response.status_code == 200 and error in response.content.decode()
        assert not Application.objects.exists()

    def test_ending_authorizations_and_signing_out(
        self, admin_client: Client, browser: Client, cli: tuple[Application, str], person: Any
    ) -> None:
        body = signed_in(browser, cli[0])
        consent = Consent.objects.get()
        changelist = "/admin/apiauth/consent/"
        page = admin_client.get(changelist)
        assert page.status_code == 200 and "pat" in page.content.decode()
        admin_client.post(
            changelist, {"action": "sign_out_everywhere", "_selected_action": [consent.pk]}
        )
        assert call(Client(), body["access_token"]).status_code == 401
        assert AuditEvent.objects.filter(action="sign_out").count() == 1
        again = signed_in(browser, cli[0])  # the consent stands: no question asked
        admin_client.post(changelist, {"action": "end_selected", "_selected_action": [consent.pk]})
        assert call(Client(), again["access_token"]).status_code == 401
        consent.refresh_from_db()
        assert consent.revoked_at is not None


def test_a_reused_refresh_token_ends_the_persons_family(
    browser: Client, cli: tuple[Application, str]
) -> None:
    app = cli[0]
    body = signed_in(browser, app)

    def refresh(token: str) -> Any:
        data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": app.client_id}
        return Client().post("/auth/token", urlencode(data), content_type=FORM)

    first = refresh(body["refresh_token"])
    assert first.status_code == 200
    again = refresh(body["refresh_token"])  # spent: a thief's or a replay
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert call(Client(), first.json()["access_token"]).status_code == 401
    assert refresh(first.json()["refresh_token"]).json()["error"] == "invalid_grant"
    # Another application's client cannot use the person's refresh token either.
    other, _ = make_app(name="Other")
    data = {
        "grant_type": "refresh_token",
        "refresh_token": first.json()["refresh_token"],
        "client_id": other.client_id,
    }
    stolen = Client().post("/auth/token", urlencode(data), content_type=FORM)
    assert stolen.json()["error"] == "invalid_grant"


def test_an_applications_page_and_the_authorizations_list(
    admin_client: Client, browser: Client, cli: tuple[Application, str]
) -> None:
    app = cli[0]
    page = admin_client.get(f"/admin/apiauth/application/{app.pk}/change/").content.decode()
    assert 'class="fieldset-heading">Identity and lifecycle</h2>' in page
    assert app.client_id in page
    assert 'name="client_type"' not in page  # a secret is issued, or not, at creation
    assert page.count("Client type:") == 1  # shown once, read-only
    assert 'name="redirect_uris"' in page and "http://127.0.0.1/callback" in page
    signed_in(browser, app)
    consent = Consent.objects.get()
    assert admin_client.get("/admin/apiauth/consent/add/").status_code == 403
    assert admin_client.get(f"/admin/apiauth/consent/{consent.pk}/delete/").status_code == 403
    changelist = admin_client.get("/admin/apiauth/consent/").content.decode()
    assert "delete_selected" not in changelist


FUZZ_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80
) | st.sampled_from(
    ["REGISTERED", "http://[zz]/", "http://[::1", "%ZZ", "\x00", "https://a.example/cb#", CALLBACK]
)
AUTHORIZE_PARAMS = [*PARAMETERS, "allow", "deny"]  # the request's, and the consent's buttons


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    params=st.dictionaries(st.sampled_from(AUTHORIZE_PARAMS), FUZZ_TEXT),
    method=st.sampled_from(["get", "post"]),
)
def test_the_authorization_endpoint_survives_any_parameters(
    params: dict[str, str], method: str
) -> None:
    """Whatever the query or the form a signed-in person sends (the registered client's id
    among the noise): a page, a redirect, or a 4xx; never a 500."""
    app = Application.objects.filter(name="Fuzz").first() or make_app(name="Fuzz")[0]
    client = Client()
    client.force_login(User.objects.get_or_create(username="fuzz")[0])
    sent = {k: app.client_id if v == "REGISTERED" else v for k, v in params.items()}
    response = getattr(client, method)("/auth/authorize", sent)
    assert response.status_code in (200, 302, 400, 403, 405), response.status_code
