"""The demo as production runs it: gunicorn, DEBUG off, collectstatic, a real redis-server,
and nginx's usual link to gunicorn, a unix socket."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RedisServer, _free_port
from tests.databases import scratch_database

ROOT = Path(__file__).resolve().parents[2]


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class Demo:
    def __init__(self, tmp: Path, redis_url: str, database_url: str) -> None:
        self.port = _free_port()
        self.socket = str(tmp / "gunicorn.sock")
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DJANGO_DEBUG": "0",
            "SECRET_KEY": "demo-test-" + "s" * 40,
            "PUBLIC_URL": "http://127.0.0.1:8000",
            "APIAUTH_ENCRYPTION_KEYS": "ZGVtby10ZXN0LWVuY3J5cHRpb24ta2V5LTMyLWJ5dGU=",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            "STATIC_ROOT": str(tmp / "static"),
            "REDIS_URL": redis_url,
            "TRUSTED_PROXIES": "unix",
            "SECURE_COOKIES": "0",
        }

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def request(
        self, path: str, headers: dict[str, str] | None = None, unix: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        connection = (
            UnixConnection(self.socket)
            if unix
            else http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        )
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("demo")
    with scratch_database(tmp) as database_url:
        yield from _serve(Demo(tmp, redis_server.url, database_url))


def _serve(demo: Demo) -> Iterator[Demo]:
    demo.manage("migrate", "--noinput")
    demo.manage("collectstatic", "--noinput")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "project.wsgi",
            "--bind",
            f"127.0.0.1:{demo.port}",
            "--bind",
            f"unix:{demo.socket}",
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env=demo.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if demo.request("/health")[0] == 200 and Path(demo.socket).exists():
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.1)
        yield demo
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_admin_stylesheet_loads(demo: Demo) -> None:
    status, _headers, body = demo.request("/admin/login/")
    assert status == 200
    hrefs = re.findall(rb'<link rel="stylesheet" href="([^"]+\.css)"', body)
    base = next(href.decode() for href in hrefs if b"/admin/css/base." in href)
    assert re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css$", base)  # cache-busted
    status, headers, css = demo.request(base, {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    assert headers.get("Content-Encoding") == "gzip"  # compressed
    assert (
        "immutable" in headers["Cache-Control"] or "max-age=315360000" in headers["Cache-Control"]
    )
    assert len(css) > 100


def test_behind_a_unix_socket(demo: Demo) -> None:
    """nginx → gunicorn over a socket: REMOTE_ADDR is empty, TRUSTED_PROXIES trusts 'unix'."""
    raw = demo.manage(
        "apiauth_createkey", "--name", "internal", "--allow-ip", "203.0.113.0/24"
    ).splitlines()[-1]
    inside = {"X-API-Key": raw, "X-Forwarded-For": "203.0.113.5"}
    outside = {"X-API-Key": raw, "X-Forwarded-For": "198.51.100.1"}
    assert demo.request("/v1/ping", inside, unix=True)[0] == 200
    assert demo.request("/v1/ping", outside, unix=True)[0] == 403
    # Garbage from the client's side never makes the proxy the client.
    assert (
        demo.request("/v1/ping", {"X-API-Key": raw, "X-Forwarded-For": "unknown"}, unix=True)[0]
        == 403
    )


def test_health_is_never_throttled(demo: Demo) -> None:
    for _ in range(40):
        assert demo.request("/health", unix=True)[0] == 200


def test_signed_requests_under_gunicorn(demo: Demo) -> None:
    """The wire path comes from gunicorn's RAW_URI: signed by botocore and by our client."""
    import requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from apiauth.client import RequestsAuth

    akid, secret = (
        demo.manage(
            "apiauth_createhmac", "--name", "partner", "--scopes", "orders:read,orders:write"
        )
        .splitlines()[-1]
        .split(" ")
    )
    base = f"http://127.0.0.1:{demo.port}"
    auth = RequestsAuth(akid, secret)
    response = requests.get(f"{base}/v1/orders", params={"q": "a b/c"}, auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    request = AWSRequest(method="GET", url=f"{base}/v1/ping?x=%C3%BC%20y")
    SigV4Auth(Credentials(akid, secret), "apiauth", "global").add_auth(request)
    prepared = request.prepare()
    response = requests.get(prepared.url, headers=dict(prepared.headers), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "hmac" and response.json()["id"] == akid
    demo.manage("apiauth_revokehmac", akid)
    refused = requests.get(f"{base}/v1/ping", auth=auth, timeout=10)
    assert refused.status_code == 401 and refused.json()["code"] == "revoked"
