"""Random header content never produces a 500 (a seeded, bounded sweep)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.factories import make_key

pytestmark = pytest.mark.django_db

ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    "'\";--/\\..%00<>{}[]()=,:*?&|`$ \t",
    "éøüñ漢字ключ🔑\u202e\ufeff",
    "".join(chr(i) for i in range(1, 32)),
]


def noise(rng: random.Random, raw: str) -> str:
    kind = rng.randrange(5)
    if kind == 0:  # the real key, one character changed
        index = rng.randrange(len(raw))
        return raw[:index] + rng.choice(ALPHABETS[0]) + raw[index + 1 :]
    if kind == 1:  # the real key, cut
        return raw[: rng.randrange(len(raw))]
    if kind == 2:  # prefix then garbage
        return "apk_" + "".join(rng.choice(rng.choice(ALPHABETS)) for _ in range(rng.randrange(80)))
    length = rng.choice([0, 1, 10, 100, 8192])
    return "".join(rng.choice(rng.choice(ALPHABETS)) for _ in range(length))


@override_settings(APIAUTH={"TRUSTED_PROXIES": ["127.0.0.1/32"], "FAILED_AUTH_LIMITS": None})
def test_random_headers_never_500() -> None:
    rng = random.Random(9457)
    _key, raw = make_key()
    client = APIClient()
    statuses: set[int] = set()
    for _ in range(300):
        headers: dict[str, Any] = {
            "HTTP_X_API_KEY": noise(rng, raw),
            "HTTP_AUTHORIZATION": rng.choice(["Api-Key ", "Bearer ", "", "Basic "])
            + noise(rng, raw),
            "HTTP_X_FORWARDED_FOR": noise(rng, raw),
            "HTTP_X_REQUEST_ID": noise(rng, raw),
        }
        for name in rng.sample(sorted(headers), rng.randrange(1, 5)):
            headers.pop(name)
        response = client.get("/v1/orders", **headers)
        statuses.add(response.status_code)
        assert response.status_code < 500, headers
        if response.status_code >= 400:
            assert response["Content-Type"] == "application/problem+json"
    assert statuses <= {200, 401, 429}
    assert 401 in statuses
