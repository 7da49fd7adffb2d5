"""The app's shape: layers that only point down (docs/architecture.md), no import circle,
nothing of the demo, no module grown past its room, and the documented import paths."""

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


# docs/architecture.md names each layer and its rule; a new module is placed here first.
LAYERS: dict[int, set[str]] = {
    # 1. Standards and maths: no Django, no I/O.
    1: {
        "apiauth.jose",
        "apiauth.sigv4",
        "apiauth.crypto",
        "apiauth.client",
        "apiauth.throttling.gcra",
        "apiauth.throttling.rates",
        "apiauth.store.lua",
    },
    # 2. Settings, client address, scopes, the Credential, problem+json, signals.
    2: {
        "apiauth.conf",
        "apiauth.net",
        "apiauth.scopes",
        "apiauth.credentials",
        "apiauth.errors",
        "apiauth.signals",
        "apiauth.encryption",
        "apiauth.compiled",
        "apiauth.usage",
        "apiauth.parsers",
    },
    # 3. The store and the models.
    3: {
        "apiauth.store",
        "apiauth.store.base",
        "apiauth.store.clients",
        "apiauth.store.connections",
        "apiauth.store.keys",
        "apiauth.store.local",
        "apiauth.store.redis",
        "apiauth.models",
        "apiauth.models.apikeys",
        "apiauth.models.base",
        "apiauth.models.hmac",
        "apiauth.models.jwt",
        "apiauth.models.oauth",
        "apiauth.models.records",
        "apiauth.models.validators",
    },
    # 4. The credential cache, the JWT machinery, the limits, the audit trail.
    4: {
        "apiauth.cache",
        "apiauth.audit",
        "apiauth.authorization",
        "apiauth.revocation",
        "apiauth.keyring",
        "apiauth.issuers",
        "apiauth.tokens",
        "apiauth.verification",
        "apiauth.throttling.backends",
        "apiauth.throttling.headers",
        "apiauth.throttling.limiter",
        "apiauth.throttling.local",
        "apiauth.throttling.lockout",
    },
    # 5. The DRF classes (one module per scheme) and the middleware.
    5: {
        "apiauth.authentication",
        "apiauth.authentication.base",
        "apiauth.authentication.apikey",
        "apiauth.authentication.hmac",
        "apiauth.authentication.jwt",
        "apiauth.authentication.oauth_client",
        "apiauth.authentication.signed_request",
        "apiauth.permissions",
        "apiauth.throttling",
        "apiauth.throttling.throttle",
        "apiauth.negotiation",
        "apiauth.middleware",
    },
}
# 6. The endpoints, the admin, the forms, the checks, the commands, the app config: the rest.
TOP = 6
# Pure standards code may be long; everything else stays under about 400 lines.
LONG_ALLOWED = {"apiauth.jose", "apiauth.sigv4"}
MAX_LINES = 400


def layer_of(name: str) -> int:
    return next((layer for layer, names in LAYERS.items() if name in names), TOP)


def test_every_module_has_its_place() -> None:
    """A module below the top is named in a layer; every named module exists."""
    known = modules()
    named = set().union(*LAYERS.values())
    assert named <= set(known), named - set(known)
    top = {
        "apiauth",
        "apiauth.apps",
        "apiauth.views",
        "apiauth.urls",
        "apiauth.forms",
        "apiauth.login",
        "apiauth.openapi",
        "apiauth.admin",
        "apiauth.checks",
        "apiauth.management",
    }
    for name in known:
        if name not in named:
            # "apiauth" names the package itself, not everything in it.
            inside = (t != "apiauth" and name.startswith(t + ".") for t in top)
            assert name in top or any(inside), (
                f"{name}: place it in a layer (tests/test_architecture.py, docs/architecture.md)"
            )


def test_imports_point_down() -> None:
    known = modules()
    upward = [
        f"{name} ({layer_of(name)}) -> {target} ({layer_of(target)})"
        for name, path in known.items()
        for target in imports(name, path, known)
        if layer_of(target) > layer_of(name)
    ]
    assert upward == []


def test_standards_code_needs_no_django() -> None:
    for name in LAYERS[1]:
        tree = ast.parse(modules()[name].read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [alias.name for alias in node.names]
                )
                assert not any(n.split(".")[0] in {"django", "rest_framework"} for n in names), name


def test_no_module_outgrows_its_room() -> None:
    for name, path in modules().items():
        if name not in LONG_ALLOWED:
            lines = len(path.read_text().splitlines())
            assert lines <= MAX_LINES, f"{name}: {lines} lines"


def test_the_layer_test_sees_an_upward_import(tmp_path: Path) -> None:
    source = tmp_path / "fake.py"
    source.write_text("from apiauth.views import TokenView\n")
    found = imports("apiauth.jose", source, {"apiauth.views": source, "apiauth.jose": source})
    assert found == {"apiauth.views"} and layer_of("apiauth.views") > layer_of("apiauth.jose")


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
        "apiauth.authentication.CredentialAuthentication",
        "apiauth.authentication.wire_path",
        "apiauth.verification.TokenVerifier",
        "apiauth.verification.verifier",
        "apiauth.tokens.client_credentials",
        "apiauth.tokens.issued_at",
        "apiauth.models.APIKey",
        "apiauth.models.HMACCredential",
        "apiauth.models.SigningKey",
        "apiauth.models.validate_scopes",
        "apiauth.models.validate_networks",
        "apiauth.models.validate_name",
        "apiauth.models.validate_plan",
        "apiauth.admin.APIKeyAdmin",
        "apiauth.admin.HMACCredentialAdmin",
        "apiauth.checks.check_settings",
        "apiauth.cache.key_cache",
        "apiauth.signals.credentials_changed",
        "apiauth.conf.conf",
    ],
)
def test_documented_import_paths(path: str) -> None:
    assert import_string(path) is not None
