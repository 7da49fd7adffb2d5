"""The management commands are a contract: scripts parse their output."""

from __future__ import annotations

import datetime
import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apiauth import crypto
from apiauth.models import APIKey, AuditEvent
from tests.factories import make_key, make_user

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def create(*args: str) -> tuple[APIKey, str]:
    raw = run("apiauth_createkey", *args).splitlines()[-1]
    return APIKey.objects.get_from_key(raw), raw


def ping(raw: str) -> Any:
    return APIClient().get("/v1/ping", HTTP_X_API_KEY=raw)


class TestCreateKey:
    def test_last_line_is_a_working_key(self) -> None:
        make_user("ci-bot")
        key, raw = create(
            "--name",
            "ci",
            "--owner",
            "ci-bot",
            "--scopes",
            "orders:read, orders:write",
            "--allow-ip",
            "127.0.0.0/8,10.0.0.0/8",
            "--allow-ip",
            "::1",
            "--expires-in",
            "3600",
        )
        assert crypto.parse_key(raw, "apk").public_id == key.public_id
        assert key.owner is not None and key.owner.get_username() == "ci-bot"
        assert key.scopes == ["orders:read", "orders:write"]
        assert key.allowed_networks == ["127.0.0.0/8", "10.0.0.0/8", "::1/128"]
        assert key.expires_at is not None
        assert ping(raw).status_code == 200
        event = AuditEvent.objects.get()
        assert (event.action, event.credential_id, event.actor_repr) == (
            "issue",
            key.public_id,
            "system",
        )

    def test_expires_iso8601(self) -> None:
        key, _raw = create("--name", "x", "--expires", "2999-01-31T12:00:00+02:00")
        assert key.expires_at == datetime.datetime(2999, 1, 31, 10, tzinfo=datetime.UTC)
        key, _raw = create("--name", "y", "--expires", "2999-01-31T12:00:00")
        assert key.expires_at == datetime.datetime(2999, 1, 31, 12, tzinfo=datetime.UTC)

    @override_settings(APIAUTH={"PLANS": {"pro": {"rate": "600/min", "burst": 100}}})
    def test_plan(self) -> None:
        key, _raw = create("--name", "x", "--plan", "pro")
        assert key.plan == "pro"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--name", " "], "--name"),
            (["--name", "x", "--owner", "nobody"], "nobody"),
            (["--name", "x", "--scopes", "Bad Scope"], "scopes"),
            (["--name", "x", "--allow-ip", "10.0.0.0/33"], "allowed_networks"),
            (["--name", "x", "--allow-ip", "not-an-ip"], "allowed_networks"),
            (["--name", "x", "--expires-in", "0"], "--expires-in"),
            (["--name", "x", "--expires-in", "-5"], "--expires-in"),
            (["--name", "x", "--expires-in", str(10**12)], "--expires-in"),
            (["--name", "x", "--expires", "tomorrow"], "ISO 8601"),
            (["--name", "x", "--expires", "2001-01-01T00:00:00Z"], "future"),
            (["--name", "x", "--plan", "gold"], "plan"),
            (["--name", "x" * 101], "name"),
        ],
    )
    def test_bad_arguments_write_nothing(self, args: list[str], message: str) -> None:
        with pytest.raises(CommandError, match=message):
            run("apiauth_createkey", *args)
        assert not APIKey.objects.exists()
        assert not AuditEvent.objects.exists()

    def test_both_expiry_options_are_refused(self) -> None:
        with pytest.raises(CommandError):
            run("apiauth_createkey", "--name", "x", "--expires-in", "5", "--expires", "2999-01-01")
        assert not APIKey.objects.exists()


class TestRevokeKey:
    def test_by_raw_key(self) -> None:
        key, raw = make_key()
        output = run("apiauth_revokekey", raw, "--reason", "leaked in CI log")
        assert key.public_id in output and raw not in output
        key.refresh_from_db()
        assert key.status == "revoked" and key.revoked_reason == "leaked in CI log"
        assert ping(raw).status_code == 401
        assert AuditEvent.objects.get().action == "revoke"

    def test_by_public_id_and_idempotent(self) -> None:
        key, raw = make_key()
        run("apiauth_revokekey", key.public_id)
        assert "already revoked" in run("apiauth_revokekey", key.public_id)
        assert AuditEvent.objects.count() == 1
        assert ping(raw).status_code == 401

    def test_unknown(self) -> None:
        with pytest.raises(CommandError):
            run("apiauth_revokekey", "NOPENOPENOPE")
        raw = crypto.generate_key("apk").raw
        with pytest.raises(CommandError) as info:
            run("apiauth_revokekey", raw)
        assert raw not in str(info.value)
        with pytest.raises(CommandError):
            run("apiauth_revokekey", raw[:-1] + "x")


class TestListKeys:
    def test_table_and_json_never_show_secrets(self) -> None:
        owner = make_user("carol")
        active, raw_active = make_key(name="active one", owner=owner)
        revoked, raw_revoked = make_key(name="revoked one")
        revoked.revoke()
        expired, raw_expired = make_key(
            name="old", expires_at=timezone.now() - datetime.timedelta(days=1)
        )
        table = run("apiauth_listkeys")
        as_json = run("apiauth_listkeys", "--json")
        for key, raw in ((active, raw_active), (revoked, raw_revoked), (expired, raw_expired)):
            for output in (table, as_json):
                assert key.public_id in output
                assert raw not in output and key.key_hash not in output
        assert table.splitlines()[0].split()[:3] == ["public", "id", "name"]
        rows = json.loads(as_json)
        assert {row["status"] for row in rows} == {"active", "revoked", "expired"}
        assert [r["owner"] for r in rows if r["public_id"] == active.public_id] == ["carol"]

    @pytest.mark.parametrize(
        ("status", "expected"), [("active", 1), ("revoked", 1), ("expired", 1), ("all", 3)]
    )
    def test_status_filter(self, status: str, expected: int) -> None:
        make_key()
        make_key()[0].revoke()
        make_key(expires_at=timezone.now() - datetime.timedelta(days=1))
        assert len(json.loads(run("apiauth_listkeys", "--status", status, "--json"))) == expected

    def test_one_query(self, django_assert_num_queries: Any) -> None:
        for i in range(5):
            make_key(owner=make_user(f"u{i}"))
        with django_assert_num_queries(1):
            run("apiauth_listkeys")
