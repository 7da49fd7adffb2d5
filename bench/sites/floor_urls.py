from __future__ import annotations

import hashlib
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django_redis import get_redis_connection

# One bucket: 6000/min, burst 1000 (the demo's enterprise plan). Returns 1 (admit) or 0.
BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, span = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new = tat + interval
if new - now > span then return 0 end
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil((new - now) / 1000))
return 1
"""
SHA = hashlib.sha1(BUCKET.encode()).hexdigest()
INTERVAL_US = 10_000
SPAN_US = INTERVAL_US * 1000
QUERY = (
    "SELECT public_id, lineage FROM apiauth_apikey WHERE key_hash = %s "
    "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %s)"
)


def find_key(raw: str) -> tuple[str, str] | None:
    """The key's public id and lineage: one indexed lookup of its SHA-256 digest."""
    digest = hashlib.sha256(raw.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(QUERY, [digest, _now()])
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def ping(request: HttpRequest) -> HttpResponse:
    row = find_key(request.headers.get("X-API-Key", ""))
    if row is None:
        return JsonResponse({"detail": "invalid key"}, status=401)
    client = get_redis_connection("default")
    try:
        allowed = client.evalsha(SHA, 1, f"floor:{row[1]}", INTERVAL_US, SPAN_US)
    except Exception:  # NoScriptError after a restart: load it once.
        allowed = client.eval(BUCKET, 1, f"floor:{row[1]}", INTERVAL_US, SPAN_US)
    if not allowed:
        return JsonResponse({"detail": "slow down"}, status=429)
    return JsonResponse({"kind": "api_key", "id": row[0]})


def _now() -> Any:
    return connection.ops.adapt_datetimefield_value(timezone.now())


urlpatterns = [path("v1/ping", ping)]
