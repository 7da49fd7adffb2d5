"""``GET /authorize``: the authorization code grant (RFC 6749 §4.1) as OAuth 2.1 and RFC 9700
profile it: ``response_type=code`` only, PKCE with ``S256`` required, redirect URIs matched
exactly (a loopback redirect's port aside, RFC 8252), ``state`` carried back, and the ``iss``
response parameter (RFC 9207).

A person signs in with Django's own login (``settings.LOGIN_URL``), then allows or denies on a
consent page that names the application and the scopes. First-party applications, and a
standing consent that covers the scopes, skip the page. Errors found before the client and its
redirect URI are known are shown here, never redirected (RFC 6749 §4.1.2.1); the others go back
to the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.clickjacking import xframe_options_deny

from apiauth import audit, authorization
from apiauth.conf import conf
from apiauth.models import Application
from apiauth.net import get_client_ip
from apiauth.scopes import missing_scopes
from apiauth.tokens import local_issuer

PARAMETERS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
MAX_STATE = 500


class Shown(Exception):
    """An error shown to the person: the client or its redirect URI cannot be trusted."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class Redirected(Exception):
    """An error sent back to the client at its redirect URI (RFC 6749 §4.1.2.1)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class AuthorizationRequest:
    app: Application
    redirect_uri: str
    scopes: list[str]
    state: str | None
    challenge: str


@method_decorator(xframe_options_deny, name="dispatch")
class AuthorizeView(View):
    template_name = "apiauth/authorize.html"
    error_template_name = "apiauth/authorize_error.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.authorize(request, request.GET, decision=None)

    def post(self, request: HttpRequest) -> HttpResponse:
        """The consent page's answer (a form with Django's CSRF protection)."""
        decision = "allow" if "allow" in request.POST else "deny"
        return self.authorize(request, request.POST, decision=decision)

    def authorize(
        self, request: HttpRequest, params: QueryDict, decision: str | None
    ) -> HttpResponse:
        try:
            app, redirect_uri = self.client(params)
        except Shown as exc:
            return self.show_error(request, exc.description)
        state = self.one(params, "state")
        try:
            parsed = self.parse(params, app, redirect_uri, state)
        except Redirected as exc:
            return self.back(
                redirect_uri, {"error": exc.error, "error_description": exc.description}, state
            )
        user = request.user
        if not user.is_authenticated:
            if decision is not None:
                return self.show_error(request, _("Sign in first."), status=403)
            return redirect_to_login(request.get_full_path())
        if decision == "deny":
            return self.back(
                redirect_uri,
                {"error": "access_denied", "error_description": _("The user said no.")},
                state,
            )
        if decision == "allow":
            authorization.record_consent(app, user, parsed.scopes)
            audit.record(
                "consent", app, actor=user, client_ip=get_client_ip(request), scopes=parsed.scopes
            )
        elif not authorization.consented(app, user, parsed.scopes):
            return self.consent_page(request, parsed)
        code = authorization.issue_code(app, user, redirect_uri, parsed.scopes, parsed.challenge)
        return self.back(redirect_uri, {"code": code}, state)

    def one(self, params: QueryDict, name: str) -> str | None:
        values = params.getlist(name)
        if len(values) > 1:
            raise Redirected("invalid_request", _("A parameter was sent more than once."))
        return values[0] if values and values[0] != "" else None

    def client(self, params: QueryDict) -> tuple[Application, str]:
        """The application and its redirect URI, or :class:`Shown`: nothing is redirected to
        a URI the application has not registered."""
        client_ids, uris = params.getlist("client_id"), params.getlist("redirect_uri")
        if len(client_ids) != 1 or len(uris) > 1:
            raise Shown(_("The request names no application, or more than one."))
        app = Application.objects.get_by_client_id(client_ids[0])
        if app is None or app.status != "active":
            raise Shown(_("This application is unknown or no longer authorized."))
        if not uris:
            raise Shown(_("The request names no redirect_uri."))
        if not app.redirect_uri_allowed(uris[0]):
            raise Shown(_("This redirect_uri is not registered for the application."))
        return app, uris[0]

    def parse(
        self, params: QueryDict, app: Application, redirect_uri: str, state: str | None
    ) -> AuthorizationRequest:
        for name in PARAMETERS:
            self.one(params, name)  # each at most once
        if state is not None and (len(state) > MAX_STATE or not state.isprintable()):
            raise Redirected("invalid_request", _("The state is too long."))
        if self.one(params, "response_type") != "code":
            raise Redirected(
                "unsupported_response_type", _("Only response_type=code is supported.")
            )
        if not app.allows("authorization_code"):
            raise Redirected("unauthorized_client", _("This client may not use this grant."))
        method = self.one(params, "code_challenge_method")
        challenge = self.one(params, "code_challenge")
        if challenge is None or method != "S256":
            raise Redirected(
                "invalid_request", _("PKCE is required: send a code_challenge with method S256.")
            )
        if not authorization.CHALLENGE_RE.fullmatch(challenge):
            raise Redirected("invalid_request", _("The code_challenge is malformed."))
        return AuthorizationRequest(app, redirect_uri, self.scopes(params, app), state, challenge)

    def scopes(self, params: QueryDict, app: Application) -> list[str]:
        value = self.one(params, "scope")
        if value is None:
            return sorted(app.scopes)
        asked = value.split(" ")
        if len(value) > 2000 or any(not scope or not scope.isprintable() for scope in asked):
            raise Redirected("invalid_scope", _("The scope parameter is malformed."))
        if missing_scopes(asked, app.scopes):
            raise Redirected("invalid_scope", _("The application may not ask for these scopes."))
        return sorted(set(asked))

    def back(self, redirect_uri: str, params: dict[str, str], state: str | None) -> HttpResponse:
        """Redirect to the client with ``params``, ``state`` and ``iss`` (RFC 9207)."""
        answer = dict(params)
        if state is not None:
            answer["state"] = state
        answer["iss"] = local_issuer().iss
        parts = urlsplit(redirect_uri)
        query = "&".join(q for q in (parts.query, urlencode(answer)) if q)
        response = HttpResponseRedirect(urlunsplit(parts._replace(query=query)))
        response.allowed_schemes = [parts.scheme]  # an app's own scheme is a redirect too
        add_never_cache_headers(response)
        response["Referrer-Policy"] = "no-referrer"
        return response

    def consent_page(self, request: HttpRequest, parsed: AuthorizationRequest) -> HttpResponse:
        registry = conf.SCOPES
        context = {
            "app": parsed.app,
            "scopes": [(scope, registry.get(scope, "")) for scope in parsed.scopes],
            "params": [
                (name, value)
                for name in PARAMETERS
                if (value := request.GET.get(name)) not in (None, "")
            ],
            "action": request.path,
        }
        response = render(request, self.template_name, context)
        add_never_cache_headers(response)
        return response

    def show_error(self, request: HttpRequest, description: str, status: int = 400) -> HttpResponse:
        response = render(
            request, self.error_template_name, {"description": description}, status=status
        )
        add_never_cache_headers(response)
        return response
