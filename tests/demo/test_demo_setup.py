"""``make run``'s setup: the demo key it prints works for the README's whole sequence."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apiauth.models import APIKey

pytestmark = pytest.mark.django_db


def test_the_printed_key_runs_the_readmes_sequence() -> None:
    """ping → token → ping with the token → list orders → create an order: a newcomer's first
    minute, none of it a 429 (writes cost five reads in the demo)."""
    out = io.StringIO()
    call_command("demo_setup", stdout=out)
    raw = re.findall(r"apk_[A-Za-z0-9_]+", out.getvalue())[0]
    assert APIKey.objects.get_from_key(raw).plan == "pro"
    client = APIClient()
    assert client.get("/v1/ping", HTTP_X_API_KEY=raw).status_code == 200
    issued = client.post(  # as curl -d sends it
        "/auth/token",
        "grant_type=client_credentials",
        content_type="application/x-www-form-urlencoded",
        HTTP_X_API_KEY=raw,
    )
    assert issued.status_code == 200, issued.content
    token = issued.json()["access_token"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/v1/ping").status_code == 200
    assert client.get("/v1/orders").status_code == 200
    created = client.post(
        "/v1/orders", json.dumps({"sku": "ABC-1", "quantity": 1}), content_type="application/json"
    )
    assert created.status_code == 201, created.content


def test_the_readmes_botocore_example_answers_200() -> None:
    """The README's botocore lines, as written, against the demo: a new credential has no
    orders, and page 1 of none is an empty page (page 2 was a 404 a newcomer took for a
    signing failure)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from apiauth.models import HMACCredential

    credential, secret = HMACCredential.objects.create_credential(
        name="partner", scopes=["orders:read"]
    )
    access_key_id = credential.access_key_id
    request = AWSRequest(method="GET", url="http://127.0.0.1:8000/v1/orders?page=1")
    SigV4Auth(Credentials(access_key_id, secret), "apiauth", "global").add_auth(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
    response = APIClient().get("/v1/orders?page=1", headers=headers, HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200, response.content
    assert response.json()["results"] == []
