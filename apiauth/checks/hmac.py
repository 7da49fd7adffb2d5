"""Checks of ``APIAUTH["HMAC"]`` (SigV4 request signing)."""

from __future__ import annotations

import re
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register

from apiauth.checks.common import user_settings
from apiauth.conf import HMAC_DEFAULTS


@register(Tags.security)
def check_hmac(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    user = user_settings()
    return [] if user is None else hmac_settings(user.get("HMAC") or {})


def hmac_settings(value: Any) -> list[CheckMessage]:
    def error(message: str, hint: str) -> list[CheckMessage]:
        return [Error(f"APIAUTH['HMAC']: {message}", hint=hint, id="apiauth.E019")]

    if not isinstance(value, dict):
        return error("must be a dict.", "See the HMAC section of the settings reference.")
    unknown = sorted(set(value) - set(HMAC_DEFAULTS))
    if unknown:
        return error(
            f"unknown key(s) {', '.join(map(str, unknown))}.",
            f"Known keys: {', '.join(sorted(HMAC_DEFAULTS))}.",
        )
    merged = {**HMAC_DEFAULTS, **value}
    scope_part = re.compile(r"[a-z0-9][a-z0-9-]{0,63}", re.ASCII)
    name = re.compile(r"[A-Z0-9][A-Z0-9-]{1,31}", re.ASCII)
    regions = merged["REGIONS"]
    if not isinstance(merged["SERVICE"], str) or not scope_part.fullmatch(merged["SERVICE"]):
        return error(
            "SERVICE must be lowercase letters, digits and '-'.", "The default: 'apiauth'."
        )
    if (
        not isinstance(regions, (list, tuple))
        or not regions
        or not all(isinstance(r, str) and scope_part.fullmatch(r) for r in regions)
    ):
        return error("REGIONS must list lowercase region names.", "The default: ['global'].")
    if not isinstance(merged["ALGORITHM"], str) or not name.fullmatch(merged["ALGORITHM"]):
        return error("ALGORITHM must be uppercase letters, digits and '-'.", "'AWS4-HMAC-SHA256'")
    if not isinstance(merged["SECRET_PREFIX"], str) or not name.fullmatch(merged["SECRET_PREFIX"]):
        return error("SECRET_PREFIX must be uppercase letters, digits and '-'.", "'AWS4'")
    prefix = merged["HEADER_PREFIX"]
    if not isinstance(prefix, str) or not re.fullmatch(r"X-[A-Za-z0-9]{1,16}-", prefix):
        return error("HEADER_PREFIX must read like 'X-Amz-'.", "For example 'X-Acme-'.")
    bounds = {
        "MAX_CLOCK_SKEW": (1, 900),
        "MAX_BODY_SIZE": (0, 1 << 31),
        "MAX_HEADER_SIZE": (256, 65536),
        "PRESIGNED_MAX_EXPIRES": (1, 604_800),
        "ROTATION_GRACE": (0, 30 * 86_400),
    }
    for key, (low, high) in bounds.items():
        number = merged[key]
        if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
            return error(
                f"{key} must be a whole number from {low} to {high}.",
                "MAX_CLOCK_SKEW is seconds either way of the server's clock (SigV4 uses 300, "
                "15 minutes at most); PRESIGNED_MAX_EXPIRES at most 7 days, as AWS.",
            )
    return []
