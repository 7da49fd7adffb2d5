"""``python -m bench [NAME ...] [--n N]``: run the benchmarks (all by default)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from bench import auth

BENCHMARKS: dict[str, Callable[..., Any]] = {"auth": auth.run}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], metavar="NAME")
    parser.add_argument("--n", type=int, default=None, help="Requests per round.")
    args = parser.parse_args()
    for name in args.names or list(BENCHMARKS):
        kwargs = {"n": args.n} if args.n else {}
        BENCHMARKS[name](**kwargs)


if __name__ == "__main__":
    main()
