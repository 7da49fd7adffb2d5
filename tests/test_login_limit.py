"""Password sign-in under the failed-authentication limiter: the admin's login page, and any
login view wrapped with ``limit_login_failures`` (the one OAuth's authorize page sends people
to), as a browser and as a guessing script meet them."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.contrib.admin import AdminSite
from django.test import Client, RequestFactory, override_settings
from rest_framework.test import APIClient

from apiauth.login import LimitedLoginAdminSite, limit_login_failures
from apiauth.throttling import lockout
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_redis")]

ADMIN_LOGIN = "/admin/login/"
LOGIN = "/accounts/login/"
THREE = {**settings.APIAUTH, "FAILED_AUTH_LIMITS": {"rate": "1/min", "burst": 3}}


@pytest.fixture(autouse=True)
def _fresh_locks() -> Any:
    lockout.limiter.clear()
    yield
    lockout.limiter.clear()


@pytest.fixture
def operator() -> Any:
    user = make_user("operator", is_staff=True, is_superuser=True)
    user.set_password("correct horse")
    user.save()
    return user


def sign_in(path: str, password: str, address: str = "192.0.2.9", **extra: Any) -> Any:
    data = {"username": "operator", "password": password, **extra}
    return Client().post(path, data, REMOTE_ADDR=address)


def locked(response: Any) -> bool:
    if response.status_code != 429:
        return False
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["Cache-Control"] == "no-store"
    assert "Too many wrong passwords came from your network" in response.content.decode()
    return True


@override_settings(APIAUTH=THREE)
@pytest.mark.parametrize("path", [ADMIN_LOGIN, LOGIN])
def test_guessing_is_stopped_and_then_the_right_password_too(
    operator: Any, path: str, caplog: Any
) -> None:
    # The allowance (a burst of three) is spent: the third wrong password is told so.
    assert [sign_in(path, f"guess {n}").status_code for n in range(2)] == [200, 200]
    assert locked(sign_in(path, "guess 3"))
    assert locked(sign_in(path, "guess 4"))
    # A correct guess during the lock is no use: no password is checked.
    assert locked(sign_in(path, "correct horse"))
    # Another address is not locked; the page itself is always shown.
    assert sign_in(path, "correct horse", address="198.51.100.1").status_code == 302
    assert Client().get(path, REMOTE_ADDR="192.0.2.9").status_code == 200
    failures = [r for r in caplog.records if getattr(r, "apiauth", {}).get("reason")]
    assert [r.apiauth["credential_kind"] for r in failures] == ["login"] * 3
    assert all(r.apiauth["credential_id"] is None for r in failures)
    assert all("guess" not in r.getMessage() for r in caplog.records)  # no password logged
    lockouts = [r for r in caplog.records if getattr(r, "apiauth", {}).get("event") == "lockout"]
    assert len(lockouts) == 1


@override_settings(APIAUTH=THREE)
def test_only_wrong_passwords_count(operator: Any) -> None:
    for _ in range(5):
        assert sign_in(ADMIN_LOGIN, "correct horse").status_code == 302
        assert Client().post(ADMIN_LOGIN, {}, REMOTE_ADDR="192.0.2.9").status_code == 200
    assert sign_in(ADMIN_LOGIN, "wrong").status_code == 200
    assert sign_in(ADMIN_LOGIN, "correct horse").status_code == 302


@override_settings(APIAUTH=THREE)
def test_the_api_and_the_login_share_an_addresss_bucket(operator: Any) -> None:
    api = APIClient(REMOTE_ADDR="192.0.2.9")
    for _ in range(3):
        api.get("/v1/ping", HTTP_X_API_KEY="apk_" + "x" * 40)
    assert locked(sign_in(ADMIN_LOGIN, "correct horse"))


@override_settings(APIAUTH={**THREE, "LIMIT_ADMIN_LOGIN": False})
def test_the_admin_login_can_be_left_alone(operator: Any) -> None:
    for n in range(5):
        assert sign_in(ADMIN_LOGIN, f"guess {n}").status_code == 200
    assert sign_in(ADMIN_LOGIN, "correct horse").status_code == 302
    # The wrapped login view of the project is not the admin's: it stays limited.
    assert [sign_in(LOGIN, "guess").status_code for _ in range(3)] == [200, 200, 429]


@override_settings(APIAUTH=THREE)
def test_a_site_of_ones_own(operator: Any) -> None:
    site = LimitedLoginAdminSite(name="own")
    factory = RequestFactory()

    def attempt(password: str) -> Any:
        request = factory.post(
            "/own/login/", {"username": "operator", "password": password}, REMOTE_ADDR="192.0.2.9"
        )
        request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        request.session = Client().session
        request.user = _anonymous()
        response = site.login(request)
        return response.render() if hasattr(response, "render") else response

    assert [attempt("no").status_code for _ in range(2)] == [200, 200]
    assert locked(attempt("no"))
    assert isinstance(site, AdminSite)


def _anonymous() -> Any:
    from django.contrib.auth.models import AnonymousUser

    return AnonymousUser()


def test_wrapping_twice_is_wrapping_once() -> None:
    def view(request: Any) -> Any:
        return None

    once = limit_login_failures(view)
    assert limit_login_failures(once) is once
