"""Revocation races fills across processes and never loses (see ``tests/race.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RedisServer
from tests.databases import scratch_database
from tests.race import AFTER, BEFORE, KEYS

ROOT = Path(__file__).resolve().parent.parent


def run_race(tmp_path: Path, redis_server: RedisServer, plant: bool) -> tuple[int, dict[str, int]]:
    tmp_path.mkdir(exist_ok=True)
    with scratch_database(tmp_path) as database_url:
        return _run_race(database_url, redis_server, plant)


def _run_race(
    database_url: str, redis_server: RedisServer, plant: bool
) -> tuple[int, dict[str, int]]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.race",
        "RACE_DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
    }
    if plant:
        env["RACE_PLANT"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "tests.race"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db
def test_a_fill_racing_a_revocation_never_resurrects_the_key(
    tmp_path: Path, _redis: RedisServer
) -> None:
    code, summary = run_race(tmp_path, _redis, plant=False)
    assert summary["resurrected"] == 0, summary
    assert code == 0
    # The race was real: requests on both sides of every revocation (the script waits for
    # BEFORE admitted requests per key before revoking it, and AFTER requests started after).
    assert summary["ok_before_revocation"] >= KEYS * BEFORE, summary
    assert summary["after_revocation"] >= KEYS * AFTER, summary


@pytest.mark.django_db
def test_the_race_catches_a_fill_that_reads_the_row_first(
    tmp_path: Path, _redis: RedisServer
) -> None:
    """The race test has teeth: one run catches the planted bug about 19 times in 20."""
    for attempt in range(3):
        code, summary = run_race(tmp_path / str(attempt), _redis, plant=True)
        if summary["resurrected"]:
            assert code == 1
            return
    pytest.fail(f"three runs missed the planted resurrection: {summary}")
