"""``python -m bench [NAME ...] [--n N]``: run the benchmarks (all by default)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from bench import auth, throttle
from bench.redis_server import temporary_redis

BENCHMARKS: dict[str, Callable[..., Any]] = {"auth": auth.run, "throttle": throttle.run}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], metavar="NAME")
    parser.add_argument("--n", type=int, default=None, help="Requests per round.")
    args = parser.parse_args()
    if os.environ.get("REDIS_URL"):
        run_all(args.names, args.n)
    else:
        with temporary_redis() as url:
            os.environ["REDIS_URL"] = url
            run_all(args.names, args.n)


def run_all(names: list[str], n: int | None) -> None:
    for name in names or list(BENCHMARKS):
        BENCHMARKS[name](**({"n": n} if n else {}))


if __name__ == "__main__":
    main()
