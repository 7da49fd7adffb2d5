"""The benchmark command runs end to end (tiny n: this checks it works, not how fast)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    """Six gunicorn sites, wrk, /proc (redis-server's CPU too): one short round each (`make
    test` installs wrk)."""
    output = run_bench(tmp_path, "e2e", "--rounds", "1", "--seconds", "1", "--same-middleware")
    for label in ("ours (apiauth demo)", "anchor", "DRF floor (APIView", "floor (plain view"):
        assert label in output
    assert "redis-server µs/req" in output and "server + store" in output
    assert "DRF floor/ours" in output and "(goal ≥ 1.2)" in output and "anchor/ours" in output
    assert "DRF floor, the demo's middleware" in output
    assert "with the demo's middleware on every contender (the goals' floor has ours)" in output
    rows = [
        line
        for line in output.splitlines()
        if line.startswith(("ours", "anchor", "floor", "DRF floor"))
    ]
    assert all(row.split()[-1] == "0" for row in rows), output  # no non-2xx anywhere


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
    for step in ("bare:", "round trip:", "DRF floor:", "key:", "scoped:", "ours:"):
        assert step in output
    assert "What each adds" in output and "Were nothing of ours left" in output


def test_e2e_counts_a_local_postgres_server(tmp_path: Path) -> None:
    """The database's CPU is read from /proc for a PostgreSQL server on this machine, and
    from nothing otherwise (SQLite runs in the server's own process)."""
    from bench import e2e

    assert e2e._postgres_pid("sqlite:///db.sqlite3") is None
    assert e2e._tree_cpu(None) == 0.0
    assert e2e._tree_cpu(os.getpid()) > 0.0
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        pid = e2e._postgres_pid(url)
        assert pid is not None and Path(f"/proc/{pid}/stat").exists()
        assert e2e._tree_cpu(pid) > 0.0
