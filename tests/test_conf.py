"""``apiauth.conf``: typed sub-settings and derived values, read once per settings change."""

from __future__ import annotations

import dataclasses

import pytest
from django.conf import settings
from django.test import override_settings

from apiauth.conf import HMAC_DEFAULTS, JWT_DEFAULTS, HMACSettings, JWTSettings, conf


def test_the_typed_settings_are_read_once_and_again_after_a_change() -> None:
    first = conf.jwt
    assert conf.jwt is first
    with override_settings(APIAUTH={**settings.APIAUTH, "JWT": {"LEEWAY": "7"}}):
        assert conf.jwt is not first
        assert conf.jwt.leeway == 7.0
        assert conf.jwt.access_token_lifetime == JWT_DEFAULTS["ACCESS_TOKEN_LIFETIME"]
    assert conf.jwt == first


def test_the_hmac_settings_are_typed() -> None:
    with override_settings(
        APIAUTH={**settings.APIAUTH, "HMAC": {"REGIONS": ["eu", "us"], "MAX_BODY_SIZE": "10"}}
    ):
        assert conf.hmac.regions == frozenset({"eu", "us"})
        assert conf.hmac.max_body_size == 10
        assert conf.hmac.service == HMAC_DEFAULTS["SERVICE"]


@pytest.mark.parametrize(
    ("typed", "defaults"), [(JWTSettings, JWT_DEFAULTS), (HMACSettings, HMAC_DEFAULTS)]
)
def test_every_setting_has_its_field(typed: type, defaults: dict[str, object]) -> None:
    assert {field.name.upper() for field in dataclasses.fields(typed)} == set(defaults)


def test_a_derived_value_is_built_once_per_settings() -> None:
    built: list[int] = []

    def build() -> int:
        built.append(1)
        return len(built)

    assert conf.derive(build) == conf.derive(build) == 1
    with override_settings(APIAUTH={**settings.APIAUTH, "REALM": "other"}):
        assert conf.derive(build) == 2
    assert conf.derive(build) == 3  # the change back is a change too


def test_a_scalar_setting_is_read_once_converted_and_again_after_a_change() -> None:
    with override_settings(APIAUTH={**settings.APIAUTH, "MAX_CREDENTIAL_LENGTH": "300"}):
        assert conf.MAX_CREDENTIAL_LENGTH == 300  # converted to the setting's type
        # Kept as a plain attribute: later reads run no code.
        assert conf.__dict__["MAX_CREDENTIAL_LENGTH"] == 300
        with override_settings(APIAUTH={**settings.APIAUTH, "MAX_CREDENTIAL_LENGTH": 40}):
            assert "MAX_CREDENTIAL_LENGTH" not in conf.__dict__
            assert conf.MAX_CREDENTIAL_LENGTH == 40
        assert conf.MAX_CREDENTIAL_LENGTH == 300
    assert settings.APIAUTH.get("MAX_CREDENTIAL_LENGTH", 512) == conf.MAX_CREDENTIAL_LENGTH


def test_the_key_header_is_named_as_wsgi_names_it_until_the_settings_change() -> None:
    with override_settings(APIAUTH={**settings.APIAUTH, "KEY_HEADER": "X-Client-Key"}):
        assert conf.key_meta_name == "HTTP_X_CLIENT_KEY"
        with override_settings(APIAUTH={**settings.APIAUTH, "KEY_HEADER": "Api-Token"}):
            assert conf.key_meta_name == "HTTP_API_TOKEN"
        assert conf.key_meta_name == "HTTP_X_CLIENT_KEY"
