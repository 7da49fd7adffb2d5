from __future__ import annotations

import io
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers

from apiauth.errors import PayloadTooLarge


class LimitedJSONParser(parsers.JSONParser):
    """JSON with a hard body limit (``DATA_UPLOAD_MAX_MEMORY_SIZE``): over it, 413.

    DRF streams the body to the parser, bypassing Django's own limit, which only guards
    ``request.body``; reading one byte past the limit tells without trusting Content-Length.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 1024 * 1024
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise PayloadTooLarge()
        return super().parse(io.BytesIO(data), media_type, parser_context)
