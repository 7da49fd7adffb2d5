"""Project Wycheproof's JWS vectors, run through the signature layer of our verifier.

Read in place from ``../shared/conformance/wycheproof-jws/json_web_signature_test.json`` (or the
file named by ``APIAUTH_WYCHEPROOF_JWS``); never copied into the repository. Each group's key is
built the way our verifier builds every key (:meth:`VerificationKey.from_jwk`: bound to one
algorithm, refused when meant for encryption), then each case goes through :func:`jose.parse`
and :func:`jose.verify_signature`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from apiauth import jose


def find_vectors() -> Path | None:
    configured = os.environ.get("APIAUTH_WYCHEPROOF_JWS")
    if configured:
        return Path(configured)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "conformance" / "wycheproof-jws"
        if (candidate / "json_web_signature_test.json").is_file():
            return candidate / "json_web_signature_test.json"
    return None


VECTORS = find_vectors()
pytestmark = pytest.mark.skipif(
    VECTORS is None,
    reason="Wycheproof JWS vectors not found: expected "
    "../shared/conformance/wycheproof-jws/json_web_signature_test.json or APIAUTH_WYCHEPROOF_JWS",
)

# Cases whose expected result we decline, each with the reason (also in docs/jwt.md).
DECLINED = {
    346: "key declares PS256, token uses PS384: a key verifies its one algorithm only",
    350: "key declares PS256, token uses PS384: a key verifies its one algorithm only",
    347: "key declares the unregistered algorithm ES521 (RFC 7518 names it ES512)",
    351: "key declares the unregistered algorithm ES521 (RFC 7518 names it ES512)",
    367: "byte-identical to valid case 357 (the padding change is absent from the file)",
    370: "byte-identical to valid case 357 (the padding change is absent from the file)",
    372: "a '?' inside the header segment: we refuse characters outside base64url",
    373: "a '?' inside the payload segment: we refuse characters outside base64url",
}


def verifies(group: dict[str, Any], jws: Any) -> bool:
    try:
        key = jose.VerificationKey.from_jwk(group.get("public") or group["private"])
    except jose.InvalidKey:
        return False
    if not isinstance(jws, str):
        return False  # JSON serialization: only the compact form is a bearer token
    try:
        jose.verify_signature(jose.parse(jws), key)
    except jose.TokenError:
        return False
    return True


def load() -> list[tuple[int, str, bool, str]]:
    assert VECTORS is not None
    data = json.loads(VECTORS.read_text())
    cases = []
    for group in data["testGroups"]:
        for test in group["tests"]:
            got = verifies(group, test["jws"])
            cases.append((test["tcId"], test["comment"], got, test["result"]))
    assert len(cases) == data["numberOfTests"]
    return cases


def test_every_case_as_expected_or_declined(capsys: pytest.CaptureFixture[str]) -> None:
    cases = load()
    tally: Counter[str] = Counter()
    wrong = []
    for tc_id, comment, got, expected in cases:
        as_expected = got == (expected == "valid")
        if tc_id in DECLINED:
            assert not as_expected, f"case {tc_id} is declined but passes: drop it from DECLINED"
            tally["declined"] += 1
        elif as_expected:
            tally[f"{expected} as expected"] += 1
        else:
            wrong.append((tc_id, comment, expected))
    with capsys.disabled():
        print(f"\nWycheproof JWS: {len(cases)} cases, {dict(tally)}")
    assert wrong == []
    # No invalid case is ever accepted, declined ones included, except the two that are
    # byte-identical to a valid one.
    accepted_invalid = {tc for tc, _c, got, expected in cases if got and expected == "invalid"}
    assert accepted_invalid == {367, 370}


def test_the_file_really_holds_identical_cases() -> None:
    assert VECTORS is not None
    data = json.loads(VECTORS.read_text())
    by_id = {t["tcId"]: t["jws"] for g in data["testGroups"] for t in g["tests"]}
    assert by_id[367] == by_id[357] == by_id[370]
