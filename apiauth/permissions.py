from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apiauth.credentials import Credential
from apiauth.errors import InsufficientScope
from apiauth.scopes import missing_scopes
from apiauth.throttling import TokenBucketThrottle
from apiauth.throttling.throttle import request_method


def scopes_required(declared: Any, method: str) -> list[str] | None:
    """The scopes a view's ``required_scopes`` asks of ``method``, or ``None`` for a method a
    dict does not cover (see :class:`HasScopes`)."""
    if not isinstance(declared, Mapping):
        return list(declared)
    for candidate in (method, "GET" if method == "HEAD" else None, "*"):
        if candidate is not None and candidate in declared:
            return list(declared[candidate])
    return None


class HasScopes(BasePermission):
    """Require the scopes a view declares in ``required_scopes``.

    ``required_scopes`` is a list (every method) or a dict keyed by HTTP method; ``HEAD`` falls
    back to ``GET`` and ``"*"`` to any method not listed. A method a dict does not cover is
    refused: forgetting a method must not open it. Works with any :class:`Credential`.
    """

    def run_throttles(self, request: Request, view: Any) -> None:
        """Run apiauth's throttles now, before deciding: DRF would run them after permissions,
        so refused requests would be free and carry no rate-limit headers. The throttle
        remembers its decision on the request, so DRF's own pass does not debit again."""
        for throttle in view.get_throttles() if hasattr(view, "get_throttles") else ():
            if isinstance(throttle, TokenBucketThrottle) and not throttle.allow_request(
                request, view
            ):
                view.throttled(request, throttle.wait())  # pragma: no mutate (DRF ignores it)

    def get_required_scopes(self, request: Request, view: Any) -> Sequence[str] | None:
        """The scopes this request needs, or ``None`` for a method the view does not cover."""
        method = request_method(request) or "GET"  # pragma: no mutate (a request always has one)
        return scopes_required(getattr(view, "required_scopes", ()), method)

    def has_permission(self, request: Request, view: Any) -> bool:
        self.run_throttles(request, view)
        required = self.get_required_scopes(request, view)
        if required is None:
            return False
        if not required:
            return True
        credential = request.auth
        if not isinstance(credential, Credential):
            # DRF answers 401 to an anonymous request, 403 to an authenticated one.
            return False
        missing = missing_scopes(required, credential.scopes)
        if missing:
            header = getattr(request.successful_authenticator, "authenticate_header", None)
            challenge = header(request) if header is not None else None
            raise InsufficientScope(missing, challenge or "Bearer")
        return True
