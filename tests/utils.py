"""Helpers shared by the test modules: requests as a client sends them, refusals as it reads
them."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from django.test import Client

from apiauth import sigv4

if TYPE_CHECKING:
    from apiauth.models import HMACCredential, SigningKey

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


# Tokens, as an attacker (or an honest issuer) makes them ---------------------------------

ISS = "https://testserver"
AUD = "https://testserver/v1"


def private_key(key: SigningKey) -> Any:
    return serialization.load_pem_private_key(key.decrypt_private_key(), None)


def forge(
    key: SigningKey | None = None,
    *,
    claims: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    signing: Any = None,
    alg: str = "ES256",
) -> str:
    """A token as an attacker (or an honest issuer) would make one."""
    now = int(time.time())
    body = {
        "iss": ISS,
        "sub": "x",
        "aud": AUD,
        "exp": now + 300,
        "iat": now,
        "jti": "j1",
        **(claims or {}),
    }
    head = {"typ": "at+jwt", **({"kid": key.kid} if key else {}), **(headers or {})}
    if signing is None:
        assert key is not None
        signing = private_key(key)
    return jwt.encode(body, signing, alg, head)


def segments(token: str) -> list[str]:
    return token.split(".")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims_now(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISS, "sub": "x", "aud": AUD, "exp": now + 300, "iat": now, **extra}


def oauth_error(
    response: Any, status: int, error: str, description: str | None = None
) -> dict[str, Any]:
    """An OAuth error body; ``description``, when given, is the exact ``error_description``
    (it tells the client which of several refusals sharing one code it met)."""
    assert response.status_code == status, response.content
    assert response["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["error"] == error and body["error_description"]
    if description is not None:
        assert body["error_description"] == description
    assert body["code"] == error  # and a problem+json body too
    return body


# Redis, as the server counts what it was sent ----------------------------------------------

INNER_COMMANDS = {"cmdstat_get", "cmdstat_set", "cmdstat_time", "cmdstat_hmget", "cmdstat_info"}


def command_calls(client: Any) -> dict[str, int]:
    return {name: int(stats["calls"]) for name, stats in client.info("commandstats").items()}


def top_level_commands(client: Any, action: Any) -> dict[str, int]:
    """Commands a client sent for ``action``: the server's counts, less what the script ran
    inside (TIME, GET, SET, HMGET) and our own INFO."""
    before = command_calls(client)
    action()
    after = command_calls(client)
    delta = {name: after[name] - before.get(name, 0) for name in after}
    return {name: calls for name, calls in delta.items() if calls and name not in INNER_COMMANDS}


def round_trips(client: Any, action: Any) -> list[str]:
    """The commands clients sent the server during ``action``, as ``MONITOR`` shows them: each
    is one round trip (what a script runs inside it is left out, and our own marker)."""
    marker = f"apiauth-end-{secrets.token_hex(4)}"
    sent: list[str] = []
    with client.monitor() as monitor:
        action()
        client.echo(marker)
        while True:
            command = monitor.next_command()
            if marker in command["command"]:
                return sent
            name = command["command"].split(" ", 1)[0].strip('"').upper()
            # A new connection's handshake (our own marker's) is not a request's round trip.
            if command["client_type"] != "lua" and name not in {"HELLO", "CLIENT"}:
                sent.append(name)


# An HTTP client library's requests, answered by Django in this process -----------------------


class DjangoAdapter:
    """A ``requests`` transport adapter that hands each request to Django's test client: an
    independent client library (authlib, a ``requests`` session) talks HTTP to the app as it
    would over the network, headers, bodies and redirects included, in the test's own thread
    and database transaction."""

    def __init__(self, client: Client | None = None) -> None:
        self.client = client or Client()

    def send(self, request: Any, **kwargs: Any) -> Any:
        import requests
        from requests.structures import CaseInsensitiveDict

        parts = request.url.split("://", 1)[1]
        path = "/" + parts.split("/", 1)[1] if "/" in parts else "/"
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        content_type = headers.pop("Content-Type", None)
        body = request.body or b""
        answer = self.client.generic(
            request.method,
            path,
            body.encode() if isinstance(body, str) else body,
            content_type=content_type or "application/octet-stream",
            headers=headers,
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(dict(answer.items()))
        response._content = answer.content
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass
