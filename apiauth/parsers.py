"""Parsers with hard bounds: body size (413), nesting depth and valid Unicode (400).

DRF streams the body to the parser, bypassing Django's own ``DATA_UPLOAD_MAX_MEMORY_SIZE``
(which only guards ``request.body``), and ``json.loads`` recurses: a body nested a thousand
levels deep raises ``RecursionError``, a 500. JSON may also spell lone UTF-16 surrogates
(``"\ud800"``), which are no text: echoed back in an error message (an unknown field's name)
they cannot be encoded, another 500. Set
``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["apiauth.parsers.JSONParser"]``.

Form bodies have the same holes: DRF decodes them with whatever codec the ``charset``
parameter names, and ``unicode_escape`` turns ``\ud800`` into a lone surrogate.
:class:`FormParser` reads UTF-8 only, as RFC 6749 Appendix B says OAuth clients send it.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from django.conf import settings
from django.http import QueryDict
from django.utils.http import parse_header_parameters
from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers

from apiauth.errors import PayloadTooLarge

if TYPE_CHECKING:
    from django.http.request import _ImmutableQueryDict


class BoundedBody:
    """``max_body_size`` (bytes; default ``DATA_UPLOAD_MAX_MEMORY_SIZE``, else 1 MiB)."""

    max_body_size: int | None = None

    def get_max_body_size(self) -> int:
        return self.max_body_size or settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 1024 * 1024

    def read(self, stream: IO[Any] | None) -> bytes:
        if stream is None:
            return b""
        limit = self.get_max_body_size()
        # One byte past the limit tells, without trusting Content-Length.
        data: bytes = stream.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge()
        return data


class JSONParser(BoundedBody, parsers.JSONParser):
    """``max_depth`` (arrays and objects inside each other) and ``max_body_size`` are class
    attributes to override."""

    max_depth = 32

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        data = self.read(stream)
        try:
            value = super().parse(io.BytesIO(data), media_type, parser_context)
        except RecursionError:
            value = None
            too_deep = True
        else:
            too_deep = nesting_exceeds(value, self.max_depth)
        if too_deep:
            raise exceptions.ParseError(
                _("JSON nested more than %(depth)d levels deep.") % {"depth": self.max_depth}
            )
        if not is_text(value):
            raise exceptions.ParseError(_("JSON strings must be valid Unicode."))
        return value


class FormParser(BoundedBody, parsers.FormParser):
    """``application/x-www-form-urlencoded`` in UTF-8 (bytes that are not UTF-8 become
    U+FFFD, as Django decodes them); another ``charset`` is a 400."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> _ImmutableQueryDict:
        _type, params = parse_header_parameters(media_type or "")
        charset = params.get("charset")
        if charset is not None and not is_utf8(charset):
            raise exceptions.ParseError(_("Form bodies must be encoded in UTF-8."))
        return QueryDict(self.read(stream), encoding="utf-8")


def is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name == "utf-8"
    except LookupError:
        return False


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit``; iterative, so never recursion."""
    if not isinstance(value, (dict, list)):
        return False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def is_text(value: Any) -> bool:
    """Whether every string in ``value`` (object keys included) encodes to UTF-8."""
    stack = [value]
    try:
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                item.encode("utf-8")
            elif isinstance(item, dict):
                stack.extend(item)
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    except UnicodeEncodeError:
        return False
    return True
