"""Request bodies: size and nesting are bounded (413, 400), and a crash is a logged 500."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apiauth.parsers import FormParser, JSONParser, is_utf8, nesting_exceeds
from tests.factories import make_key

pytestmark = pytest.mark.django_db


def post(raw: str, body: str) -> object:
    return APIClient().post("/v1/orders", body, content_type="application/json", HTTP_X_API_KEY=raw)


class TestNesting:
    @pytest.mark.parametrize("depth", [33, 1000, 100_000])
    def test_too_deep_is_400(self, depth: int) -> None:
        _key, raw = make_key()
        response = post(raw, "[" * depth + "]" * depth)
        assert response.status_code == 400  # type: ignore[attr-defined]
        body = response.json()  # type: ignore[attr-defined]
        assert body["code"] == "parse_error" and "nested more than 32" in body["detail"]
        assert body["request_id"] == response["X-Request-Id"]  # type: ignore[index]

    def test_deep_inside_an_object(self) -> None:
        _key, raw = make_key()
        body = json.dumps({"sku": "ABC-1", "quantity": 1, "x": json.loads("[" * 40 + "]" * 40)})
        assert post(raw, body).json()["code"] == "parse_error"  # type: ignore[attr-defined]

    def test_within_the_bound_reaches_the_view(self) -> None:
        _key, raw = make_key()
        body = json.dumps({"sku": "ABC-1", "quantity": 1, "x": json.loads("[" * 30 + "]" * 30)})
        assert post(raw, body).status_code == 201  # type: ignore[attr-defined]

    def test_nesting_exceeds(self) -> None:
        assert not nesting_exceeds(1, 0)
        four = {"a": [1, {"b": []}]}  # object, array, object, array
        assert not nesting_exceeds(four, 4)
        assert nesting_exceeds(four, 3)
        assert not nesting_exceeds([], 1) and nesting_exceeds([[]], 1)


class TestBodySize:
    def test_over_the_limit_is_413(self, settings: object) -> None:
        _key, raw = make_key()
        response = post(raw, json.dumps({"sku": "A" * (1024 * 1024)}))
        assert response.status_code == 413  # type: ignore[attr-defined]
        assert response.json()["code"] == "payload_too_large"  # type: ignore[attr-defined]

    def test_the_limit_is_a_hook(self) -> None:
        class Small(JSONParser):
            max_body_size = 10

        assert Small().get_max_body_size() == 10
        assert JSONParser().get_max_body_size() == 1024 * 1024


def test_a_crash_is_a_logged_500_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/crash", HTTP_X_REQUEST_ID="trace-42")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["request_id"] == "trace-42" == response["X-Request-Id"]
    assert "a bug in a view" not in response.content.decode()
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records and records[0].exc_info and "a bug in a view" in str(records[0].exc_info[1])


class TestUnicode:
    @pytest.mark.parametrize(
        "body", ['{"\\ud800": 1}', '{"sku": "\\udfff", "quantity": 1}', '[["\\ud83d"]]']
    )
    def test_lone_surrogates_are_400(self, body: str) -> None:
        _key, raw = make_key()
        response = post(raw, body)
        assert response.status_code == 400  # type: ignore[attr-defined]
        assert response.json()["detail"] == "JSON strings must be valid Unicode."  # type: ignore[attr-defined]

    def test_a_surrogate_pair_is_text(self) -> None:
        _key, raw = make_key()
        body = '{"sku": "ABC-1", "quantity": 1, "note": "\\ud83d\\ude00"}'  # an emoji
        assert post(raw, body).status_code == 201  # type: ignore[attr-defined]


class TestForms:
    """Form bodies (the OAuth endpoints): UTF-8 only, whatever codec the charset names."""

    @pytest.mark.parametrize("charset", ["utf-8", "UTF8", "utf_8"])
    def test_utf8_spellings(self, charset: str) -> None:
        import io

        parsed = FormParser().parse(
            io.BytesIO(b"a=%C3%A9t%C3%A9&b=1"), f"{FORM}; charset={charset}"
        )
        assert parsed["a"] == "été" and parsed["b"] == "1"

    @pytest.mark.parametrize("charset", ["unicode_escape", "latin-1", "utf-16", "nope", ""])
    def test_other_charsets_are_refused(self, charset: str) -> None:
        import io

        from rest_framework.exceptions import ParseError

        assert not is_utf8(charset)
        with pytest.raises(ParseError):
            FormParser().parse(io.BytesIO(b"a=1"), f"{FORM}; charset={charset}")

    def test_bytes_that_are_not_utf8_are_replaced(self) -> None:
        import io

        assert FormParser().parse(io.BytesIO(b"a=%FF%FE"), FORM)["a"] == "\ufffd\ufffd"

    def test_body_size_is_bounded(self) -> None:
        import io

        from apiauth.errors import PayloadTooLarge

        parser = FormParser()
        parser.max_body_size = 10
        with pytest.raises(PayloadTooLarge):
            parser.parse(io.BytesIO(b"a=" + b"x" * 10), FORM)


FORM = "application/x-www-form-urlencoded"
