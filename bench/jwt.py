"""Per-request cost of JWT verification for RS256, ES256 and EdDSA, in one run: apiauth's
``JWTAuthentication`` against simplejwt's ``JWTAuthentication`` on the same request, and against
the floor: a bare ``jwt.decode`` with a pre-parsed key object.

Ours twice: as clients use it, presenting a token again and again (its signature was verified
on first sight, ``JWT["VERIFIED_CACHE_SIZE"]``), and with that cache off, as every token's first
request in a process pays.

Each call builds the request (the baseline, subtracted) and authenticates it. Ours serves the
API key behind the token from the worker's copy (no query) and leaves the revocation check to
the throttle's round trip, as in production; simplejwt, configured as its settings are (PEM
strings), parses the key on every call and loads the user (one query).
"""

from __future__ import annotations

import logging
from typing import Any

from bench.common import Timing, machine, print_table, setup_django, time_per_call

ISSUER = "https://bench.test"
AUDIENCE = "https://bench.test/v1"


def run(n: int = 2000) -> list[Timing]:
    setup_django()

    import jwt
    from cryptography.hazmat.primitives import serialization
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory, override_settings
    from rest_framework.request import Request
    from rest_framework.views import APIView
    from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuth
    from rest_framework_simplejwt.backends import TokenBackend
    from rest_framework_simplejwt.tokens import AccessToken

    from apiauth import keyring, tokens
    from apiauth.authentication import JWTAuthentication
    from apiauth.models import APIKey, SigningKey
    from apiauth.throttling import TokenBucketThrottle

    class View(APIView):
        throttle_classes = [TokenBucketThrottle]

    view = View()
    factory = RequestFactory()

    def build(token: str) -> Request:
        return Request(
            factory.get("/v1/orders", HTTP_AUTHORIZATION=f"Bearer {token}"),
            parser_context={"view": view},
        )

    user = get_user_model().objects.create_user("bench-jwt")
    key, _raw = APIKey.objects.create_key(name="bench jwt", scopes=["orders:read"])
    settings_jwt = {
        "ISSUERS": [{"ISSUER": ISSUER, "AUDIENCES": [AUDIENCE], "KEYS": "local"}],
    }
    ours, simple = JWTAuthentication(), SimpleJWTAuth()
    results: list[tuple[str, Timing, int]] = []
    logging.disable(logging.CRITICAL)
    from django.conf import settings

    with override_settings(APIAUTH={**settings.APIAUTH, "JWT": settings_jwt}):
        baseline_token = "a.b.c"
        results.append(
            measure("build the request (baseline, subtracted)", lambda: build(baseline_token), n)
        )
        for alg in ("RS256", "ES256", "EdDSA"):
            SigningKey.objects.filter(state="active").update(state="retired")
            signing = SigningKey.objects.generate(alg, state="active")
            keyring.ring.clear()
            token, _ = tokens.access_token(key, ["orders:read"])
            private = serialization.load_pem_private_key(signing.decrypt_private_key(), None)
            public = private.public_key()

            def floor(token: str = token, public: Any = public, alg: str = alg) -> Any:
                return jwt.decode(token, public, algorithms=[alg], audience=AUDIENCE)

            # As simplejwt is configured: PEM strings in SIMPLE_JWT (PyJWT parses them on use).
            backend = TokenBackend(alg, signing.decrypt_private_key().decode(), signing.public_key)
            AccessToken._token_backend = backend
            simple_token = str(AccessToken.for_user(user))
            results.append(measure(f"floor: jwt.decode, {alg}", floor, n))
            results.append(
                measure(
                    f"simplejwt JWTAuthentication, {alg}",
                    lambda t=simple_token: simple.authenticate(build(t)),
                    n,
                )
            )
            results.append(
                measure(
                    f"apiauth JWTAuthentication, token seen before, {alg}",
                    lambda t=token: ours.authenticate(build(t)),
                    n,
                )
            )
            uncached = {**settings_jwt, "VERIFIED_CACHE_SIZE": 0}
            with override_settings(APIAUTH={**settings.APIAUTH, "JWT": uncached}):
                results.append(
                    measure(
                        f"  of which TokenVerifier.verify, every token new, {alg}",
                        lambda t=token: ours.verifier.verify(t),
                        n,
                    )
                )
                results.append(
                    measure(
                        f"apiauth JWTAuthentication, every token new, {alg}",
                        lambda t=token: ours.authenticate(build(t)),
                        n,
                    )
                )
    baseline = results[0][1].median_us
    floors = {
        label.rsplit(" ", 1)[-1]: timing.median_us
        for label, timing, _ in results
        if label.startswith("floor")
    }
    rows = []
    for label, timing, queries in results:
        alg = label.rsplit(" ", 1)[-1]
        measured_alone = label.startswith(("floor", "build", "  of which"))  # no request built
        net = timing.median_us - (0 if measured_alone else baseline)
        ratio = "" if label.startswith(("floor", "build")) else f"{net / floors[alg]:.2f}×"
        rows.append([label, f"{timing.median_us:.1f}", f"{net:.1f}", ratio, str(queries)])
    print(f"\nJWT verification, {n} requests × 5 rounds, median ({machine()})")
    print_table(["case", "µs/call", "µs net", "x / floor", "DB queries"], rows)
    return [timing for _label, timing, _q in results]


def measure(label: str, call: Any, n: int) -> tuple[str, Timing, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call()
    call()  # the second is served from the worker's copies
    with CaptureQueriesContext(connection) as captured:
        call()
    return label, time_per_call(label, call, n), len(captured)
