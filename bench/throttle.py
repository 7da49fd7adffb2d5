"""Throttle cost and exactness: apiauth vs DRF's ScopedRateThrottle vs django-ratelimit.

All three guard the same DRF view as throttle classes, against the same redis-server (DRF's and
django-ratelimit's state through the django-redis cache), for one anonymous client address.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from typing import Any

from bench.common import machine, print_table, setup_django

PROCESSES = 16
PER_PROCESS = 20


def _contenders(rate: str) -> dict[str, Any]:
    from django.conf import settings
    from django.test import override_settings
    from django_ratelimit.core import is_ratelimited
    from rest_framework.response import Response
    from rest_framework.throttling import BaseThrottle, ScopedRateThrottle
    from rest_framework.views import APIView

    from apiauth.throttling import TokenBucketThrottle

    count = int(rate.split("/")[0])
    override_settings(
        APIAUTH={"ANONYMOUS_LIMITS": {"rate": rate, "burst": count}},
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"bench": rate}},
    ).enable()
    from rest_framework.settings import api_settings

    # DRF reads its rates once, into a class attribute.
    rates: Any = api_settings.DEFAULT_THROTTLE_RATES
    ScopedRateThrottle.THROTTLE_RATES = rates

    class DjangoRatelimit(BaseThrottle):
        def allow_request(self, request: Any, view: Any) -> bool:
            return not is_ratelimited(
                request._request,
                group="bench",
                key="ip",
                rate=rate.replace("hour", "h"),
                increment=True,
            )

    def view(throttle: Any) -> Any:
        class View(APIView):
            authentication_classes: list[Any] = []
            permission_classes: list[Any] = []
            throttle_classes = [throttle]
            throttle_scope = "bench"

            def get(self, request: Any) -> Response:
                return Response({"ok": True})

        return View.as_view()

    return {
        "apiauth TokenBucketThrottle": view(TokenBucketThrottle),
        "DRF ScopedRateThrottle": view(ScopedRateThrottle),
        "django-ratelimit": view(DjangoRatelimit),
    }


def _flush() -> None:
    from django.core.cache import cache

    cache.clear()


def _seed(label: str, ip: str, used: int) -> None:
    from django.core.cache import cache

    from apiauth.throttling.limiter import decide, identity
    from apiauth.throttling.rates import parse_limits

    if label.startswith("DRF"):
        now = time.time()
        cache.set(f"throttle_bench_{ip}", [now - i * 0.05 for i in range(used)], 3600)
    else:
        limits = parse_limits({"rate": "100000/hour", "burst": 100_000})
        decide(identity(None, None, ip), limits, ["burst"], used)


def _time(view: Any, n: int, ip: str) -> tuple[float, int]:
    from django.test import RequestFactory

    factory = RequestFactory()
    admitted = 0
    start = time.perf_counter_ns()
    for _ in range(n):
        admitted += view(factory.get("/bench", REMOTE_ADDR=ip)).status_code == 200
    return (time.perf_counter_ns() - start) / n / 1000, admitted


def _process(view: Any, barrier: Any, queue: Any) -> None:
    from django.test import RequestFactory

    factory = RequestFactory()
    barrier.wait()
    queue.put(
        sum(
            view(factory.get("/bench", REMOTE_ADDR="198.51.100.1")).status_code == 200
            for _ in range(PER_PROCESS)
        )
    )


def _concurrent(view: Any) -> int:
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(PROCESSES), context.Queue()
    workers = [
        context.Process(target=_process, args=(view, barrier, queue)) for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    admitted = sum(int(queue.get(timeout=120)) for _ in workers)
    for worker in workers:
        worker.join(timeout=120)
    return admitted


def run(n: int = 2000) -> None:
    setup_django()
    logging.disable(logging.WARNING)
    rows: list[list[str]] = []
    for run_index, rate in enumerate(("100/hour", "100000/hour")):
        views = _contenders(rate)
        timings: dict[str, float] = {}
        for label, view in views.items():
            _flush()
            us, admitted = _time(view, n, ip=f"192.0.{run_index}.{len(timings) + 1}")
            timings[label] = us
            rows.append([rate, label, f"{us:.1f}", "", str(admitted)])
        ours = timings["apiauth TokenBucketThrottle"]
        for row in rows[-3:]:
            row[3] = f"{timings[row[1]] / ours:.2f}×"
    # A client that has already used half of a 100000/hour limit: DRF reads and writes back
    # its whole history on every request; our state is one integer whatever the usage.
    views = _contenders("100000/hour")
    used = 50_000
    for label in ("apiauth TokenBucketThrottle", "DRF ScopedRateThrottle"):
        _flush()
        ip = f"192.0.9.{len(rows)}"
        _seed(label, ip, used)
        us, admitted = _time(views[label], max(20, n // 10), ip=ip)
        rows.append([f"100000/hour, {used} used", label, f"{us:.1f}", "", str(admitted)])
    ours = float(rows[-2][2])
    for row in rows[-2:]:
        row[3] = f"{float(row[2]) / ours:.2f}×"

    print(f"\nThrottle, {n} requests from one address, mean ({machine()})")
    print_table(["limit", "throttle", "µs/request", "vs apiauth", "admitted"], rows)

    attempts = PROCESSES * PER_PROCESS
    rows = []
    for label, view in _contenders("100/hour").items():
        _flush()
        admitted = _concurrent(view)
        rows.append([label, str(attempts), str(admitted), str(max(0, admitted - 100))])
    print(f"\nOver-admission: {PROCESSES} processes × {PER_PROCESS} requests, one client, 100/hour")
    print_table(["throttle", "attempts", "admitted", "over the limit"], rows)
