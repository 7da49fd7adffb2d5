"""Password sign-in pages under the failed-authentication limiter.

Each wrong password at a limited login page debits the client address's failed-authentication
bucket, the one the API's authentication classes debit (``APIAUTH["FAILED_AUTH_LIMITS"]``).
Once it is empty the address is locked: every sign-in from it is answered 429 with
``Retry-After`` *before* the password is checked, right or wrong. Unlike API credentials,
which carry ~256 random bits, a password can be guessed, so a lock never lets a correct guess
through (the ``FAILED_AUTH_LOCKOUT`` mode decides the API's behaviour only).

* The default admin site (``django.contrib.admin.site``) is limited when apiauth is ready,
  unless ``APIAUTH["LIMIT_ADMIN_LOGIN"]`` is ``False``.
* A site of your own: subclass :class:`LimitedLoginAdminSite` (or call
  :func:`limit_login_failures` in your ``login``).
* Any other login view (``LoginView``, the page OAuth's ``/auth/authorize`` sends people to):
  ``path("accounts/login/", limit_login_failures(LoginView.as_view()))``.

A wrong password is what Django's ``authenticate()`` reports as ``user_login_failed`` for the
request; an empty form or a refused CSRF token checks no password and costs nothing. When the
store cannot be reached the page answers as Django would (the lock is not known, and a
failure is not counted).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse

from apiauth import audit
from apiauth.net import get_client_ip
from apiauth.throttling import lockout

LIMITED = "_apiauth_login_limited"
FAILED = "_apiauth_login_failed"

View = Callable[..., HttpResponseBase]


def limit_login_failures(view: View, *, when: Callable[[], bool] = lambda: True) -> View:
    """``view`` (a login page) under the failed-authentication limiter; ``when`` is asked on
    each request (the default admin site's follows ``LIMIT_ADMIN_LOGIN``)."""
    if getattr(view, LIMITED, False):
        return view

    @functools.wraps(view)
    def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method != "POST" or not when():
            return view(request, *args, **kwargs)
        client_ip = get_client_ip(request)
        wait = lockout.limiter.is_locked(client_ip)
        if wait is not None:
            return locked_out(request, wait)
        setattr(request, LIMITED, True)
        response = view(request, *args, **kwargs)
        if not getattr(request, FAILED, False):
            return response
        audit.auth_failure("bad_password", kind="login", credential_id=None, client_ip=client_ip)
        lockout.limiter.record_failure(client_ip)
        # The failure that spends the allowance says so at once (one more round trip, on
        # failures only), and the lock is logged once: later attempts never get this far.
        wait = lockout.limiter.is_locked(client_ip)
        if wait is None:
            return response
        audit.lockout(client_ip=client_ip, seconds=wait)
        return locked_out(request, wait)

    setattr(limited, LIMITED, True)
    return limited


def login_failed(sender: Any, credentials: Any = None, request: Any = None, **kwargs: Any) -> None:
    """``user_login_failed`` receiver: marks a limited page's request as a wrong password."""
    if request is not None and getattr(request, LIMITED, False):
        setattr(request, FAILED, True)


def locked_out(request: HttpRequest, wait: float) -> HttpResponse:
    seconds = max(1, math.ceil(wait))
    response = TemplateResponse(
        request, "apiauth/login_locked.html", {"seconds": seconds}, status=429
    )
    response["Retry-After"] = str(seconds)
    response["Cache-Control"] = "no-store"
    return response


class LimitedLoginAdminSite(AdminSite):
    """An admin site whose login page is under the failed-authentication limiter."""

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        return limit_login_failures(super().login)(request, extra_context)


def limit_default_admin_site() -> None:
    """Limit ``django.contrib.admin.site``'s login, as ``LIMIT_ADMIN_LOGIN`` says (read on
    each request, so ``override_settings`` and a settings reload are honoured)."""
    from django.contrib import admin

    from apiauth.conf import conf

    site = admin.site
    site.login = limit_login_failures(  # type: ignore[method-assign,assignment]
        site.login, when=lambda: bool(conf.LIMIT_ADMIN_LOGIN)
    )
