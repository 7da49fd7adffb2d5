"""Helpers shared by the test modules: requests as a client sends them, refusals as it reads
them."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.test import Client

from apiauth import sigv4

if TYPE_CHECKING:
    from apiauth.models import HMACCredential

HOST = "testserver"

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


def send(
    credential: tuple[HMACCredential, str],
    method: str = "GET",
    path: str = "/v1/ping",
    body: bytes = b"",
    *,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    when: datetime.datetime | None = None,
    signer: sigv4.Signer | None = None,
    tamper: Any = None,
    client: Client | None = None,
    hash_header: bool = True,
) -> Any:
    """Sign as a client would, optionally change what is sent afterwards, and send it."""
    obj, secret = credential
    sent = {"Host": HOST, **(headers or {})}
    if body and content_type is None:
        content_type = "application/json"
    if content_type:
        sent["Content-Type"] = content_type
    signer = signer or sigv4.Signer(obj.access_key_id, secret)
    sent.update(
        signer.sign(
            method, f"http://{HOST}{path}", sent, body, when=when, sign_content_sha256=hash_header
        )
    )
    request: dict[str, Any] = {
        "method": method,
        "path": path,
        "body": body,
        "headers": sent,
        "extra": {},
    }
    if tamper is not None:
        tamper(request)
    headers_out = dict(request["headers"])
    ctype = headers_out.pop("Content-Type", None)
    return (client or Client()).generic(
        request["method"],
        request["path"],
        data=request["body"],
        content_type=ctype or "application/octet-stream",
        headers=headers_out,
        **request["extra"],
    )
