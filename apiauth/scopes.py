"""Scope strings: validation and matching, shared by every credential kind.

A scope is ``resource:action`` style text such as ``orders:read``; a granted scope ending in
``:*`` covers everything below it (``orders:*`` covers ``orders:read`` and
``orders:refunds:write``), and a granted ``*`` covers everything. Required scopes are concrete.

With a registry (``APIAUTH["SCOPES"] = {"orders:read": "Read orders", ...}``), a credential may
only be given registered scopes, or wildcards covering at least one of them, so a typo cannot
issue a useless credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from apiauth.conf import conf

SCOPE_RE = re.compile(r"[a-z0-9][a-z0-9_.-]*(?::[a-z0-9_.-]+)*(?::\*)?|\*")
MAX_SCOPE_LENGTH = 100


def validate_scope(scope: str) -> None:
    if len(scope) > MAX_SCOPE_LENGTH or not SCOPE_RE.fullmatch(scope):
        raise ValidationError(
            _(
                "“%(scope)s” is not a valid scope: use lowercase words joined by colons, "
                "such as orders:read, optionally ending in :* as a wildcard."
            )
            % {"scope": scope[:MAX_SCOPE_LENGTH]},
            code="invalid_scope",
        )


def parse_scopes(value: str | Iterable[str]) -> list[str]:
    """Split comma or whitespace separated text (or clean a list), validate, dedupe, sort.

    With a scope registry, unregistered scopes are refused too.
    """
    items = re.split(r"[\s,]+", value) if isinstance(value, str) else list(value)
    scopes = sorted({item.strip() for item in items if item and item.strip()})
    for scope in scopes:
        validate_scope(scope)
    registry = conf.SCOPES
    unknown = unregistered(scopes, registry) if registry else []
    if unknown:
        raise ValidationError(
            _("Unknown scope(s): %(scopes)s. Choose among those in APIAUTH['SCOPES'].")
            % {"scopes": ", ".join(unknown)},
            code="unknown_scope",
        )
    return scopes


def unregistered(scopes: Iterable[str], registry: Iterable[str]) -> list[str]:
    """The scopes that are not in the registry; a wildcard counts when it covers one that is."""
    known = tuple(registry)
    return [
        scope
        for scope in scopes
        if scope not in known
        and not (scope.endswith("*") and any(scope_granted(k, [scope]) for k in known))
    ]


def scope_granted(required: str, granted: Iterable[str]) -> bool:
    for scope in granted:
        if scope == required or scope == "*":
            return True
        if scope.endswith(":*") and required.startswith(scope[:-1]):
            return True
    return False


def missing_scopes(required: Iterable[str], granted: Iterable[str]) -> list[str]:
    granted = tuple(granted)
    return [scope for scope in required if not scope_granted(scope, granted)]


def granted_scopes(requested: Iterable[str], granted: Iterable[str]) -> list[str]:
    """Those of ``requested`` that ``granted`` still grants (a token of an edited key)."""
    granted = tuple(granted)
    return [scope for scope in requested if scope_granted(scope, granted)]
