"""The README's snippets, pasted as written into a brand-new ``django-admin startproject``, make
a project that works: migrations, system checks, a signing key, and a person signing in to an
OAuth application and getting tokens. The snippets are the README's blocks marked
``<!-- fresh-project: ... -->`` (their ``# urls.py`` / ``# settings.py`` parts go where they
say)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import RedisServer

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = re.compile(r"<!-- fresh-project: ([a-z, ]+) -->\s*```python\n(.*?)```", re.DOTALL)
PART = re.compile(r"^# (urls|settings)\.py.*$", re.MULTILINE)

SCRIPT = """
from urllib.parse import parse_qs, urlencode, urlsplit

from django.contrib.auth.models import User
from django.test import Client

from apiauth import authorization

{shell}

person = User.objects.create_user("pat", password="pw")
app.first_party = True
app.save()
browser = Client()
browser.force_login(person)
verifier = "fresh-project-verifier-" + "x" * 30
query = {{
    "response_type": "code", "client_id": app.client_id,
    "redirect_uri": "http://127.0.0.1:9999/callback", "scope": "orders:read",
    "state": "s", "code_challenge": authorization.s256(verifier),
    "code_challenge_method": "S256",
}}
answer = browser.get("/auth/authorize?" + urlencode(query))
assert answer.status_code == 302, answer.content[:500]
code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
token = Client().post("/auth/token", urlencode({{
    "grant_type": "authorization_code", "code": code, "client_id": app.client_id,
    "redirect_uri": "http://127.0.0.1:9999/callback", "code_verifier": verifier,
}}), content_type="application/x-www-form-urlencoded")
assert token.status_code == 200, token.content[:500]
assert browser.get("/auth/authorizations").status_code == 200
meta = Client().get("/.well-known/oauth-authorization-server").json()
assert meta["code_challenge_methods_supported"] == ["S256"], meta
from django.conf import settings
assert settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] == [
    "apiauth.authentication.APIKeyAuthentication",
    "apiauth.authentication.HMACAuthentication",
    "apiauth.authentication.JWTAuthentication",
], settings.REST_FRAMEWORK
from apiauth.models import HMACCredential
signer, secret = HMACCredential.objects.create_credential(name="partner")
assert signer.decrypt(signer.secret) == secret
print("FRESH PROJECT OK", token.json()["scope"])
"""


def snippets() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"settings": [], "urls": [], "shell": []}
    for kinds, code in MARKER.findall(README.read_text()):
        code = textwrap.dedent(code)
        names = [kind.strip() for kind in kinds.split(",")]
        pieces = PART.split(code)
        # pieces: [first part, name, part, name, part, ...]
        found[names[0]].append(pieces[0])
        for name, part in zip(pieces[1::2], pieces[2::2], strict=True):
            found[name].append(part)
    return found


def test_the_readme_marks_its_snippets() -> None:
    found = snippets()
    assert len(found["settings"]) >= 4 and len(found["urls"]) >= 2 and found["shell"]


def run(*args: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{args[:2]}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


@pytest.mark.usefixtures("_redis")
def test_the_snippets_make_a_working_project(tmp_path: Path, redis_server: RedisServer) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "site_one.settings",
        "PYTHONPATH": str(tmp_path),
    }
    env.pop("DATABASE_URL", None)
    env.pop("APIAUTH_ENCRYPTION_KEYS", None)
    run("-m", "django", "startproject", "site_one", str(tmp_path), cwd=tmp_path, env=env)
    found = snippets()
    settings = tmp_path / "site_one" / "settings.py"
    code = settings.read_text()
    # What the quickstart's step 1 says, and the test client's host.
    code += '\nINSTALLED_APPS += ["rest_framework", "apiauth"]\nALLOWED_HOSTS = ["testserver"]\n'
    for snippet in found["settings"]:
        code += "\n" + snippet.replace(
            "redis://127.0.0.1:6379/0", f"redis://127.0.0.1:{redis_server.port}/0"
        )
    settings.write_text(code)
    urls = tmp_path / "site_one" / "urls.py"
    urls.write_text(urls.read_text() + "".join("\n" + snippet for snippet in found["urls"]))
    manage = str(tmp_path / "manage.py")
    # No encryption key yet: the checks say so, and the command that makes one runs.
    unset = subprocess.run(
        [sys.executable, manage, "check"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert unset.returncode != 0 and "apiauth.E025" in unset.stderr, unset.stderr[-2000:]
    assert "Traceback" not in unset.stderr
    made = run(manage, "apiauth_encryptionkey", cwd=tmp_path, env=env).strip().splitlines()[-1]
    env["APIAUTH_ENCRYPTION_KEYS"] = made
    run(manage, "migrate", "--noinput", cwd=tmp_path, env=env)
    checked = run(manage, "check", cwd=tmp_path, env=env)
    assert "ERRORS" not in checked, checked
    run(manage, "apiauth_rotatesigningkey", cwd=tmp_path, env=env)
    script = SCRIPT.format(shell="\n".join(found["shell"]))
    out = run(manage, "shell", "-c", script, cwd=tmp_path, env=env)
    assert "FRESH PROJECT OK orders:read" in out
