"""Checks of ``APIAUTH["JWT"]``: its values, and each trusted issuer."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.utils.module_loading import import_string

from apiauth import issuers, jose
from apiauth.checks.common import user_settings
from apiauth.conf import JWT_DEFAULTS


@register(Tags.security)
def check_jwt(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    user = user_settings()
    return [] if user is None else jwt_settings(user.get("JWT") or {})


def jwt_settings(value: Any) -> list[CheckMessage]:
    def error(message: str, hint: str, id: str = "apiauth.E020") -> list[CheckMessage]:
        return [Error(f"APIAUTH['JWT']: {message}", hint=hint, id=id)]

    if not isinstance(value, dict):
        return error("must be a dict.", "See the JWT section of the settings reference.")
    unknown = sorted(set(value) - set(JWT_DEFAULTS))
    if unknown:
        return error(
            f"unknown key(s) {', '.join(map(str, unknown))}.",
            f"Known keys: {', '.join(sorted(JWT_DEFAULTS))}.",
        )
    merged = {**JWT_DEFAULTS, **value}
    bounds = {
        "LEEWAY": (0, 300),
        "MAX_TOKEN_LENGTH": (512, 65_536),
        "MAX_TOKEN_LIFETIME": (60, 30 * 86_400),
        "ACCESS_TOKEN_LIFETIME": (30, 86_400),
        "KEY_RING_TTL": (0, 3600),
        "JWKS_MAX_AGE": (0, 86_400),
        "REFRESH_TOKEN_LIFETIME": (60, 365 * 86_400),
        "REFRESH_FAMILY_LIFETIME": (60, 365 * 86_400),
        "JWKS_MIN_CACHE": (0, 86_400),
        "JWKS_MAX_CACHE": (60, 7 * 86_400),
        "JWKS_REFRESH_INTERVAL": (1, 3600),
        "JWKS_MAX_BYTES": (1024, 10 * 1024 * 1024),
        "VERIFIED_CACHE_SIZE": (0, 1_000_000),
        "AUTHORIZATION_CODE_LIFETIME": (10, 600),
    }
    counts = {"MAX_TOKEN_LENGTH", "JWKS_MAX_BYTES", "VERIFIED_CACHE_SIZE"}
    for key, (low, high) in bounds.items():
        number = merged[key]
        if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
            unit = "See the settings reference." if key in counts else "In seconds."
            return error(f"{key} must be a whole number from {low} to {high}.", unit)
    if merged["ACCESS_TOKEN_LIFETIME"] > merged["MAX_TOKEN_LIFETIME"]:
        return error(
            "ACCESS_TOKEN_LIFETIME exceeds MAX_TOKEN_LIFETIME.",
            "Our own tokens would be refused: raise MAX_TOKEN_LIFETIME or shorten them.",
            id="apiauth.E032",
        )
    if merged["SIGNING_ALGORITHM"] not in jose.SIGNING_ALGORITHMS:
        return error(
            "SIGNING_ALGORITHM must be one of " + ", ".join(jose.SIGNING_ALGORITHMS) + ".",
            "ES256 is the default: small tokens, fast to verify.",
        )
    if merged["RSA_KEY_SIZE"] not in (2048, 3072):
        return error("RSA_KEY_SIZE must be 2048 or 3072.", "2048 is the default.")
    if merged["REVOCATION_FAILURE_MODE"] not in ("database", "open", "closed"):
        return error(
            "REVOCATION_FAILURE_MODE must be 'database', 'open' or 'closed'.",
            "'database' (the default) asks the database, the source of truth of revocations.",
        )
    hook = merged["CLAIMS_HOOK"]
    if hook is not None and not _callable_at(hook):
        return error(
            f"CLAIMS_HOOK {hook!r} does not name a function.",
            "A dotted path such as 'myproject.tokens.add_claims'; the function takes "
            "(claims, *, client, user) and returns the claims to add.",
        )
    entries = merged["ISSUERS"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return error("ISSUERS must be a list of dicts.", "See the settings reference.")
    return issuer_entries(entries)


def issuer_entries(entries: list[dict[str, Any]]) -> list[CheckMessage]:
    """Each issuer builds as it will at run time; one issuer per ``iss``; one of our own."""

    def error(message: str, hint: str, id: str = "apiauth.E030") -> list[CheckMessage]:
        return [Error(f"APIAUTH['JWT']: {message}", hint=hint, id=id)]

    messages: list[CheckMessage] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"ISSUERS[{index}]"
        if not isinstance(entry.get("ISSUER"), str) or not entry["ISSUER"]:
            messages += error(f"{where} has no ISSUER.", "The exact 'iss' of its tokens.")
            continue
        if entry["ISSUER"] in seen:
            messages += error(f"{where} repeats {entry['ISSUER']!r}.", "One entry per issuer.")
        seen.add(entry["ISSUER"])
        unknown_keys = sorted(set(entry) - ISSUER_KEYS)
        if unknown_keys:
            messages += error(
                f"{where}: unknown key(s) {', '.join(unknown_keys)}.",
                f"Known keys: {', '.join(sorted(ISSUER_KEYS))}.",
            )
            continue
        try:
            issuers.build(entry)
        except jose.InvalidKey as exc:
            if "SECRET" in entry:
                messages += error(
                    f"{where}: the HS256 secret is unusable: {exc}.",
                    "Use at least 32 random bytes, never a public key; prefer an asymmetric "
                    "algorithm so verifiers hold no secret.",
                    id="apiauth.E021",
                )
            else:
                messages += error(f"{where}: {exc}.", "Keys must fit their algorithm.")
        except (ValueError, KeyError, TypeError) as exc:
            messages += error(f"{where}: {exc}.", "See the JWT section of the settings reference.")
    if sum(1 for entry in entries if entry.get("ACCEPT_WITHOUT_ISS")) > 1:
        messages += error(
            "more than one issuer has ACCEPT_WITHOUT_ISS.",
            "Tokens without iss can belong to one issuer only.",
        )
    if sum(1 for entry in entries if entry.get("KEYS") == "local") > 1:
        messages += error(
            "more than one issuer has KEYS 'local'.",
            "Our signing keys make one issuer.",
            id="apiauth.E031",
        )
    return messages


ISSUER_KEYS = frozenset(
    {
        "ISSUER",
        "AUDIENCES",
        "ALGORITHMS",
        "KEYS",
        "JWKS_URL",
        "SECRET",
        "TYP",
        "REQUIRED_CLAIMS",
        "USER_FIELD",
        "USER_CLAIM",
        "PLAN",
        "ACCEPT_WITHOUT_ISS",
        "CLAIMS",
    }
)


def _callable_at(path: Any) -> bool:
    if not isinstance(path, str):
        return False
    try:
        return callable(import_string(path))
    except ImportError:
        return False
