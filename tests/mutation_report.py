"""Per-module mutation score from mutmut's results: ``python -m tests.mutation_report``.

Reads ``mutants/**/*.py.meta`` (written by ``mutmut run``), prints killed/total per module and
the surviving mutants (``--diff``: with the lines each one changed), and exits non-zero when a
module scores below ``THRESHOLD``.
"""

from __future__ import annotations

import ast
import difflib
import json
import sys
from collections import defaultdict
from pathlib import Path

THRESHOLD = 0.90
# mutmut's exit codes: 0 survived (the tests passed with the mutant), 5 no test ran it,
# 33/34 skipped, None not run yet; anything else failed the tests: killed (a timeout too).
SURVIVED = {0, 5}
NOT_COUNTED = {None, 33, 34}


def main(root: Path = Path("mutants"), diff: bool = False) -> int:
    killed: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    survivors: dict[str, list[str]] = defaultdict(list)
    for meta in sorted(root.rglob("*.py.meta")):
        module = meta.relative_to(root).as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in sorted(codes.items(), key=lambda item: _order(item[0])):
            if code in NOT_COUNTED:
                continue
            total[module] += 1
            if code in SURVIVED:
                survivors[module].append(name)
            else:
                killed[module] += 1
    if not total:
        print("No results: run `mutmut run` first.")
        return 1
    failing = []
    print(f"{'module':36} {'killed':>7} {'total':>6} {'score':>7}")
    for module in sorted(total):
        score = killed[module] / total[module]
        print(f"{module:36} {killed[module]:>7} {total[module]:>6} {score:>7.1%}")
        if score < THRESHOLD:
            failing.append(module)
    for module, names in sorted(survivors.items()):
        print(f"\nSurvivors in {module} ({len(names)}): `mutmut show NAME` prints one")
        functions = _functions(root / module) if diff else {}
        for name in names:
            print(f"  {name}")
            for line in _changed(functions, name.rpartition(".")[2]):
                print(f"      {line}")
    if failing:
        print(f"\nBelow {THRESHOLD:.0%}: {', '.join(failing)}")
        return 1
    return 0


def _functions(path: Path) -> dict[str, str]:
    """Source of every function (methods too) in a mutated file, by name."""
    source = path.read_text()
    return {
        node.name: ast.get_source_segment(source, node) or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef)
    }


def _changed(functions: dict[str, str], mutant: str) -> list[str]:
    original = functions.get(mutant.rpartition("__mutmut_")[0] + "__mutmut_orig", "")
    mutated = functions.get(mutant, "")
    lines = difflib.unified_diff(original.splitlines()[1:], mutated.splitlines()[1:], n=0)
    return [line.strip() for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def _order(name: str) -> tuple[str, int]:
    head, _, number = name.rpartition("_")
    return head, int(number) if number.isdigit() else 0


if __name__ == "__main__":
    sys.exit(main(diff="--diff" in sys.argv[1:]))
