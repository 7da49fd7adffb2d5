"""Moving from djangorestframework-simplejwt: its tokens, minted by simplejwt itself (HS256 with
the ``SECRET_KEY``, no ``iss``, no ``aud``, the user in an integer ``user_id``), are accepted
as they are by an issuer configured as docs/jwt.md says, while clients move."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.factories import make_user
from tests.utils import call, refused

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_redis")]

SIMPLEJWT = {
    "ISSUER": "simplejwt",
    "ACCEPT_WITHOUT_ISS": True,
    "SECRET": settings.SECRET_KEY,
    "ALGORITHMS": ["HS256"],
    "AUDIENCES": ["unused: simplejwt tokens carry no aud"],
    "REQUIRED_CLAIMS": ["exp", "iat", "jti", "user_id"],
    "CLAIMS": {"token_type": "access"},
    "USER_CLAIM": "user_id",
    "USER_FIELD": "pk",
    "PLAN": "free",
}


WITHOUT = settings.APIAUTH


@pytest.fixture(autouse=True)
def _cutover() -> Any:
    jwt = {**settings.APIAUTH["JWT"], "ISSUERS": [*settings.APIAUTH["JWT"]["ISSUERS"], SIMPLEJWT]}
    with override_settings(
        APIAUTH={**settings.APIAUTH, "JWT": jwt},
        SIMPLE_JWT={"SIGNING_KEY": settings.SECRET_KEY},
    ):
        yield


def tokens_for(user: Any) -> Any:
    from rest_framework_simplejwt.tokens import RefreshToken

    return RefreshToken.for_user(user)


def test_a_simplejwt_access_token_acts_as_its_user() -> None:
    user = make_user("sam")
    access = str(tokens_for(user).access_token)
    response = call(Client(), access, "/v1/whoami")
    assert response.status_code == 200, response.content
    assert response.json()["user"] == "sam"


def test_its_refresh_token_is_no_access_token() -> None:
    refresh = str(tokens_for(make_user("sam")))
    assert refused(call(Client(), refresh), "invalid_claim")["detail"] == (
        "The 'token_type' claim must be 'access'."
    )


def test_an_inactive_user_is_refused() -> None:
    user = make_user("sam")
    access = str(tokens_for(user).access_token)
    user.is_active = False
    user.save()
    refused(call(Client(), access), "owner_inactive")


def test_a_token_of_another_secret_is_refused() -> None:
    import jwt

    claims = jwt.decode(
        str(tokens_for(make_user("sam")).access_token), options={"verify_signature": False}
    )
    # The same claims under another secret (simplejwt caches its signer: mint it directly).
    forged = jwt.encode(claims, "another secret of 32 bytes or more!!", "HS256")
    refused(call(Client(), forged), "bad_signature")


def test_without_the_cutover_issuer_a_token_without_iss_is_untrusted() -> None:
    access = str(tokens_for(make_user("sam")).access_token)
    with override_settings(APIAUTH=WITHOUT):
        refused(call(Client(), access), "invalid_issuer")


def test_one_issuer_at_most_takes_tokens_without_iss() -> None:
    from django.core.checks import Tags, run_checks

    other = {**SIMPLEJWT, "ISSUER": "legacy"}
    jwt = {**settings.APIAUTH["JWT"], "ISSUERS": [SIMPLEJWT, other]}
    with override_settings(APIAUTH={**settings.APIAUTH, "JWT": jwt}):
        found = [m for m in run_checks(tags=[Tags.security]) if m.id == "apiauth.E030"]
    assert [m.msg for m in found] == [
        "APIAUTH['JWT']: more than one issuer has ACCEPT_WITHOUT_ISS."
    ]


def test_an_integer_user_id_of_older_simplejwt() -> None:
    import jwt

    user = make_user("sam")
    claims = jwt.decode(str(tokens_for(user).access_token), options={"verify_signature": False})
    older = jwt.encode({**claims, "user_id": user.pk}, settings.SECRET_KEY, "HS256")
    assert call(Client(), older, "/v1/whoami").json()["user"] == "sam"
