"""The benchmark command runs end to end (tiny n: this checks it works, not how fast)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_auth_benchmark_runs(tmp_path: Path) -> None:
    env = {**os.environ, "BENCH_DIR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "bench", "auth", "--n", "20"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for label in (
        "apiauth APIKeyAuthentication",
        "djangorestframework-api-key HasAPIKey",
        "DRF TokenAuthentication",
        "malformed key",
    ):
        assert label in result.stdout


def test_throttle_benchmark_runs(tmp_path: Path) -> None:
    env = {**os.environ, "BENCH_DIR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("REDIS_URL", None)  # the benchmark starts its own redis-server
    result = subprocess.run(
        [sys.executable, "-m", "bench", "throttle", "--n", "30"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "DRF ScopedRateThrottle" in result.stdout and "django-ratelimit" in result.stdout
    over = [line for line in result.stdout.splitlines() if line.startswith("apiauth")][-1]
    assert over.split()[-1] == "0"  # apiauth never admits more than the limit
