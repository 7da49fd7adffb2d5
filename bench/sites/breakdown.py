"""The demo's own settings, each step of its ``/v1/ping`` served at that path from a URLconf of
its own (``bench/sites/breakdown_urls.py``), for ``python -m bench breakdown``."""

from __future__ import annotations

from project.settings import *  # noqa: F403

# First: it picks each step's URLconf (``python -m bench breakdown`` keeps it on the
# standard-middleware handler too).
MIDDLEWARE = ["bench.sites.breakdown_urls.StepURLconf", *MIDDLEWARE]  # noqa: F405
