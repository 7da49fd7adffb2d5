from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from apiauth import cache, keyring, net, revocation, sigv4
from apiauth.authentication import signed_request
from apiauth.conf import conf
from apiauth.store import reset_stores
from apiauth.throttling import limiter, local, lockout, rates

# The live server on a loopback IP literal: OAuth redirects to http:// are only for those.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

if TYPE_CHECKING:
    from apiauth.models import APIKey, SigningKey

# The demo project's tests need its settings: `pytest tests/demo --ds tests.demo.settings`
# (make test runs both suites).
collect_ignore = ["demo"] if os.environ.get("DJANGO_SETTINGS_MODULE") == "tests.settings" else []


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A real ``redis-server`` on a free loopback port, owned by the test session."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test`, which installs it.")
        self.binary = binary
        self.workdir = workdir
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": server.url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    with override_settings(CACHES=caches):
        yield server
    server.stop()


@pytest.fixture(autouse=True)
def _redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """Every test runs against the real server, emptied first, with fresh limiter state."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.client().flushall()
    reset_stores()
    lockout.limiter.clear()
    local.clear()
    local.share.cache_clear()
    net.requests_without_address = 0
    # Memoised parsers start empty: each test sees the code it runs (mutation testing forks
    # processes whose caches a previous run filled).
    rates._parse_cached.cache_clear()
    conf.reload()  # and the values derived from settings (parsed plans)
    net._networks.cache_clear()
    net.parse_address.cache_clear()
    net._peer.cache_clear()
    revocation._marks.cache_clear()
    sigv4._credentials.clear()
    sigv4._signed_headers.clear()
    signed_request._header_names.clear()
    signed_request._layouts.clear()
    signed_request.meta_name.cache_clear()
    from apiauth.authentication import JWTAuthentication

    JWTAuthentication.verifier.clear()  # remembered tokens, like every other worker copy
    cache.clear_all()
    keyring.ring.clear()  # the database rolls back between tests; no signal says so
    limiter._warned_at, limiter._unwarned = -limiter.WARNING_INTERVAL, 0
    yield redis_server


@pytest.fixture
def signing_key() -> SigningKey:
    """An active signing key: the token endpoint can issue."""
    from apiauth.models import SigningKey

    return SigningKey.objects.generate("ES256", state="active")


@pytest.fixture
def client_key() -> tuple[APIKey, str]:
    """An API key that obtains tokens (the "pro" plan: a token request is a POST, 5 units in
    the test settings)."""
    from tests.factories import make_key

    return make_key(scopes=["orders:read", "orders:write"], plan="pro")


@pytest.fixture
def admin_client() -> Client:
    """A logged-in superuser (pytest-django's own fixture, named alike, is replaced)."""
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


# A real browser (Debian's Chromium, which `make test` installs) against the live server ------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Chromium is not installed (make test installs it)",
)


@pytest.fixture
def live_site(live_server: Any) -> str:
    """The live server's URL. An in-memory SQLite database is shared with its request
    threads, as Django's own ``LiveServerTestCase`` allows."""
    from django.db import connections

    for connection in connections.all():
        if connection.vendor == "sqlite" and connection.is_in_memory_db():  # type: ignore[attr-defined]
            connection.inc_thread_sharing()
    return str(live_server.url)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Headless Chromium, driven by Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread: the test's own ORM calls are
    # still synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
