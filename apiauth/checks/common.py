"""Helpers the checks share: how DRF is configured, and small value tests."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from apiauth.throttling.rates import InvalidLimit, Limit, parse_limits


def user_settings() -> dict[str, Any] | None:
    """``settings.APIAUTH`` when it is a dict (``apiauth.E001`` reports it otherwise)."""
    user = getattr(settings, "APIAUTH", {})
    return user if isinstance(user, dict) else None


def whole(value: Any, low: int, high: int) -> bool:
    """A whole number (not a bool, not a float) from ``low`` to ``high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def limits_of(spec: Any, name: str = "burst") -> tuple[Limit, ...]:
    try:
        return parse_limits(spec, name=name) if spec else ()
    except InvalidLimit:
        return ()  # reported by the limit checks


def throttle_in_use() -> bool:
    """Whether DRF's default throttles include ours (or a subclass of it)."""
    from apiauth.throttling import TokenBucketThrottle  # not at import: DRF's settings

    return any(
        issubclass(cls, TokenBucketThrottle) for cls in default_classes("DEFAULT_THROTTLE_CLASSES")
    )


def default_classes(setting: str) -> list[type]:
    """The classes DRF's ``setting`` names, imported (paths that do not import are left to
    DRF's own error)."""
    rest = getattr(settings, "REST_FRAMEWORK", {}) or {}
    found = []
    for path in rest.get(setting, []):
        try:
            cls = import_string(path) if isinstance(path, str) else path
        except ImportError:
            continue
        if isinstance(cls, type):
            found.append(cls)
    return found


def scheme_enabled(name: str) -> bool:
    """Whether DRF's default authentication classes include ``apiauth.authentication.<name>``
    or a subclass of it."""
    from apiauth import authentication  # not at import: DRF's settings import it

    scheme = getattr(authentication, name)
    return any(issubclass(cls, scheme) for cls in default_classes("DEFAULT_AUTHENTICATION_CLASSES"))
