"""Our signing keys as this process sees them: parsed once, reloaded on a short bound.

The ring holds the verification keys of every *next*, *active* and *retired*
:class:`~apiauth.models.SigningKey` by ``kid``, and the active key's private half (decrypted
and parsed on first use). It is reloaded from the database when it is older than
``JWT["KEY_RING_TTL"]`` seconds, at once in the process that changed a key (signals), and on a
``kid`` it does not know at most once a second (a key promoted by another server; a flood of
made-up ``kid``\\ s costs one query a second, not one each). A revoked signing key therefore
stops verifying in every process within ``KEY_RING_TTL`` seconds (docs/jwt.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from apiauth import jose
from apiauth.conf import conf

MISS_RELOAD_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Signer:
    kid: str
    alg: str
    private_key: Any

    def sign(self, claims: dict[str, Any], typ: str = "at+jwt") -> str:
        return jwt.encode(
            claims, self.private_key, algorithm=self.alg, headers={"kid": self.kid, "typ": typ}
        )


class NoSigningKey(Exception):
    """There is no active signing key: promote one (``manage.py apiauth_rotatesigningkey``)."""


class KeyRing:
    """Thread-safe without holding the lock across a query or a decryption: a load or a
    decryption that raced with a change (:meth:`clear`) is used by its own caller at most,
    never stored for the next ones."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.loaded_at = float("-inf")
        self.missed_at = float("-inf")
        self.generation = 0
        """Bumped by :meth:`clear`: a load that began before a change must not be kept."""
        self.keys = jose.KeySet()
        self.active: Any = None  # the active SigningKey row
        self.signer: Signer | None = None

    def clear(self) -> None:
        with self.lock:
            self.generation += 1
            self.loaded_at = float("-inf")
            self.signer = None

    def current(self) -> jose.KeySet:
        if self.clock() - self.loaded_at > conf.jwt.key_ring_ttl:
            return self.load()
        return self.keys

    def find(self, kid: str | None, alg: str) -> jose.VerificationKey | None:
        key = self.current().find(kid, alg)
        if key is None and kid is not None:
            now = self.clock()
            if now - self.missed_at >= MISS_RELOAD_INTERVAL:
                self.missed_at = now
                key = self.load().find(kid, alg)
        return key

    def get_signer(self) -> Signer:
        """The active key, ready to sign (decrypted and parsed once per active key).

        The database is asked whether that key is still the active one (one query per token
        issued): a key revoked or retired in another process must not sign a single token
        more, although it may verify for up to ``KEY_RING_TTL``."""
        from apiauth.models import SigningKey

        self.current()
        for _attempt in range(2):
            with self.lock:
                active, signer = self.active, self.signer
            if active is None:
                # Not from a ring loaded before one was promoted (apiauth_rotatesigningkey in
                # another process): the database says, the ring is read again.
                self.load()
                with self.lock:
                    active, signer = self.active, self.signer
            if active is None:
                raise NoSigningKey("There is no active signing key.")
            if SigningKey.objects.filter(kid=active.kid, state="active").exists():
                break
            self.load()
        else:
            raise NoSigningKey("The active signing key changed while this token was signed.")
        if signer is None or signer.kid != active.kid:
            private = serialization.load_pem_private_key(active.decrypt_private_key(), None)
            signer = Signer(active.kid, active.algorithm, private)
            with self.lock:
                if self.active is active:  # not replaced while we decrypted
                    self.signer = signer
        return signer

    def load(self) -> jose.KeySet:
        """Read the keys; keep them unless a key changed meanwhile (the next call reloads)."""
        from apiauth.models import SigningKey

        generation = self.generation
        rows = list(SigningKey.objects.exclude(state=SigningKey.State.REVOKED))
        keys = jose.KeySet(
            [jose.VerificationKey.from_pem(row.public_key, row.algorithm, row.kid) for row in rows]
        )
        active = next((row for row in rows if row.state == SigningKey.State.ACTIVE), None)
        with self.lock:
            if self.generation == generation:
                # The signer stays: get_signer() replaces it once it is not the active key's.
                self.keys, self.active = keys, active
                self.loaded_at = self.clock()
        return keys


ring = KeyRing()


def changed(**kwargs: Any) -> None:
    """A signing key changed in this process: forget the ring (other processes reload within
    ``KEY_RING_TTL``). Connected to the model's signals."""
    ring.clear()
