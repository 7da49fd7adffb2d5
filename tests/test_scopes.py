"""Scopes, HasScopes, and the Credential and principal views depend on."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from rest_framework.exceptions import NotAuthenticated
from rest_framework.generics import GenericAPIView
from rest_framework.request import ForcedAuthentication, Request
from rest_framework.response import Response

from apiauth import scopes
from apiauth.credentials import Credential, MachinePrincipal, get_credential
from apiauth.errors import InsufficientScope
from apiauth.permissions import HasScopes
from tests.factories import make_key
from tests.testapp.views import OrderSerializer


def credential(*granted: str, owner: Any = None) -> Credential:
    return Credential(
        kind="api_key",
        id="PUBLIC123456",
        scopes=frozenset(granted),
        plan=None,
        owner=owner,
        expires_at=None,
        lineage="lineage-1",
    )


class TestScopes:
    @pytest.mark.parametrize(
        "scope", ["orders:read", "orders:*", "*", "a", "orders:refunds:write", "v1.orders:read"]
    )
    def test_valid(self, scope: str) -> None:
        scopes.validate_scope(scope)

    @pytest.mark.parametrize(
        "scope",
        ["", "Orders:read", "orders:", ":read", "orders:*:read", "orders read", "x" * 101, "ö:r"],
    )
    def test_invalid(self, scope: str) -> None:
        with pytest.raises(ValidationError):
            scopes.validate_scope(scope)

    def test_parse_splits_dedupes_and_sorts(self) -> None:
        assert scopes.parse_scopes("b:x, a:y  b:x\n") == ["a:y", "b:x"]
        assert scopes.parse_scopes(["a:y", " a:y "]) == ["a:y"]
        assert scopes.parse_scopes("") == []

    @pytest.mark.parametrize(
        ("required", "granted", "ok"),
        [
            ("orders:read", ["orders:read"], True),
            ("orders:read", ["orders:write"], False),
            ("orders:read", ["orders:*"], True),
            ("orders:refunds:write", ["orders:*"], True),
            ("ordersx:read", ["orders:*"], False),
            ("orders", ["orders:*"], False),
            ("anything:at:all", ["*"], True),
            ("orders:read", [], False),
        ],
    )
    def test_matching(self, required: str, granted: list[str], ok: bool) -> None:
        assert scopes.scope_granted(required, granted) is ok

    def test_missing(self) -> None:
        assert scopes.missing_scopes(["a:r", "b:r"], ["a:*"]) == ["b:r"]
        assert scopes.granted_scopes(["b:r", "a:r", "a:w"], ["a:*"]) == ["a:r", "a:w"]


class View:
    def __init__(self, required: Any) -> None:
        self.required_scopes = required


def drf_request(method: str, cred: Credential | None) -> Request:
    user = MachinePrincipal(cred) if cred else None
    # The stubs type ForcedAuthentication for users and token strings only.
    forced: Any = ForcedAuthentication(user, cred)  # type: ignore[arg-type]
    return Request(RequestFactory().generic(method, "/"), authenticators=[forced])


class TestHasScopes:
    def test_no_declaration_allows(self) -> None:
        assert HasScopes().has_permission(drf_request("GET", credential()), object())

    def test_list_applies_to_every_method(self) -> None:
        view = View(["a:r"])
        assert HasScopes().has_permission(drf_request("POST", credential("a:r")), view)
        with pytest.raises(InsufficientScope) as info:
            HasScopes().has_permission(drf_request("GET", credential()), view)
        # RFC 7235: a bare scheme is followed by a space, never a comma.
        assert info.value.auth_header == 'Bearer error="insufficient_scope", scope="a:r"'

    def test_challenge_with_parameters(self) -> None:
        error = InsufficientScope(["a:r", "b:w"], 'Api-Key realm="api"')
        assert error.auth_header == (
            'Api-Key realm="api", error="insufficient_scope", scope="a:r b:w"'
        )
        assert InsufficientScope(["a:r"], " Bearer ").auth_header.startswith("Bearer error=")

    def test_dict_per_method_with_head_and_star_fallbacks(self) -> None:
        view = View({"GET": ["a:r"], "*": ["a:w"]})
        perm = HasScopes()
        assert perm.has_permission(drf_request("HEAD", credential("a:r")), view)
        assert perm.has_permission(drf_request("PATCH", credential("a:w")), view)
        with pytest.raises(InsufficientScope):
            perm.has_permission(drf_request("PATCH", credential("a:r")), view)

    def test_dict_without_the_method_refuses(self) -> None:
        view = View({"GET": ["a:r"]})
        assert not HasScopes().has_permission(drf_request("DELETE", credential("*")), view)

    def test_empty_requirement_allows(self) -> None:
        assert HasScopes().has_permission(drf_request("GET", credential()), View({"GET": []}))

    def test_anonymous_is_refused(self) -> None:
        assert not HasScopes().has_permission(drf_request("GET", None), View(["a:r"]))


class TestPrincipal:
    def test_machine_principal(self) -> None:
        principal = MachinePrincipal(credential())
        assert principal.is_authenticated and not principal.is_anonymous
        assert not principal.is_staff and not principal.is_superuser
        assert not principal.has_perm("x") and not principal.has_perms(["x"])
        assert not principal.has_module_perms("apiauth")
        assert str(principal) == principal.get_username() == "api_key:PUBLIC123456"
        assert principal == MachinePrincipal(credential()) and principal != object()
        assert hash(principal) == hash(MachinePrincipal(credential()))

    def test_owner_ref(self) -> None:
        class Owner:
            pk = 7

        assert credential().owner_ref == "api_key:lineage-1"
        assert credential(owner=Owner()).owner_ref == "user:7"
        assert credential("a:*").has_scope("a:b")

    def test_get_credential(self) -> None:
        with pytest.raises(NotAuthenticated):
            get_credential(drf_request("GET", None))
        assert get_credential(drf_request("GET", credential())).id == "PUBLIC123456"


class TestScopeMessages:
    def test_invalid_scope(self) -> None:
        with pytest.raises(ValidationError) as excinfo:
            scopes.validate_scope("Orders Read")
        assert excinfo.value.code == "invalid_scope"
        assert excinfo.value.messages == [
            "“Orders Read” is not a valid scope: use lowercase words joined by colons, such as "
            "orders:read, optionally ending in :* as a wildcard."
        ]

    def test_length_bound(self) -> None:
        longest = "a" * scopes.MAX_SCOPE_LENGTH
        scopes.validate_scope(longest)
        with pytest.raises(ValidationError):
            scopes.validate_scope(longest + "a")

    def test_blank_list_items_are_dropped(self) -> None:
        assert scopes.parse_scopes(["b:r", " ", "", "a:r"]) == ["a:r", "b:r"]

    def test_unknown_scope(self, settings: Any) -> None:
        settings.APIAUTH = {"SCOPES": {"a:r": "Read a"}}
        with pytest.raises(ValidationError) as excinfo:
            scopes.parse_scopes(["z:w", "a:r", "b:r"])
        assert excinfo.value.code == "unknown_scope"
        assert excinfo.value.messages == [
            "Unknown scope(s): b:r, z:w. Choose among those in APIAUTH['SCOPES']."
        ]


class OrderForm(GenericAPIView):  # type: ignore[type-arg]
    """A view whose OPTIONS answer describes its POST form to those who may POST."""

    serializer_class = OrderSerializer
    required_scopes = {"GET": ["orders:read"], "OPTIONS": [], "POST": ["orders:write"]}

    def get(self, request: Request) -> Response:
        return Response({})

    def post(self, request: Request) -> Response:
        return Response({}, status=201)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("granted", "described"), [(["orders:read"], False), (["orders:write"], True)]
)
def test_a_form_is_described_only_to_who_may_send_it(granted: list[str], described: bool) -> None:
    """DRF's metadata asks the permissions about a clone of the request "as POST": the scopes
    judged are POST's, not those of the OPTIONS request that carries it."""
    _key, raw = make_key(scopes=granted)
    response = OrderForm.as_view()(RequestFactory().options("/", HTTP_X_API_KEY=raw))
    assert response.status_code == 200
    assert ("POST" in response.data.get("actions", {})) is described
