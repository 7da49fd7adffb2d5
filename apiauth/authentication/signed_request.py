"""The Django request as SigV4 sees it: the bytes on the wire, not Django's decoded view.

SigV4 signs the path and query as the client encoded them and the headers as sent; Django
hands them over decoded (and WSGI as latin-1 text). These functions recover what was signed.
"""

from __future__ import annotations

import functools
from urllib.parse import quote, urlsplit

from django.core.handlers.wsgi import WSGIRequest
from django.utils.translation import gettext as _
from rest_framework.request import Request

from apiauth import sigv4


def repeated_in_order(pairs: list[tuple[bytes, bytes]]) -> bool:
    """Whether every repeated parameter's values come in canonical (sorted) order.

    SigV4 sorts the query before signing, so the order of a parameter's values is not signed,
    while ``request.GET[name]`` reads the last one: reordering them after signing would change
    what the view reads. Sending them sorted makes the order sent the order signed.
    """
    seen: dict[bytes, bytes] = {}
    for name, value in pairs:
        previous = seen.get(name)
        # Compared as signed (encoded); most queries repeat nothing and encode nothing here.
        if previous is not None and quote(value, safe="~") < quote(previous, safe="~"):
            return False
        seen[name] = value
    return True


def _two_spellings() -> sigv4.SignatureError:
    return sigv4.SignatureError("malformed_header", _("A header is sent under two spellings."))


def _wsgi_bytes(value: str) -> bytes:
    """WSGI hands over the request's bytes as latin-1 text (PEP 3333)."""
    return value.encode("latin-1")


def wire_path(request: Request) -> bytes:
    """The path as the client sent it, still percent-encoded: gunicorn's ``RAW_URI``,
    uwsgi's ``REQUEST_URI``, ASGI's ``raw_path``; else the decoded path encoded again."""
    meta = request._request.META
    raw = meta.get("RAW_URI") or meta.get("REQUEST_URI")
    if raw:
        path = raw.split("?", 1)[0]
        if "://" in path[:8]:  # absolute-form request target
            path = urlsplit(path).path
        return _wsgi_bytes(path or "/")
    raw_path = _scope_bytes(request, "raw_path")
    if raw_path is not None:
        return raw_path or b"/"
    decoded = _wsgi_bytes(meta.get("SCRIPT_NAME", "") + meta.get("PATH_INFO", "/"))
    return quote(decoded, safe="/~").encode("ascii")


def wire_query(request: Request) -> bytes:
    """The query string as the client sent it: ASGI's bytes (Django hands them on decoded as
    UTF-8), else WSGI's latin-1 text encoded back."""
    query = _scope_bytes(request, "query_string")
    if query is not None:
        return query
    return _wsgi_bytes(request._request.META.get("QUERY_STRING", ""))


def _scope_bytes(request: Request, name: str) -> bytes | None:
    """A raw value of the request's ASGI scope, when the app runs under ASGI."""
    http = request._request
    if isinstance(http, WSGIRequest):
        return None
    scope = getattr(http, "scope", None)
    value = scope.get(name) if isinstance(scope, dict) else None
    return value if isinstance(value, bytes) else None


@functools.lru_cache(maxsize=64)
def meta_name(header: str) -> str:
    """Where WSGI puts a request header in ``request.META``."""
    return "HTTP_" + header.upper().replace("-", "_")


_header_names: dict[str, str] = {}


def header_name(name: str) -> str:
    """The lowercase header a ``request.META`` key holds (``""`` for one that is not a
    header). Remembered: a worker sees the same few names on every request."""
    header = _header_names.get(name)
    if header is None:
        if name.startswith("HTTP_"):
            header = name[5:].lower().replace("_", "-")
        elif name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            header = name.lower().replace("_", "-")
        else:
            header = ""
        if len(_header_names) >= 1024:  # clients choose the names: bounded
            _header_names.clear()
        _header_names[name] = header
    return header


def request_headers(
    request: Request, presented: sigv4.Presented, scheme: sigv4.Scheme
) -> dict[str, list[str]]:
    """The headers the policy looks at (signed ones, the scheme's own, ``content-type``),
    lowercased. Repeated headers arrive joined with ``,``, as SigV4 joins them."""
    meta = request._request.META
    if "HTTP_CONTENT_TYPE" in meta or "HTTP_CONTENT_LENGTH" in meta:
        # A "Content_Type:" header, where the server passes underscores: never the
        # Content-Type that Django parses the body with (CONTENT_TYPE).
        raise _two_spellings()
    headers: dict[str, list[str]] = {}
    for name, header in _layout(meta, presented.signed_headers, scheme.header_prefix.lower()):
        value = meta[name]
        if header in ("content-type", "content-length") and not value:
            continue  # WSGI servers set these empty when the client sent none
        if header in headers:
            # Two spellings of one header (X-Amz-Date, X_Amz_Date) cannot both be signed.
            raise _two_spellings()
        headers[header] = [_wsgi_bytes(value).decode("utf-8")]
    return headers


_layouts: dict[tuple[frozenset[str], tuple[str, ...], str], tuple[tuple[str, str], ...]] = {}


def _layout(
    meta: dict[str, str], signed: tuple[str, ...], prefix: str
) -> tuple[tuple[str, str], ...]:
    """The ``(META key, header)`` pairs holding the headers the policy looks at. A server and
    its clients send the same few sets of names: each set is read once and remembered, and a
    request's ``META`` is hashed as a set of names instead of walked entry by entry."""
    # Only sets of names a server and its clients send are remembered: a client sending
    # hundreds of long names must not make a worker hold them (1,024 sets × this budget).
    remember = len(meta) <= 128 and sum(map(len, meta)) <= 2048
    key = (frozenset(meta), signed, prefix) if remember else None
    layout = _layouts.get(key) if key is not None else None
    if layout is None:
        wanted = set(signed)
        pairs = []
        for name in meta:
            header = header_name(name)
            if not header or header == "authorization":
                continue
            if header in wanted or header == "content-type" or header.startswith(prefix):
                pairs.append((name, header))
        layout = tuple(pairs)
        if key is not None:
            if len(_layouts) >= 1024:  # clients choose the names: bounded
                _layouts.clear()
            _layouts[key] = layout
    return layout
