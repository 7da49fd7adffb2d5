"""Per-request authentication cost: apiauth vs djangorestframework-api-key vs DRF tokens.

Each contender protects the same trivial DRF view; requests are built with RequestFactory and
passed straight to the view, so the figures are DRF dispatch + authentication + permission, with
no URL routing or middleware. A no-authentication baseline is subtracted to show the cost of
authentication itself. The contenders take turns within each round, so a machine whose speed
drifts during the sitting moves them alike.
"""

from __future__ import annotations

import logging
from typing import Any

from bench.common import Timing, machine, print_table, setup_django, time_interleaved


def run(n: int = 500, rounds: int = 15) -> list[Timing]:
    setup_django()

    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.authtoken.models import Token
    from rest_framework.permissions import AllowAny, IsAuthenticated
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView
    from rest_framework_api_key.models import APIKey as DRFAPIKey
    from rest_framework_api_key.permissions import HasAPIKey

    from apiauth.authentication import APIKeyAuthentication
    from apiauth.crypto import generate_key
    from apiauth.models import APIKey

    def make_view(auth: list[Any], perms: list[Any]) -> Any:
        class View(APIView):
            authentication_classes = auth
            permission_classes = perms

            def get(self, request: Request) -> Response:
                return Response({"ok": True})

        return View.as_view()

    user, _ = User.objects.get_or_create(username="bench")
    _key, ours = APIKey.objects.create_key(name="bench", owner=user, scopes=["orders:read"])
    _drf_key, theirs = DRFAPIKey.objects.create_key(name="bench")
    token, _ = Token.objects.get_or_create(user=user)

    factory = RequestFactory()
    cases: list[tuple[str, Any, dict[str, str], int]] = [
        ("no authentication (baseline)", make_view([], [AllowAny]), {}, 200),
        (
            "apiauth APIKeyAuthentication",
            make_view([APIKeyAuthentication], [IsAuthenticated]),
            {"HTTP_X_API_KEY": ours},
            200,
        ),
        (
            "djangorestframework-api-key HasAPIKey",
            make_view([], [HasAPIKey]),
            {"HTTP_AUTHORIZATION": f"Api-Key {theirs}"},
            200,
        ),
        (
            "DRF TokenAuthentication",
            make_view([TokenAuthentication], [IsAuthenticated]),
            {"HTTP_AUTHORIZATION": f"Token {token.key}"},
            200,
        ),
        (
            "apiauth, malformed key (401)",
            make_view([APIKeyAuthentication], [IsAuthenticated]),
            {"HTTP_X_API_KEY": ours[:-1] + ("A" if ours[-1] != "A" else "B")},
            401,
        ),
        (
            "apiauth, unknown well-formed key (401)",
            make_view([APIKeyAuthentication], [IsAuthenticated]),
            {"HTTP_X_API_KEY": generate_key("apk").raw},
            401,
        ),
    ]

    logging.disable(logging.CRITICAL)  # failed attempts are logged; keep the timing clean
    calls: dict[str, Any] = {}
    queries: dict[str, int] = {}
    for label, view, headers, status in cases:

        def call(view: Any = view, headers: dict[str, Any] = headers) -> Any:
            request = factory.get("/bench")
            request.META.update(headers)
            return view(request)

        response = call()
        assert response.status_code == status, (label, response.status_code)
        with CaptureQueriesContext(connection) as captured:
            call()
        calls[label], queries[label] = call, len(captured)
    timings = time_interleaved(calls, n, rounds)
    results = [(timings[label], queries[label]) for label in calls]

    baseline = results[0][0].median_us
    ours_us = results[1][0].median_us - baseline
    rows = []
    for timing, count in results:
        over = timing.median_us - baseline
        ratio = "" if timing is results[0][0] else f"{over / ours_us:.2f}×"
        rows.append(
            [
                timing.label,
                f"{timing.median_us:.1f}",
                f"{over:.1f}" if timing is not results[0][0] else "-",
                ratio,
                str(count),
            ]
        )
    print(f"\nAuthentication, {rounds} interleaved rounds × {n} requests, median ({machine()})")
    print_table(["scheme", "µs/request", "µs over baseline", "cost vs apiauth", "DB queries"], rows)
    return [timing for timing, _ in results]
