"""Per-request cost of HMAC (SigV4) verification, against the floor (hashing the body plus one
HMAC with a derived key already in hand) and against signing: botocore's ``SigV4Auth.add_auth``
on the same requests, in the same sitting. Both build the same canonical request; verifying
adds the comparison and the policy checks.

Requests are WSGI environs signed beforehand; each call builds the request (the baseline,
subtracted) and runs ``HMACAuthentication.authenticate`` on it, credential served from the
worker's copy. The replay row uses a distinct signature per call on a view without our
throttle: the claim rides in the round trip that confirms the copy (with our throttle both
ride in the throttle's script, timed with the limiter).

The cases take turns within each round (verifying, signing, the floors and the baselines),
so a machine whose speed drifts during the sitting moves every ratio's two sides alike.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
from typing import Any

from bench.common import (
    Timing,
    machine,
    print_table,
    setup_django,
    time_interleaved,
    time_per_call,
)

BODY = os.urandom(48 * 1024).hex()[: 64 * 1024].encode()


def run(n: int = 500, rounds: int = 15) -> list[Timing]:
    setup_django()

    from django.core.handlers.wsgi import WSGIRequest
    from django.db import connection
    from django.test import override_settings
    from django.test.utils import CaptureQueriesContext
    from rest_framework.request import Request
    from rest_framework.views import APIView

    from apiauth import sigv4
    from apiauth.authentication import HMACAuthentication
    from apiauth.models import HMACCredential
    from apiauth.throttling import TokenBucketThrottle

    obj, secret = HMACCredential.objects.create_credential(name="bench", scopes=["orders:read"])
    signer = sigv4.Signer(obj.access_key_id, secret)
    auth = HMACAuthentication()

    def environ(method: str, query: str, body: bytes) -> dict[str, Any]:
        url = f"http://bench.test/v1/orders{'?' + query if query else ''}"
        headers = {"Host": "bench.test"}
        if body:
            headers["Content-Type"] = "application/json"
        headers.update(signer.sign(method, url, headers, body))
        env: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": "/v1/orders",
            "RAW_URI": "/v1/orders" + ("?" + query if query else ""),
            "QUERY_STRING": query,
            "SERVER_NAME": "bench.test",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
            "CONTENT_LENGTH": str(len(body)),
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            env[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
        env["__body"] = body
        return env

    class View(APIView):
        # As in production: the throttle confirms the worker's copy in its own round trip,
        # which belongs to the rate limiter's cost, not to verification.
        throttle_classes = [TokenBucketThrottle]

    class Unthrottled(APIView):
        # Where the replay claim cannot ride in the throttle's script: it rides in the copy's
        # confirmation, one round trip made during authentication.
        throttle_classes: list[Any] = []

    view, unthrottled = View(), Unthrottled()

    def build(env: dict[str, Any], on: APIView = view) -> Request:
        wsgi = dict(env)
        wsgi["wsgi.input"] = io.BytesIO(wsgi.pop("__body"))
        return Request(WSGIRequest(wsgi), parser_context={"view": on})

    get_env = environ("GET", "page=2", b"")
    post_env = environ("POST", "", BODY)
    distinct = iter([environ("POST", f"n={i}", BODY) for i in range(n * 7 + 500)])

    key = sigv4.signing_key(sigv4.AWS, secret, "20261123", "global", "apiauth")
    to_sign = sigv4.string_to_sign(
        sigv4.AWS, "20261123T120000Z", "20261123/global/apiauth/aws4_request", "x" * 300
    ).encode()

    def floor(body: bytes) -> Any:
        def call() -> Any:
            hashlib.sha256(body).hexdigest()
            return hmac.digest(key, to_sign, "sha256").hex()

        return call

    def ours(env: dict[str, Any]) -> Any:
        return lambda: auth.authenticate(build(env))

    def ours_fresh() -> Any:
        return auth.authenticate(build(next(distinct), unthrottled))

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    boto_signer = SigV4Auth(Credentials(obj.access_key_id, secret), "apiauth", "global")

    def aws_request(method: str, query: str, body: bytes) -> Any:
        url = f"http://bench.test/v1/orders{'?' + query if query else ''}"
        headers = {"Content-Type": "application/json"} if body else {}
        return lambda: AWSRequest(method=method, url=url, data=body, headers=headers)

    def botocore(make: Any) -> Any:
        return lambda: boto_signer.add_auth(make())

    logging.disable(logging.CRITICAL)
    rows_in: list[tuple[str, Any, Any, str]] = [
        ("build the request (baseline, subtracted)", lambda: build(get_env), None, ""),
        ("floor: empty GET (SHA-256 of b'' + 1 HMAC)", floor(b""), None, ""),
        ("apiauth HMACAuthentication, GET", ours(get_env), "GET", "floor: empty GET"),
        ("floor: 64 KB POST (SHA-256 of the body + 1 HMAC)", floor(BODY), None, ""),
        ("apiauth HMACAuthentication, 64 KB POST", ours(post_env), "POST", "floor: 64 KB POST"),
        (
            "build botocore's AWSRequest (baseline, subtracted)",
            aws_request("GET", "page=2", b""),
            None,
            "",
        ),
        (
            "botocore SigV4Auth.add_auth, GET (signing)",
            botocore(aws_request("GET", "page=2", b"")),
            None,
            "",
        ),
        (
            "botocore SigV4Auth.add_auth, 64 KB POST (signing)",
            botocore(aws_request("POST", "", BODY)),
            None,
            "",
        ),
    ]
    results: dict[str, tuple[Timing, int | str]] = {}
    with override_settings(APIAUTH={**_apiauth(), "HMAC": {"REPLAY_PROTECTION": False}}):
        queries: dict[str, int] = {}
        for label, call, _method, _floor in rows_in:
            call()
            call()  # the second is served from the worker's copy
            with CaptureQueriesContext(connection) as captured:
                call()
            queries[label] = len(captured)
        timings = time_interleaved({label: call for label, call, *_ in rows_in}, n, rounds)
        for label, timing in timings.items():
            results[label] = (timing, queries[label])
    # With our throttle the claim rides in its script (no round trip of its own): this row is
    # a view without it, where authentication confirms the copy and claims in one round trip.
    label = "apiauth, 64 KB POST + confirmation and replay claim (1 EVALSHA)"
    ours_fresh()
    with CaptureQueriesContext(connection) as captured:
        ours_fresh()
    results[label] = (time_per_call(label, ours_fresh, n), len(captured))

    baseline = results[rows_in[0][0]][0].median_us
    boto_baseline = results[rows_in[5][0]][0].median_us
    floors = {
        "GET": results[rows_in[1][0]][0].median_us,
        "POST": results[rows_in[3][0]][0].median_us,
    }
    signing = {
        "GET": results[rows_in[6][0]][0].median_us - boto_baseline,
        "POST": results[rows_in[7][0]][0].median_us - boto_baseline,
    }
    rows = []
    for label, (timing, count) in results.items():
        base = baseline if label.startswith("apiauth") else boto_baseline
        net = timing.median_us - (0 if label.startswith(("floor", "build")) else base)
        kind = "GET" if "GET" in label else "POST"
        ours_row = label.startswith("apiauth")
        ratio = f"{net / floors[kind]:.2f}×" if ours_row else ""
        versus = f"{net / signing[kind]:.2f}×" if ours_row else ""
        rows.append([label, f"{timing.median_us:.1f}", f"{net:.1f}", ratio, versus, str(count)])
    print(
        f"\nHMAC (SigV4) verification, {rounds} interleaved rounds × {n} requests, median "
        f"({machine()})"
    )
    print_table(
        ["case", "µs/call", "µs net", "ours / floor", "ours / botocore signing", "DB queries"],
        rows,
    )
    return [timing for timing, _ in results.values()]


def _apiauth() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.APIAUTH)
