"""The app's shape: no import circle, nothing of the demo, and the documented import paths."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.utils.module_loading import import_string

APP = Path(__file__).resolve().parent.parent / "apiauth"


def modules() -> dict[str, Path]:
    found = {}
    for path in APP.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(APP.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """What ``name`` imports from the app, at import time or in a function (both must point
    down); not under ``TYPE_CHECKING``, and not a package's lazy ``__getattr__``."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        lazy = isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
        typing_only = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        if lazy or typing_only:
            skipped.update(id(sub) for sub in ast.walk(node))
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            subs = [f"{base}.{alias.name}" for alias in node.names]
            if all(sub in known for sub in subs):
                found.update(subs)  # submodules: the package itself is no dependency
            else:
                found.add(base)
                found.update(sub for sub in subs if sub in known)
    return {target for target in found if target in known and target != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_circle() -> None:
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert cycles(graph) == []
    # The store sits below what uses it: it never reaches for the cache, the models, the
    # revocation rules or the throttle.
    for name in [n for n in graph if n == "apiauth.store" or n.startswith("apiauth.store.")]:
        above = {"apiauth.cache", "apiauth.models", "apiauth.revocation"}
        assert not graph[name] & above, name
        assert not any(t.startswith("apiauth.throttling.throttle") for t in graph[name]), name


def test_the_finder_sees_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_app_never_imports_the_demo() -> None:
    for path in APP.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [alias.name for alias in node.names]
                )
                assert not any(n == "project" or n.startswith("project.") for n in names), path


@pytest.mark.parametrize(
    "path",
    [
        "apiauth.authentication.APIKeyAuthentication",
        "apiauth.authentication.HMACAuthentication",
        "apiauth.authentication.JWTAuthentication",
        "apiauth.permissions.HasScopes",
        "apiauth.throttling.TokenBucketThrottle",
        "apiauth.middleware.SecurityHeadersMiddleware",
        "apiauth.middleware.RateLimitHeadersMiddleware",
        "apiauth.errors.exception_handler",
        "apiauth.parsers.JSONParser",
        "apiauth.store.get_store",
        "apiauth.throttling.backends.get_backend",
        "apiauth.cache.invalidate",
        "apiauth.revocation.revoke_user",
    ],
)
def test_documented_import_paths(path: str) -> None:
    assert import_string(path) is not None
