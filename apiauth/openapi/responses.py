"""What apiauth answers on every operation, besides the view's own responses."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import permissions

from apiauth.openapi.schemes import scopes_of
from apiauth.throttling import TokenBucketThrottle

PROBLEM = "application/problem+json"

# The responses apiauth adds to every operation -------------------------------------------

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "example": "urn:apiauth:problem:not_authenticated"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "A stable machine-readable reason."},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": "string"},
                    "detail": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
        "retry_after": {"type": "integer"},
        "error": {"type": "string", "description": "RFC 6749 §5.2 error (OAuth endpoints)."},
        "error_description": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail", "code"],
}

RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": ("integer", "The capacity of the tightest limit."),
    "X-RateLimit-Remaining": ("integer", "Units left in the tightest limit."),
    "X-RateLimit-Reset": ("integer", "Unix time at which the tightest limit is whole again."),
    "RateLimit-Policy": ("string", "Every limit: quota `q` per window `w` seconds."),
    "RateLimit": ("string", "Every limit: `r` units left, `t` seconds until whole."),
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema of a view, plus the answers apiauth gives on it."""

    def get_operation(self, *args: Any, **kwargs: Any) -> Any:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        scopes = scopes_of(self)
        if scopes:
            operation["x-required-scopes"] = scopes
            line = "Requires the scopes: " + ", ".join(f"`{s}`" for s in scopes) + "."
            operation["description"] = "\n\n".join(
                part for part in (operation.get("description"), line) if part
            )
        self.add_apiauth_responses(operation)
        return operation

    # Hooks -------------------------------------------------------------------------------

    def is_authenticated(self) -> bool:
        perms = [p.__class__ for p in self.view.get_permissions()]
        return bool(self.view.get_authenticators()) and permissions.AllowAny not in perms

    def is_throttled(self) -> bool:
        return any(isinstance(t, TokenBucketThrottle) for t in self.view.get_throttles())

    def may_not_find(self) -> bool:
        """A path with parameters, or a paginated list (an invalid page), may answer 404."""
        paginated = self.method == "GET" and getattr(self.view, "pagination_class", None)
        return bool(re.search(r"{[^}]+}", self.path) or paginated)

    def add_apiauth_responses(self, operation: dict[str, Any]) -> None:
        responses: dict[str, Any] = operation.setdefault("responses", {})
        throttled = self.is_throttled()
        if throttled:
            for code, response in responses.items():
                if str(code).startswith("2"):
                    response.setdefault("headers", {}).update(self.rate_limit_headers())
        add = self.problem_response
        if "requestBody" in operation:
            add(responses, 400, "The request is malformed or invalid (see `errors`).")
            add(responses, 413, "The body is larger than the parser accepts.")
            add(responses, 415, "The body's media type is not one this operation reads.")
        if self.is_authenticated():
            challenge = {
                "WWW-Authenticate": {
                    "schema": {"type": "string"},
                    "description": "A challenge for every scheme the operation accepts.",
                }
            }
            add(responses, 401, "Not authenticated, or the credentials are refused.", challenge)
            add(
                responses,
                403,
                "Authenticated, but a scope is missing or the address is not allowed.",
            )
        if self.may_not_find():
            add(responses, 404, "Not found.")
        if throttled or self.is_authenticated():
            retry = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
            }
            add(
                responses,
                429,
                "A rate limit, or the address's failed-authentication lockout.",
                {**retry, **(self.rate_limit_headers() if throttled else {})},
            )

    def problem_response(
        self,
        responses: dict[str, Any],
        status: int,
        description: str,
        headers: dict[str, Any] | None = None,
    ) -> None:
        if str(status) in responses:
            return
        response: dict[str, Any] = {
            "description": description,
            "content": {PROBLEM: {"schema": self.problem_component().ref}},
        }
        if headers:
            response["headers"] = headers
        responses[str(status)] = response

    def problem_component(self) -> ResolvedComponent:
        component = ResolvedComponent(
            name="Problem", type=ResolvedComponent.SCHEMA, object="Problem", schema=PROBLEM_SCHEMA
        )
        self.registry.register_on_missing(component)
        return component

    def rate_limit_headers(self) -> dict[str, Any]:
        headers = {}
        for name, (kind, text) in RATE_LIMIT_HEADERS.items():
            component = ResolvedComponent(
                name=name,
                type=ResolvedComponent.HEADER,
                object=name,
                schema={"schema": {"type": kind}, "description": text},
            )
            self.registry.register_on_missing(component)
            headers[name] = component.ref
        return headers
