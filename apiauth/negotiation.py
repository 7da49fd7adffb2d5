"""Content negotiation that remembers its answers.

DRF parses the ``Accept`` header and matches it against every renderer on each request, though
an API's clients send a handful of distinct headers (most send none, or ``*/*``). The answer is
a function of the header, the ``format`` asked for and the renderers' media types and formats,
so it is remembered under exactly those. Opt in with::

    REST_FRAMEWORK = {
        "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apiauth.negotiation.CachedContentNegotiation",
    }
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

Signature = tuple[tuple[type, str, str], ...]


class CachedContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, its answers remembered per header, format and renderer set.

    Bounded against headers chosen by clients: only headers up to ``max_cached_header_length``
    characters are remembered, at most ``max_cached`` of them (the memo starts again when
    full, so a flood of distinct headers costs DRF's own parsing, nothing more). A refusal
    (406, or 404 for an unknown format) is never remembered.
    """

    max_cached = 256
    max_cached_header_length = 256

    _memo: dict[tuple[type, str, str | None, Signature], tuple[int, str]] = {}
    _lock = threading.Lock()

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderers = renderers if isinstance(renderers, list) else list(renderers)
        meta = request._request.META
        accept = meta.get("HTTP_ACCEPT", "*/*")
        if len(accept) > self.max_cached_header_length:
            return super().select_renderer(request, renderers, format_suffix)  # type: ignore[no-any-return]
        fmt = format_suffix or self.requested_format(request)
        signature = tuple([(type(r), r.media_type, r.format) for r in renderers])
        key = (type(self), accept, fmt, signature)
        hit = self._memo.get(key)
        if hit is not None:
            return renderers[hit[0]], hit[1]
        renderer, media_type = super().select_renderer(request, renderers, format_suffix)
        with self._lock:
            memo = type(self)._memo
            if len(memo) >= self.max_cached:
                memo.clear()
            memo[key] = (renderers.index(renderer), media_type)
        return renderer, media_type

    def requested_format(self, request: Request) -> str | None:
        """The ``?format=`` override, read as DRF reads it."""
        param = self.settings.URL_FORMAT_OVERRIDE
        if not param or not request._request.META.get("QUERY_STRING"):
            return None
        value: Any = request.query_params.get(param)
        return value or None
