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
