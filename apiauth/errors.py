"""RFC 9457 problem details for every error an API protected by apiauth returns.

Set ``REST_FRAMEWORK["EXCEPTION_HANDLER"] = "apiauth.errors.exception_handler"``. Django-level
errors outside DRF views (unknown URLs, oversized bodies, crashes) can use :func:`problem_view`
handlers so clients never parse an HTML page.
"""

from __future__ import annotations

import http
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.response import Response

from apiauth.conf import conf

PROBLEM_CONTENT_TYPE = "application/problem+json"


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class RateLimitServiceUnavailable(exceptions.APIException):
    """The rate-limit store is down and ``RATELIMIT_FAILURE_MODE`` is ``"closed"``."""

    status_code = 503
    default_detail = "Rate limiting is temporarily unavailable; try again shortly."
    default_code = "rate_limit_unavailable"

    def __init__(self) -> None:
        super().__init__()
        self.wait = conf.RATELIMIT_BREAKER_SECONDS


class ReplayCheckUnavailable(exceptions.APIException):
    """A signed unsafe request cannot be checked for replay: the store is down (fail closed)."""

    status_code = 503
    default_detail = "Signed writes cannot be checked for replay right now; try again shortly."
    default_code = "replay_check_unavailable"

    def __init__(self) -> None:
        super().__init__()
        self.wait = conf.RATELIMIT_BREAKER_SECONDS


class RevocationCheckUnavailable(exceptions.APIException):
    """Redis cannot say whether a token was revoked and ``REVOCATION_FAILURE_MODE`` is
    ``"closed"``."""

    status_code = 503
    default_detail = "Tokens cannot be checked for revocation right now; try again shortly."
    default_code = "revocation_check_unavailable"

    def __init__(self) -> None:
        super().__init__()
        self.wait = conf.RATELIMIT_BREAKER_SECONDS


class IssuerKeysUnavailable(exceptions.APIException):
    """An identity provider's keys could not be fetched yet: the token cannot be judged."""

    status_code = 503
    default_detail = "The token issuer's keys are unavailable; try again shortly."
    default_code = "issuer_keys_unavailable"


class CostExceedsLimit(exceptions.APIException):
    """429 for a request costing more than a limit can ever hold.

    No ``Retry-After``: waiting never helps. System checks refuse such costs against the plans,
    anonymous limits and scope rates (``apiauth.E009``, ``E011``); a key's own overrides may
    legitimately hold less than a write costs (a read-only key), and this is the answer then.
    """

    status_code = 429
    default_code = "cost_exceeds_limit"

    def __init__(self, limit_name: str, capacity: int, cost: int) -> None:
        detail = _(
            "This request costs %(cost)d units, more than the “%(limit)s” limit ever holds "
            "(%(capacity)d): it can never be admitted."
        ) % {"cost": cost, "limit": limit_name, "capacity": capacity}
        super().__init__(detail=detail, code=self.default_code)
        self.problem_extra = {"limit": {"name": limit_name, "quota": capacity}, "cost": cost}


class TooManyFailures(exceptions.Throttled):
    """429 for a client address locked out after repeated failed authentications."""

    default_code = "too_many_failures"

    def __init__(self, wait: float) -> None:
        super().__init__(
            wait=wait,
            detail=_("Too many failed authentication attempts from your address."),
            code=self.default_code,
        )


class InsufficientScope(exceptions.PermissionDenied):
    """403 carrying an RFC 6750 §3 ``insufficient_scope`` challenge."""

    default_code = "insufficient_scope"

    def __init__(self, scopes: list[str], challenge: str) -> None:
        detail = _("This credential lacks the scope(s): %(scopes)s.") % {
            "scopes": ", ".join(scopes)
        }
        super().__init__(detail=detail, code=self.default_code)
        self.scopes = scopes
        # RFC 7235 §2.1: "scheme param, param"; a bare scheme takes its first param after a
        # space, not a comma ("Bearer, error=..." is malformed).
        scheme, _sep, params = challenge.strip().partition(" ")
        extra = f'error="insufficient_scope", scope="{" ".join(scopes)}"'
        self.auth_header = (
            f"{scheme} {params.strip()}, {extra}" if params.strip() else f"{scheme} {extra}"
        )


class AuthenticationFailed(exceptions.AuthenticationFailed):
    """401 whose challenge names the scheme that failed, not merely the first one configured."""

    def __init__(self, detail: str, code: str, challenge: str | None = None) -> None:
        super().__init__(detail=detail, code=code)
        self.challenge = challenge


def every_challenge(request: Any, first: str) -> str:
    """``first`` (the scheme that failed, or DRF's first class), then a challenge for every
    other scheme the view accepts (RFC 9110 §11.6.1): a client learns every way in."""
    challenges, schemes = [first], {first.split(" ", 1)[0].lower()}
    for authenticator in getattr(request, "authenticators", None) or ():
        header = getattr(authenticator, "authenticate_header", None)
        challenge = header(request) if header is not None else None
        if challenge and challenge.split(" ", 1)[0].lower() not in schemes:
            schemes.add(challenge.split(" ", 1)[0].lower())
            challenges.append(challenge)
    return ", ".join(challenges)


UNCLAIMED_BEARER_ATTR = "_apiauth_unclaimed_bearer"


