"""Field validators of the credential models (referenced by the migrations by these paths)."""

from __future__ import annotations

import unicodedata
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apiauth.conf import conf
from apiauth.net import parse_networks
from apiauth.scopes import parse_scopes


def validate_scopes(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(_("Scopes must be a list of strings."), code="invalid_scopes")
    parse_scopes(value)


def validate_networks(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(_("Allowed IPs must be a list of strings."), code="invalid_networks")
    parse_networks(value)


# Control, format (bidi overrides), separator and private characters: they reach operators'
# terminals through the commands' output, or disguise one name as another.
FORBIDDEN_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})


def validate_name(value: str) -> None:
    if any(unicodedata.category(char) in FORBIDDEN_NAME_CATEGORIES for char in value):
        raise ValidationError(
            _("Names may not contain control characters, line breaks or invisible formatting."),
            code="invalid_name",
        )


def validate_plan(value: str) -> None:
    if value and value not in conf.PLANS:
        raise ValidationError(
            _("Unknown plan “%(plan)s”: choose one of the plans in APIAUTH['PLANS'].")
            % {"plan": value},
            code="unknown_plan",
        )
