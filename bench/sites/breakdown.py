"""The demo's own settings, with ``bench/sites/breakdown_urls.py`` beside its URLs: each step of
the demo's ``/v1/ping`` as a view of its own, for ``python -m bench breakdown``."""

from __future__ import annotations

from project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.sites.breakdown_urls"