def unclaimed_bearer(request: Any) -> bool:
    """A bearer value that :class:`~apiauth.authentication.JWTAuthentication` saw and left
    (neither one of our keys nor shaped like a JWT): the client sent a token, malformed, not
    no credentials."""
    django_request = getattr(request, "_request", request)
    return bool(getattr(django_request, UNCLAIMED_BEARER_ATTR, False))


def malformed_bearer() -> AuthenticationFailed:
    """RFC 6750 §3.1: ``invalid_token`` for a bearer value that is no token of ours."""
    text = "The bearer token is malformed."  # the challenge is ASCII, never translated
    return AuthenticationFailed(
        _("The bearer token is malformed."),
        code="invalid_token",
        challenge=f'Bearer realm="{conf.REALM}", error="invalid_token", error_description="{text}"',
    )


def problem(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    try:
        title = http.HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": f"{conf.PROBLEM_TYPE_BASE}{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return body


def _field_errors(detail: Any, pointer: str = "#") -> list[dict[str, str]]:
    """Flatten DRF's nested validation errors into RFC 9457 §3 style ``errors`` members."""
    if isinstance(detail, dict):
        return [
            item
            for key, value in detail.items()
            for item in _field_errors(
                value, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            )
        ]
    if isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail) for item in detail):
            return [
                {"pointer": pointer, "detail": str(item), "code": str(item.code)} for item in detail
            ]
        return [
            item
            for index, value in enumerate(detail)
            for item in _field_errors(value, f"{pointer}/{index}")
        ]
    code = getattr(detail, "code", "invalid")
    return [{"pointer": pointer, "detail": str(detail), "code": str(code)}]


def _convert(exc: Exception) -> exceptions.APIException | None:
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, TooManyFieldsSent):
        return exceptions.ParseError(_("Too many fields."))
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler rendering ``application/problem+json``.

    Unknown exceptions return ``None`` so DRF re-raises them to Django's 500 handling (and the
    error tracker); nothing here turns a bug into a silent 4xx.
    """
    api_exc = _convert(exc)
    if api_exc is None:
        return None

    headers: dict[str, str] = {}
    request = context.get("request")
    if isinstance(api_exc, exceptions.NotAuthenticated) and unclaimed_bearer(request):
        api_exc = malformed_bearer()
    challenge = getattr(api_exc, "challenge", None) or getattr(api_exc, "auth_header", None)
    if challenge and api_exc.status_code == 401 and request is not None:
        challenge = every_challenge(request, challenge)
    if challenge:
        headers["WWW-Authenticate"] = challenge
    headers.update(getattr(api_exc, "extra_headers", {}))
    wait = getattr(api_exc, "wait", None)
    if wait is not None:
        # Rounded up: a client that waits exactly this long is admitted.
        headers["Retry-After"] = str(max(1, math.ceil(wait)))

    status = api_exc.status_code
    if isinstance(api_exc, exceptions.ValidationError):
        body = problem(
            status,
            "invalid",
            _("The request is invalid: see errors."),
            errors=_field_errors(api_exc.detail),
        )
    else:
        detail = api_exc.detail
        if isinstance(detail, (list, dict)):
            body = problem(
                status,
                api_exc.default_code,
                str(api_exc.default_detail),
                errors=_field_errors(detail),
            )
        else:
            code = getattr(detail, "code", None) or api_exc.default_code
            body = problem(status, str(code), str(detail))
    if wait is not None:
        body["retry_after"] = int(headers["Retry-After"])
    request = context.get("request")
    if isinstance(api_exc, exceptions.Throttled):
        body.update(_limit_details(request))
    body.update(getattr(api_exc, "problem_extra", {}))
    request_id = getattr(request, "request_id", None)
    if request_id:
        body["request_id"] = request_id

    # Imported here: rest_framework.views imports the authentication classes, which import us.
    from rest_framework.views import set_rollback

    set_rollback()
    return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def _limit_details(request: Any) -> dict[str, Any]:
    """Which limit refused the request, from the decision the throttle left on it."""
    outcome = getattr(getattr(request, "_request", request), "apiauth_ratelimit", None)
    blocking = outcome.decision.blocking if outcome and outcome.decision else None
    if blocking is None:
        return {}
    limit = blocking.limit
    return {"limit": {"name": limit.name, "quota": limit.capacity, "window": limit.policy_window}}


def problem_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JsonResponse:
    """A problem+json response outside DRF (middleware, Django error handlers)."""
    response = JsonResponse(
        problem(status, code, detail, **extra), status=status, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(400, "bad_request", _("The request could not be understood."))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(403, "permission_denied", _("You may not do this."))


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """``CSRF_FAILURE_VIEW``: a session-authenticated write without its CSRF token."""
    return problem_response(
        403, "csrf_failed", _("CSRF verification failed: reload the page and try again.")
    )


def method_not_allowed(request: HttpRequest, allowed: list[str]) -> JsonResponse:
    return problem_response(
        405,
        "method_not_allowed",
        _("Method “%(method)s” not allowed.") % {"method": (request.method or "")[:20]},
        headers={"Allow": ", ".join(allowed)},
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(404, "not_found", _("No such resource."))


def server_error(request: HttpRequest) -> JsonResponse:
    """500 with the request id, so a client's report finds the logged traceback."""
    request_id = getattr(request, "request_id", None)
    extra = {"request_id": request_id} if request_id else {}
    return problem_response(500, "server_error", _("An unexpected error occurred."), **extra)
