"""The benchmark command runs end to end (tiny n: this checks it works, not how fast)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_bench(tmp_path: Path, *args: str) -> str:
    env = {**os.environ, "BENCH_DIR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("REDIS_URL", None)  # the benchmark starts its own redis-server
    result = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_auth_benchmark_runs(tmp_path: Path) -> None:
    output = run_bench(tmp_path, "auth", "--n", "20")
    for label in (
        "apiauth APIKeyAuthentication",
        "djangorestframework-api-key HasAPIKey",
        "DRF TokenAuthentication",
        "malformed key",
    ):
        assert label in output


def test_throttle_benchmark_runs(tmp_path: Path) -> None:
    output = run_bench(tmp_path, "throttle", "--n", "30")
    assert "DRF ScopedRateThrottle" in output and "django-ratelimit" in output
    over = [line for line in output.splitlines() if line.startswith("apiauth")][-1]
    assert over.split()[-1] == "0"  # apiauth never admits more than the limit


def test_hmac_benchmark_runs(tmp_path: Path) -> None:
    output = run_bench(tmp_path, "hmac", "--n", "20")
    assert "HMAC (SigV4) verification" in output
    assert "apiauth HMACAuthentication, 64 KB POST" in output
    # No query per request once the worker holds the credential.
    rows = [line for line in output.splitlines() if line.startswith("apiauth")]
    assert rows and all(line.rstrip().endswith(" 0") for line in rows)


def test_e2e_benchmark_runs(tmp_path: Path) -> None:
    """Seven gunicorn sites, wrk, /proc (redis-server's CPU too): one short round each (`make
    test` installs wrk)."""
    output = run_bench(tmp_path, "e2e", "--rounds", "1", "--seconds", "1", "--same-middleware")
    for label in ("ours (apiauth demo)", "anchor", "DRF floor (APIView", "floor (plain view"):
        assert label in output
    assert "redis-server µs/req" in output and "server + store" in output
    assert "DRF floor/ours" in output and "(goal ≥ 1.2" in output and "(goal ≥ 2.0" in output
    assert "DRF floor, the demo's middleware" in output
    assert "with the demo's middleware on every contender: DRF floor/ours" in output
    assert "paired by round" in output and "DRF floor/ours by round: " in output
    assert "no-query floor, the demo's middleware" in output
    assert "the ceiling, over the no-query floor on the demo's middleware" in output
    rows = [
        line
        for line in output.splitlines()
        if line.startswith(("ours", "anchor", "floor", "DRF floor"))
    ]
    assert all(row.split()[-1] == "0" for row in rows), output  # no non-2xx anywhere


def test_noise_benchmark_runs(tmp_path: Path) -> None:
    """The A/A run: the demo served twice, as `python -m bench e2e` serves it."""
    output = run_bench(tmp_path, "noise", "--rounds", "1", "--seconds", "1")
    assert "A/A: the demo served twice, 1 rounds" in output
    assert "ratio of the medians" in output and "paired by round: median" in output


def test_jwt_benchmark_runs(tmp_path: Path) -> None:
    output = run_bench(tmp_path, "jwt", "--n", "20")
    assert "JWT verification" in output
    for alg in ("RS256", "ES256", "EdDSA"):
        assert f"simplejwt JWTAuthentication, {alg}" in output
    # No query per request for a token we issued.
    rows = [line for line in output.splitlines() if line.lstrip().startswith(("apiauth", "of"))]
    assert len(rows) == 9 and all(line.rstrip().endswith(" 0") for line in rows)


def test_breakdown_benchmark_runs(tmp_path: Path) -> None:
    """Every step of the demo's request answers 200 (the run stops on anything else)."""
    output = run_bench(tmp_path, "breakdown", "--n", "20", "--rounds", "1")
    steps = ("bare:", "round trip:", "own trip:", "no-query floor:", "DRF floor:", "key:")
    for step in (*steps, "throttled:", "scoped:", "ours:"):
        assert step in output
    assert "What each adds" in output and "on our connection" in output
    assert "makes no query and checks nothing" in output


def test_breakdown_experiments_run(tmp_path: Path) -> None:
    """The two experiments on our connection's round trip run every step to a 200 too."""
    for trip in ("replayed", "polled", "polluted"):
        output = run_bench(tmp_path, "breakdown", "--n", "20", "--rounds", "1", "--trip", trip)
        assert f"Trip {trip}:" in output and "What each adds" in output


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_instructions_benchmark_runs(tmp_path: Path) -> None:
    """Each step's requests are counted under callgrind: the floors and ours all executed
    something, and ours more than the no-query floor."""
    output = run_bench(tmp_path, "instructions", "--n", "3")
    counts = {
        line.split(":")[0]: int(line.split()[-1].replace(",", ""))
        for line in output.splitlines()
        if line.startswith(("no-query floor:", "DRF floor:", "throttled:", "ours:"))
    }
    assert len(counts) == 4 and all(count > 100_000 for count in counts.values())
    assert counts["ours"] > counts["no-query floor"]
    assert "DRF floor/ours in instructions" in output


def test_e2e_reads_cpu_from_proc() -> None:
    from bench import e2e

    assert e2e._postgres_pid("sqlite:///db.sqlite3") is None  # SQLite runs in the server
    assert e2e._tree_cpu(None) == 0.0 and e2e._cpu_of(None) == 0.0
    assert e2e._tree_cpu(os.getpid()) > 0.0


@pytest.mark.skipif(
    not os.environ.get("POSTGRES_OWN_SERVER"),
    reason="a PostgreSQL server of the suite's own on this machine (.ci/with-postgres)",
)
def test_e2e_finds_the_local_postgres_server() -> None:
    from bench import e2e

    pid = e2e._postgres_pid(os.environ["DATABASE_URL"])
    assert pid is not None and Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    assert e2e._tree_cpu(pid) > 0.0


def test_e2e_report_judges_each_goal_on_its_own_comparison(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The DRF floor's goal on the demo's middleware, the anchor's on its own; with the
    database's CPU, a second line that counts it (synthetic rounds: the arithmetic only)."""
    from bench import e2e

    costs = [  # server, store, database per request; the order bench e2e runs them in
        ("ours", 90, 10, 0),
        ("anchor", 240, 10, 50),
        ("DRF floor", 120, 10, 50),
        ("floor", 100, 10, 50),
        ("anchor, the demo's middleware", 250, 10, 50),
        ("DRF floor, the demo's middleware", 130, 10, 50),
        ("no-query floor, the demo's middleware", 70, 10, 0),
    ]
    sites = []
    for name, server, store, database in costs:
        site = e2e.Site(name, name, "wsgi", {})
        site.cpu_us, site.store_us, site.database_us = [server], [store], [database]
        site.rps = [1000.0]
        sites.append(site)
    ratios = e2e.report(sites, 1, 1.0, 16, database=True)
    out = capsys.readouterr().out
    assert "anchor/ours 2.50 (goal ≥ 2.0" in out
    assert "with the demo's middleware on every contender: DRF floor/ours 1.40 (goal ≥ 1.2" in out
    assert "anchor/ours 2.60;" in out
    assert "(server + store + database): DRF floor/ours 1.80, anchor/ours 3.00" in out
    assert "with the demo's middleware: DRF floor/ours 1.90, anchor/ours 3.10" in out
    assert ratios["DRF floor/ours, same middleware"] == pytest.approx(1.4)
    # The floor without its query: 140/80, ours 20 over it, and 1.2 would leave 140/1.2 - 80.
    assert (
        "DRF floor/no-query floor 1.75 (paired by round 1.75) and anchor/no-query floor 3.12" in out
    )
    assert (
        "ours costs 20 µs over that floor (25%), and DRF floor/ours ≥ 1.2 leaves 37 µs (46%)" in out
    )
    assert ratios["DRF floor/no-query floor"] == pytest.approx(1.75)


def test_store_benchmark_runs(tmp_path: Path) -> None:
    """Each script runs inside redis-server, every call admitted (the command fails on a
    refusal), and each row reports the time spent in the script."""
    output = run_bench(tmp_path, "store", "--n", "3000", "--rounds", "1")
    rows = [line for line in output.splitlines() if line.startswith(("the DRF floor:", "ours:"))]
    assert len(rows) == 4
    assert all(float(row.split()[-4]) > 0 for row in rows)
