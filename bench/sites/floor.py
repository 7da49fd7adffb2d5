"""The floor: a plain Django view doing the least a correct check can do, one indexed SQL lookup
of the key's SHA-256 digest and one EVALSHA token bucket."""

from __future__ import annotations

from bench.sites.base import *  # noqa: F403
from bench.sites.base import BASE_APPS

# apiauth only for its table; the view reads it with one raw query.
INSTALLED_APPS = [*BASE_APPS, "apiauth"]
ROOT_URLCONF = "bench.sites.floor_urls"
