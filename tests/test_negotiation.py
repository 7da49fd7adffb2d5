"""``CachedContentNegotiation`` answers exactly as DRF's negotiation does, remembered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.http import Http404
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apiauth.negotiation import CachedContentNegotiation

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "application/*",
    "text/html",
    "text/html;q=0.5, application/json",
    "text/*, application/json;q=0.1",
    "application/xml",
    "",
    ",,,",
    "application/json;q=0",
]
FORMATS = [None, "json", "api", "xml"]
RENDERER_SETS = [
    [JSONRenderer],
    [JSONRenderer, BrowsableAPIRenderer],
    [BrowsableAPIRenderer, JSONRenderer],
]


@pytest.fixture(autouse=True)
def _empty_memo() -> Iterator[None]:
    CachedContentNegotiation._memo.clear()
    yield
    CachedContentNegotiation._memo.clear()


def make_request(accept: str | None, query: str = "") -> Request:
    factory = APIRequestFactory()
    if accept is None:
        return Request(factory.get("/v1/ping" + query))
    return Request(factory.get("/v1/ping" + query, HTTP_ACCEPT=accept))


def outcome(negotiation: Any, request: Request, renderers: list[BaseRenderer], suffix: Any) -> Any:
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers, suffix)
    except (exceptions.NotAcceptable, Http404) as exc:
        return type(exc)
    return renderers.index(renderer), media_type


@pytest.mark.parametrize("classes", RENDERER_SETS, ids=lambda c: "+".join(k.format for k in c))
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("as_suffix", [False, True])
def test_same_answer_as_drf_first_and_remembered(
    classes: list[type[BaseRenderer]], fmt: str | None, accept: str | None, as_suffix: bool
) -> None:
    query = f"?format={fmt}" if fmt and not as_suffix else ""
    suffix = fmt if as_suffix else None
    expected = outcome(
        DefaultContentNegotiation(), make_request(accept, query), [c() for c in classes], suffix
    )
    cached = CachedContentNegotiation()
    for _ in range(2):  # computed, then remembered
        renderers = [c() for c in classes]  # a view builds new instances per request
        assert outcome(cached, make_request(accept, query), renderers, suffix) == expected


def test_a_refusal_is_not_remembered() -> None:
    with pytest.raises(exceptions.NotAcceptable):
        CachedContentNegotiation().select_renderer(
            make_request("application/xml"), [JSONRenderer()]
        )
    assert CachedContentNegotiation._memo == {}


def test_the_memo_is_bounded_against_distinct_headers() -> None:
    negotiation = CachedContentNegotiation()
    for i in range(negotiation.max_cached * 2 + 3):
        negotiation.select_renderer(make_request(f"application/json; v={i}"), [JSONRenderer()])
        assert len(CachedContentNegotiation._memo) <= negotiation.max_cached
    # Still right after starting again.
    renderer, media_type = negotiation.select_renderer(make_request("*/*"), [JSONRenderer()])
    assert (type(renderer), media_type) == (JSONRenderer, "application/json")


def test_long_headers_are_negotiated_but_never_remembered() -> None:
    negotiation = CachedContentNegotiation()
    accept = "text/plain;q=0.1, " * 20 + "application/json"
    assert len(accept) > negotiation.max_cached_header_length
    renderer, media_type = negotiation.select_renderer(make_request(accept), [JSONRenderer()])
    assert isinstance(renderer, JSONRenderer) and media_type.startswith("application/json")
    assert CachedContentNegotiation._memo == {}


def test_a_renderer_whose_media_type_differs_per_instance_is_not_confused() -> None:
    negotiation = CachedContentNegotiation()
    plain, special = JSONRenderer(), JSONRenderer()
    special.media_type = "application/vnd.acme+json"
    first = negotiation.select_renderer(make_request("application/vnd.acme+json"), [special])
    assert first == (special, "application/vnd.acme+json")
    with pytest.raises(exceptions.NotAcceptable):
        negotiation.select_renderer(make_request("application/vnd.acme+json"), [plain])
