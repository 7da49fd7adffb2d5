"""The client address: trusted proxies, forwarding headers, networks and allowlists."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory, override_settings

from apiauth import net


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
    def test_garbage_hop_leaves_no_client_address(self) -> None:
        """Never the proxy: that would make every client an internal host."""
        for garbage in (
            "garbage",
            "unknown",
            "_hidden",
            "203.0.113.9:http",
            "[2001:db8::1",
            "203.0.113.9:123456",
            "1.2.3.4%eth0",
            "x" * 1000,
            "",
        ):
            assert self.ip("10.0.0.1", f"203.0.113.9, {garbage}") is None, garbage
        assert self.ip("10.0.0.1", "") == "10.0.0.1"  # no header: the proxy itself asks

    @override_settings(APIAUTH={"TRUSTED_PROXIES": ["127.0.0.1/32"]})
    @pytest.mark.parametrize(
        ("hop", "client"),
        [
            ("203.0.113.9:4711", "203.0.113.9"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            (" 203.0.113.9 ", "203.0.113.9"),
            ("fe80::1%eth0", "fe80::1"),
            ("[fe80::1%25eth0]:80", "fe80::1"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
            ("unknown", None),
        ],
    )
    def test_address_forms(self, hop: str, client: str | None) -> None:
        assert self.ip("127.0.0.1", hop) == client

    @override_settings(
        APIAUTH={"TRUSTED_PROXIES": ["10.0.0.0/24"], "CLIENT_IP_HEADER": "Forwarded"}
    )
    def test_rfc_7239_forwarded(self) -> None:
        def ip(value: str) -> str | None:
            request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_FORWARDED=value)
            return net.get_client_ip(request)

        assert ip("for=192.0.2.60;proto=http;by=203.0.113.43") == "192.0.2.60"
        assert ip('for="[2001:db8:cafe::17]:4711"') == "2001:db8:cafe::17"
        assert ip("for=198.51.100.1, for=192.0.2.43, for=10.0.0.9") == "192.0.2.43"
        assert ip('For="192.0.2.43:47011";by="x,y", for=10.0.0.9') == "192.0.2.43"
        assert ip('for=192.0.2.43;by="a\\",b", for=10.0.0.9') == "192.0.2.43"
        assert ip("for=unknown") is None
        assert ip("for=_hidden, for=10.0.0.9") is None
        assert ip("proto=https") is None  # an element without for
        assert ip("for=192.0.2.1;;") is None  # malformed pairs
        # A client's unclosed quote cannot swallow the element our proxy appended.
        assert ip('for=", for=192.0.2.9') == "192.0.2.9"
        assert ip('for=1.1.1.1;x=", for=192.0.2.9') == "192.0.2.9"
        assert ip('for="[2001:db8::1]:80", for="[2001:db8::2]"') == "2001:db8::2"
        assert ip(", ".join(["for=10.0.0.9"] * 30)) == "10.0.0.9"  # all trusted: the left-most read

    @override_settings(
        APIAUTH={"TRUSTED_PROXIES": ["10.0.0.0/24"], "CLIENT_IP_HEADER": "Forwarded"}
    )
    def test_forwarded_parsing_is_linear(self) -> None:
        """A pair regex whose parts overlapped took seconds for a 32 KB header of spaces."""
        import time

        hostile = ", ".join(["for=a" + " " * 8000 + '"x"'] * 8) + ", for=192.0.2.9"
        request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_FORWARDED=hostile)
        started = time.perf_counter()
        assert net.get_client_ip(request) == "192.0.2.9"
        # Only the right-most 4 KB are read.
        assert net.forwarded_for(hostile) == [None, "192.0.2.9"]
        assert net._FORWARDED_PAIR_RE.fullmatch("for=a" + " " * 50_000 + '"x"') is None
        assert time.perf_counter() - started < 0.5
        # X-Forwarded-For is not read when Forwarded is the configured header.
        request = RequestFactory().get(
            "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.99"
        )
        assert net.get_client_ip(request) == "10.0.0.1"

    @override_settings(
        APIAUTH={"TRUSTED_PROXIES": ["10.0.0.0/24"], "CLIENT_IP_HEADER": "X-Real-IP"}
    )
    def test_single_address_header(self) -> None:
        def ip(remote: str, value: str) -> str | None:
            request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_REAL_IP=value)
            return net.get_client_ip(request)

        assert ip("10.0.0.1", "192.0.2.7") == "192.0.2.7"
        assert ip("10.0.0.1", "192.0.2.7, 192.0.2.8") is None
        assert ip("192.0.2.1", "10.9.9.9") == "192.0.2.1"  # not from our proxy: ignored

    @override_settings(APIAUTH={"TRUSTED_PROXIES": ["unix"]})
    def test_unix_socket_peer(self) -> None:
        assert self.ip("", "192.0.2.7") == "192.0.2.7"
        assert self.ip("", "192.0.2.7, 192.0.2.8") == "192.0.2.8"
        assert self.ip("") is None  # nothing says who the client is
        assert self.ip("192.0.2.1", "10.0.0.1") == "192.0.2.1"  # a TCP peer is not trusted

    def test_no_remote_addr_without_unix_trust(self, caplog: pytest.LogCaptureFixture) -> None:
        net.requests_without_address = 0
        with caplog.at_level(logging.WARNING, logger="apiauth"):
            assert self.ip("", "192.0.2.7") is None
            assert self.ip("", "192.0.2.7") is None
        assert net.requests_without_address == 2
        assert caplog.text.count("apiauth.W009") == 1

    def test_client_key(self) -> None:
        assert net.client_key("192.0.2.1") == "192.0.2.1"
        assert net.client_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
        assert net.client_key(None) == "unknown"

    @override_settings(APIAUTH={"TRUSTED_PROXIES": ["10.0.0.0/24"]})
    def test_all_hops_trusted(self) -> None:
        assert self.ip("10.0.0.1", "10.0.0.7") == "10.0.0.7"

    def test_cached_on_the_request(self) -> None:
        request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1")
        assert net.get_client_ip(request) == "192.0.2.1"
        request.META["REMOTE_ADDR"] = "192.0.2.2"
        assert net.get_client_ip(request) == "192.0.2.1"


class TestParseNetwork:
    def test_normalised(self) -> None:
        assert str(net.parse_network(" 10.1.2.3/8 ")) == "10.0.0.0/8"  # host bits dropped
        assert str(net.parse_network("2001:db8::1")) == "2001:db8::1/128"
        assert net.parse_networks("10.0.0.1, 10.0.0.1\n192.0.2.0/24") == [
            "10.0.0.1/32",
            "192.0.2.0/24",
        ]

    def test_refused_with_its_value_and_code(self) -> None:
        with pytest.raises(ValidationError) as excinfo:
            net.parse_network("x" * 100)
        error = excinfo.value
        assert error.code == "invalid_network"
        assert error.messages == [f"“{'x' * 64}” is not an IPv4 or IPv6 address or CIDR network."]


class TestForwardedEdges:
    def test_commas_at_the_edges_and_without_spaces(self) -> None:
        assert net.forwarded_for("x,for=192.0.2.9") == [None, "192.0.2.9"]
        assert net.forwarded_for(",for=192.0.2.9") == [None, "192.0.2.9"]
        assert net.forwarded_for("for=192.0.2.9,") == ["192.0.2.9", None]
        assert net.forwarded_for("for=192.0.2.8,for=192.0.2.9") == ["192.0.2.8", "192.0.2.9"]
        assert net.forwarded_for("proto=https") == [None]
        assert net.forwarded_for("") == [None]

    def test_at_most_twenty_hops(self) -> None:
        hops = net.forwarded_for(", ".join(f"for=192.0.2.{i}" for i in range(30)))
        assert hops == [f"192.0.2.{i}" for i in range(10, 30)]

    def test_longest_address_accepted(self) -> None:
        scoped = "fe80::1%" + "a" * 56
        assert len(scoped) == net.MAX_ADDRESS_LENGTH
        assert str(net.parse_address(scoped)) == "fe80::1"
        assert net.parse_address(scoped + "a") is None
        assert net.parse_address('""') is None

    def test_unparseable_remote_addr_is_no_address(self) -> None:
        request = RequestFactory().get("/", REMOTE_ADDR="garbage")
        assert net.get_client_ip(request) is None

    def test_the_no_address_warning_comes_with_the_first_request(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        net.requests_without_address = 0
        with caplog.at_level(logging.WARNING, logger="apiauth"):
            net.get_client_ip(RequestFactory().get("/", REMOTE_ADDR=""))
            assert [r.getMessage() for r in caplog.records] == [
                "apiauth.W009: a request arrived with no REMOTE_ADDR (a unix socket?) and "
                "APIAUTH['TRUSTED_PROXIES'] does not trust 'unix': its client address is unknown."
            ]
            for _ in range(2):
                net.get_client_ip(RequestFactory().get("/", REMOTE_ADDR=""))
        assert len(caplog.records) == 1 and net.requests_without_address == 3
