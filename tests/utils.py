"""Helpers shared by the test modules: requests as a client sends them, refusals as it reads
them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.test import Client

FORM = "application/x-www-form-urlencoded"


def form(path: str, client: Client, raw: str | None, **data: str) -> Any:
    headers = {"X-API-Key": raw} if raw else {}
    return client.post(path, urlencode(data), content_type=FORM, headers=headers)


def obtain(client: Client, raw: str, **data: str) -> Any:
    return form("/auth/token", client, raw, grant_type="client_credentials", **data)


def refresh(client: Client, raw: str, token: str, **data: str) -> Any:
    return form("/auth/token", client, raw, grant_type="refresh_token", refresh_token=token, **data)


def call(client: Client, token: str, path: str = "/v1/ping") -> Any:
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def refused(response: Any, code: str) -> dict[str, Any]:
    assert response.status_code == 401, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description="')
    assert challenge.isascii()
    return body


def audited(caplog: Any, reason: str) -> list[dict[str, Any]]:
    """The audit records of the failed authentications refused for ``reason``."""
    return [r.apiauth for r in caplog.records if getattr(r, "apiauth", {}).get("reason") == reason]
