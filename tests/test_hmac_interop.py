"""Interoperability over real HTTP: requests signed by botocore's ``SigV4Auth`` and by our own
client (requests, httpx, presigned URLs) reach the API; changed after signing, they do not."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from apiauth.client import HTTPXAuth, RequestsAuth, presign_url
from apiauth.models import HMACCredential
from tests.factories import make_hmac

pytestmark = pytest.mark.django_db(transaction=True)

ORDER = b'{"sku": "abc-123", "quantity": 2}'


def botocore_signed(
    url: str,
    credential: tuple[HMACCredential, str],
    method: str = "GET",
    body: bytes = b"",
    *,
    region: str = "global",
    service: str = "apiauth",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    obj, secret = credential
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    if body:
        request.headers["Content-Type"] = "application/json"
    SigV4Auth(Credentials(obj.access_key_id, secret), service, region).add_auth(request)
    prepared = request.prepare()
    return {
        "method": prepared.method,
        "url": prepared.url,
        "headers": dict(prepared.headers),
        "data": prepared.body or b"",
    }


def send(request: dict[str, Any]) -> requests.Response:
    return requests.request(timeout=10, **request)


class TestBotocore:
    def test_get_with_query(self, live_server: Any) -> None:
        credential = make_hmac()
        url = f"{live_server.url}/v1/orders?page=2&q=a%20b&path=x%2Fy"
        response = send(botocore_signed(url, credential))
        assert response.status_code == 200, response.text

    def test_post_with_body(self, live_server: Any) -> None:
        request = botocore_signed(f"{live_server.url}/v1/orders", make_hmac(), "POST", ORDER)
        response = send(request)
        assert response.status_code == 201, response.text
        replay = send(request)
        assert replay.status_code == 401 and replay.json()["code"] == "replayed"

    @pytest.mark.parametrize(
        ("component", "code"),
        [
            ("method", "signature_mismatch"),
            ("path", "signature_mismatch"),
            ("query", "signature_mismatch"),
            ("header", "signature_mismatch"),
            ("body", "signature_mismatch"),  # botocore signs the body hash, sends no header
            ("date", "signature_mismatch"),
            ("scope-date", "scope_date_mismatch"),
            ("region", "wrong_region"),
            ("service", "wrong_service"),
        ],
    )
    def test_each_component_changed_is_refused(
        self, live_server: Any, component: str, code: str
    ) -> None:
        credential = make_hmac()
        url = f"{live_server.url}/v1/orders?page=1"
        kwargs: dict[str, Any] = {"headers": {"X-Partner": "acme"}}
        if component == "region":
            kwargs["region"] = "eu-west-1"
        if component == "service":
            kwargs["service"] = "s3"
        request = botocore_signed(url, credential, "POST", ORDER, **kwargs)
        headers = request["headers"]
        if component == "method":
            request["method"] = "PUT"
        elif component == "path":
            request["url"] = request["url"].replace("/v1/orders", "/v1/ping")
        elif component == "query":
            request["url"] = request["url"].replace("page=1", "page=2")
        elif component == "header":
            headers["X-Partner"] = "evil"
        elif component == "body":
            request["data"] = ORDER.replace(b"2", b"3")
        elif component == "date":
            moment = datetime.datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
            headers["X-Amz-Date"] = (moment - datetime.timedelta(seconds=1)).strftime(
                "%Y%m%dT%H%M%SZ"
            )
        elif component == "scope-date":
            date = headers["X-Amz-Date"][:8]
            headers["Authorization"] = headers["Authorization"].replace(f"/{date}/", "/20200101/")
        response = send(request)
        assert response.status_code == 401, response.text
        assert response.json()["code"] == code
        assert response.headers["Date"]


class TestOurClient:
    def test_requests(self, live_server: Any) -> None:
        obj, secret = make_hmac(plan="pro")
        auth = RequestsAuth(obj.access_key_id, secret)
        url = f"{live_server.url}/v1/orders"
        got = requests.get(url, params={"q": "a b+c", "page": "2"}, auth=auth, timeout=10)
        assert got.status_code == 200, got.text
        posted = requests.post(
            url, data=ORDER, headers={"Content-Type": "application/json"}, auth=auth, timeout=10
        )
        assert posted.status_code == 201, posted.text
        assert (
            requests.post(
                url, json={"sku": "abc-123", "quantity": 1}, auth=auth, timeout=10
            ).status_code
            == 201
        )

    def test_httpx(self, live_server: Any) -> None:
        obj, secret = make_hmac()
        with httpx.Client(auth=HTTPXAuth(obj.access_key_id, secret)) as client:
            got = client.get(f"{live_server.url}/v1/orders", params={"q": "ü / ?"})
            assert got.status_code == 200, got.text
            posted = client.post(f"{live_server.url}/v1/orders", json={"sku": "abc", "quantity": 3})
            assert posted.status_code == 201, posted.text

    def test_wrong_secret(self, live_server: Any) -> None:
        obj, _secret = make_hmac()
        auth = RequestsAuth(obj.access_key_id, "wrong")
        response = requests.get(f"{live_server.url}/v1/ping", auth=auth, timeout=10)
        assert response.status_code == 401 and response.json()["code"] == "signature_mismatch"

    def test_presigned_url(self, live_server: Any) -> None:
        obj, secret = make_hmac()
        url = presign_url(
            f"{live_server.url}/v1/orders?month=2026-11", obj.access_key_id, secret, expires=60
        )
        assert "X-Amz-Signature=" in urlsplit(url).query
        assert requests.get(url, timeout=10).status_code == 200
        tampered = url.replace("month=2026-11", "month=2026-12")
        assert requests.get(tampered, timeout=10).json()["code"] == "signature_mismatch"
