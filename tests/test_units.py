"""Unit tests for the pure parts: scopes, networks, client address, permissions, principal."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory, override_settings
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import ForcedAuthentication, Request

from apiauth import net, scopes
from apiauth.credentials import Credential, MachinePrincipal, get_credential
from apiauth.errors import InsufficientScope
from apiauth.permissions import HasScopes


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


class TestNetworks:
    def test_parse_networks_normalises(self) -> None:
        assert net.parse_networks("10.1.2.3/8, 192.0.2.1 2001:db8::1/32") == [
            "10.0.0.0/8",
            "192.0.2.1/32",
            "2001:db8::/32",
        ]
        assert net.parse_networks(["10.0.0.0/8", "10.0.0.0/8", " "]) == ["10.0.0.0/8"]

    @pytest.mark.parametrize("value", ["10.0.0.0/33", "nope", "1.2.3", "::g", "10.0.0.0/8/8"])
    def test_parse_networks_rejects(self, value: str) -> None:
        with pytest.raises(ValidationError):
            net.parse_networks(value)

    def test_in_networks(self) -> None:
        assert net.in_networks("10.1.2.3", ["10.0.0.0/8"])
        assert not net.in_networks("11.1.2.3", ["10.0.0.0/8"])
        assert net.in_networks("::ffff:10.1.2.3", ["10.0.0.0/8"])
        assert not net.in_networks("2001:db8::1", ["10.0.0.0/8"])
        assert net.in_networks(ipaddress.ip_address("2001:db8::1"), ["2001:db8::/32"])
        assert not net.in_networks(None, ["10.0.0.0/8"])
        assert not net.in_networks("garbage", ["10.0.0.0/8"])


class TestClientIP:
    def ip(self, remote: str, forwarded: str | None = None, **kwargs: Any) -> str | None:
        request = RequestFactory().get("/", REMOTE_ADDR=remote)
        if forwarded is not None:
            request.META["HTTP_X_FORWARDED_FOR"] = forwarded
        return net.get_client_ip(request)

    def test_remote_addr_without_trusted_proxies(self) -> None:
        assert self.ip("192.0.2.1", "10.0.0.1") == "192.0.2.1"

    def test_unparseable_remote_addr(self) -> None:
        assert self.ip("") is None

    @override_settings(APIAUTH={"TRUSTED_PROXIES": ["10.0.0.0/24"]})
    def test_walks_from_the_right_past_trusted_proxies(self) -> None:
        assert self.ip("10.0.0.1", "203.0.113.9, 198.51.100.2, 10.0.0.5") == "198.51.100.2"

    @override_settings(APIAUTH={"TRUSTED_PROXIES": ["10.0.0.0/24"]})
    def test_untrusted_remote_ignores_header(self) -> None:
        assert self.ip("192.0.2.1", "203.0.113.9") == "192.0.2.1"

    @override_settings(APIAUTH={"TRUSTED_PROXIES": ["10.0.0.0/24"]})
    def test_garbage_hop_stops_the_walk(self) -> None:
        assert self.ip("10.0.0.1", "203.0.113.9, garbage") == "10.0.0.1"
        assert self.ip("10.0.0.1", "") == "10.0.0.1"

    @override_settings(APIAUTH={"TRUSTED_PROXIES": ["10.0.0.0/24"]})
    def test_all_hops_trusted(self) -> None:
        assert self.ip("10.0.0.1", "10.0.0.7") == "10.0.0.7"

    def test_cached_on_the_request(self) -> None:
        request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1")
        assert net.get_client_ip(request) == "192.0.2.1"
        request.META["REMOTE_ADDR"] = "192.0.2.2"
        assert net.get_client_ip(request) == "192.0.2.1"


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
        assert info.value.auth_header == 'Bearer, error="insufficient_scope", scope="a:r"'

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
