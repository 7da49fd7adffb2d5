"""The no-query floor as a site: the DRF floor with the key found in this worker's memory
(one lookup per key, then a dict) and its ``EVALSHA`` on the connection apiauth's store keeps
per thread, under the demo's DRF content negotiation and parsers
(``bench/sites/no_query_floor_urls.py``). It checks nothing after the first lookup: about the
least a DRF API-key stack that makes no query per request can cost, so the DRF floor's cost
over it is the most DRF floor/ours could be, whatever apiauth did."""

from __future__ import annotations

from bench.sites.drf_floor import *  # noqa: F403
from bench.sites.drf_floor import REST_FRAMEWORK as DRF_FLOOR_REST_FRAMEWORK

ROOT_URLCONF = "bench.sites.no_query_floor_urls"
REST_FRAMEWORK = {
    **DRF_FLOOR_REST_FRAMEWORK,
    # As the demo: what our request gets for free, the floor without its query gets too.
    "DEFAULT_PARSER_CLASSES": ["apiauth.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apiauth.negotiation.CachedContentNegotiation",
}
