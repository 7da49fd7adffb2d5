"""JSON Web Signatures and JWT claims, verified strictly: the pure part of JWT authentication.

Nothing here does I/O. :func:`parse` takes a compact JWS apart and refuses anything that is
not plainly one (length cap, three canonical base64url segments, a JSON object header without
duplicate members, no ``alg: none``, no ``crit`` we do not understand, no ``jku`` / ``x5u`` /
``jwk`` / ``x5c`` to follow), so garbage never reaches the crypto. A :class:`VerificationKey`
is bound to exactly one algorithm when it is built, which defeats algorithm confusion (HS256
"signed" with an RSA public key, PEM or JWK form): a key is only ever used with its own
algorithm. :class:`ClaimsPolicy` checks the claims of a verified token. PyJWT supplies the
signature primitives; its errors never escape this module.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import InvalidKeyError

SUPPORTED = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "HS256",
)
SYMMETRIC = frozenset({"HS256"})
ASYMMETRIC = frozenset(SUPPORTED) - SYMMETRIC
DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
"""An issuer's allowlist when its settings name none: asymmetric only."""
SIGNING_ALGORITHMS = ("RS256", "ES256", "EdDSA")
"""What our own signing keys use."""

_ALGORITHMS = get_default_algorithms()
_KTY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP", "HS": "oct"}


def _why(exc: Exception, alg: str) -> str:
    """PyJWT's reason, without the object addresses its key-type refusal carries (a system
    check prints it)."""
    if "Invalid Key type" in str(exc):
        return f"not an {_KTY[alg[:2]]} public key"
    return str(exc)


_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
MIN_RSA_BITS = 2048
MIN_HMAC_BYTES = 32
# Header members that point at keys elsewhere or carry one: never followed (RFC 8725 §3.10).
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c"})
MAX_HEADER_BYTES = 2048
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

NUMERIC_DATE_LIMIT = 2**53
"""The largest time we read (beyond it, a float cannot hold every integer second)."""


class TokenError(ValueError):
    """A token refused, with a machine-readable ``code`` and a message safe to show."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class InvalidKey(ValueError):
    """Key material unusable for verification (wrong type, size, use or algorithm)."""


def b64decode(segment: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): the alphabet only, and canonical, so
    one token has one spelling (no trailing bits set, no ``=``, no whitespace)."""
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    # Cannot fail once the alphabet and length are checked (binascii.Error is a ValueError).
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if b64encode(raw) != segment:
        raise ValueError("non-canonical base64url")
    return raw


def b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate member {name!r}")
        result[name] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from UTF-8 bytes; duplicate members, NaN and Infinity refused (RFC 7515
    §5.2 lets a parser pick either duplicate: two verifiers could read two different claims)."""
    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("not a JSON object") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    if _SURROGATE_ESCAPE.search(raw):
        # JSON may escape a lone UTF-16 surrogate (\ud800), which no UTF-8 text can hold:
        # refuse it here rather than fail later wherever a claim is encoded.
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("not a JSON object") from None
    return value


@dataclass(frozen=True, slots=True)
class JWS:
    """A compact JWS taken apart; nothing verified yet."""

    header: dict[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


_COMPACT = re.compile(r"[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*", re.ASCII)


def looks_like_jws(value: str, max_length: int) -> bool:
    """Cheap shape test used to claim a bearer token: three base64url segments, capped."""
    return len(value) <= max_length and _COMPACT.fullmatch(value) is not None


def parse(token: str, max_length: int = 8192) -> JWS:
    """Take a compact JWS apart, refusing anything that is not plainly one of ours to verify."""
    if len(token) > max_length:
        raise TokenError("malformed", "The token is too long.")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise TokenError("malformed", "The token is not a compact JWS.")
    if len(parts[0]) > MAX_HEADER_BYTES:
        raise TokenError("malformed", "The token header is too long.")
    try:
        header = json_object(b64decode(parts[0]))
        payload = b64decode(parts[1])
        signature = b64decode(parts[2])
    except ValueError:
        raise TokenError("malformed", "The token is not valid base64url JSON.") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise TokenError("malformed", "The token header names no algorithm.")
    if alg.lower() == "none":
        raise TokenError("alg_not_allowed", "Unsigned tokens are not accepted.")
    if "crit" in header:
        # We implement no JWS extension (RFC 7515 §4.1.11): every critical one is unknown.
        raise TokenError("unsupported_crit", "The token requires a header extension we lack.")
    if "b64" in header:
        raise TokenError("unsupported_crit", "Unencoded payloads (RFC 7797) are not accepted.")
    if FORBIDDEN_HEADERS.intersection(header):
        raise TokenError("header_not_allowed", "The token header points at a key elsewhere.")
    kid = header.get("kid")
    if kid is not None and not (isinstance(kid, str) and 0 < len(kid) <= 200):
        raise TokenError("malformed", "The token's key id is malformed.")
    return JWS(header, payload, (parts[0] + "." + parts[1]).encode("ascii"), signature)


@dataclass(frozen=True, slots=True, eq=False)
class VerificationKey:
    """A public key (or an HS256 secret) bound to one algorithm, parsed once."""

    alg: str
    key: Any
    kid: str | None = None

    def __post_init__(self) -> None:
        check_key(self.alg, self.key)

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        try:
            return bool(_ALGORITHMS[self.alg].verify(signing_input, self.key, signature))
        except (ValueError, TypeError, InvalidKeyError):  # misuse fails closed
            return False

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any], alg: str | None = None) -> VerificationKey:
        """A key from a JWK. Its algorithm is the JWK's ``alg`` (or ``alg`` given here for key
        sets that omit it, when they agree); a key for encryption (``use``, ``key_ops``) is
        refused, and only the public members are kept."""
        if not isinstance(jwk, Mapping):
            raise InvalidKey("a JWK must be a JSON object")
        declared = jwk.get("alg")
        if declared is not None and alg is not None and declared != alg:
            raise InvalidKey(f"the key is for {declared}, not {alg}")
        alg = declared or alg
        if not isinstance(alg, str) or alg not in SUPPORTED:
            raise InvalidKey(f"unsupported or missing algorithm {alg!r}")
        if jwk.get("use", "sig") != "sig":
            raise InvalidKey("the key is not for signatures (use)")
        key_ops = jwk.get("key_ops")
        if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
            raise InvalidKey("the key is not for verification (key_ops)")
        if jwk.get("kty") != _KTY[alg[:2]]:
            raise InvalidKey(f"a {jwk.get('kty')!r} key cannot verify {alg}")
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidKey("kid must be a string")
        try:
            key = _ALGORITHMS[alg].from_jwk(dict(jwk))
        except (InvalidKeyError, ValueError, TypeError, KeyError) as exc:
            raise InvalidKey(f"unreadable {alg} key: {_why(exc, alg)}") from None
        return cls(alg, public_half(key), kid)

    @classmethod
    def from_pem(cls, pem: str | bytes, alg: str, kid: str | None = None) -> VerificationKey:
        if alg not in ASYMMETRIC:
            raise InvalidKey(f"a PEM key cannot verify {alg!r}")
        try:
            key = _ALGORITHMS[alg].prepare_key(pem)  # PyJWT takes text or bytes
        except (InvalidKeyError, ValueError, TypeError) as exc:
            raise InvalidKey(f"unreadable {alg} key: {_why(exc, alg)}") from None
        return cls(alg, public_half(key), kid)

    @classmethod
    def from_secret(cls, secret: str | bytes, kid: str | None = None) -> VerificationKey:
        """An HS256 key: at least 256 bits, and never text that looks like a public key."""
        return cls("HS256", secret.encode() if isinstance(secret, str) else secret, kid)

    def to_jwk(self) -> dict[str, Any]:
        """The public members, with ``kid``, ``alg`` and ``use`` (never for HS256)."""
        if self.alg in SYMMETRIC:
            raise InvalidKey("a shared secret is never published")
        jwk: dict[str, Any] = dict(_ALGORITHMS[self.alg].to_jwk(self.key, as_dict=True))
        jwk.update({"alg": self.alg, "use": "sig"})
        if self.kid is not None:
            jwk["kid"] = self.kid
        return jwk


def key_type(alg: str) -> str:
    """The JWK ``kty`` that can verify ``alg``."""
    return _KTY[alg[:2]]


def public_half(key: Any) -> Any:
    """Verification needs the public key only; a private one given by mistake is not kept."""
    public_key = getattr(key, "public_key", None)
    if callable(public_key) and not isinstance(key, bytes):
        return public_key()
    return key


def check_key(alg: str, key: Any) -> None:
    """Refuse a key that does not fit ``alg`` exactly (type, curve, size)."""
    if alg not in SUPPORTED:
        raise InvalidKey(f"unsupported algorithm {alg!r}")
    family = alg[:2]
    if family in ("RS", "PS"):
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidKey(f"{alg} needs an RSA public key")
        if key.key_size < MIN_RSA_BITS:
            raise InvalidKey(f"RSA keys need at least {MIN_RSA_BITS} bits")
    elif family == "ES":
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, _CURVES[alg]
        ):
            raise InvalidKey(f"{alg} needs an EC public key on {_CURVES[alg].name}")
    elif family == "Ed":
        if not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            raise InvalidKey("EdDSA needs an Ed25519 or Ed448 public key")
    else:
        if not isinstance(key, bytes):
            raise InvalidKey("HS256 needs a secret")
        if len(key) < MIN_HMAC_BYTES:
            raise InvalidKey(f"HS256 secrets need at least {MIN_HMAC_BYTES * 8} bits")
        if key.lstrip().startswith((b"-----BEGIN", b"ssh-", b"{")):
            # A public key as an HMAC secret is the algorithm-confusion attack's own move.
            raise InvalidKey("an HS256 secret must not be a PEM, SSH or JWK public key")


class KeySet:
    """Verification keys by ``kid``. A token without ``kid`` is verified only when the set holds
    one key for its algorithm (static configurations often omit kids)."""

    def __init__(self, keys: Iterable[VerificationKey] = ()) -> None:
        self.by_kid: dict[str | None, VerificationKey] = {}
        self.by_alg: dict[str, list[VerificationKey]] = {}
        for key in keys:
            self.by_kid.setdefault(key.kid, key)
            self.by_alg.setdefault(key.alg, []).append(key)

    def __len__(self) -> int:
        return sum(len(keys) for keys in self.by_alg.values())

    def __contains__(self, kid: object) -> bool:
        return kid in self.by_kid

    def find(self, kid: str | None, alg: str) -> VerificationKey | None:
        if kid is not None:
            return self.by_kid.get(kid)
        candidates = self.by_alg.get(alg, ())
        return candidates[0] if len(candidates) == 1 else None

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.to_jwk() for keys in self.by_alg.values() for key in keys]}


def verify_signature(jws: JWS, key: VerificationKey) -> None:
    """The key's own algorithm or nothing: the header's ``alg`` must name it."""
    if jws.alg != key.alg:
        raise TokenError("alg_not_allowed", "The token's algorithm does not match its key.")
    if not key.verify(jws.signing_input, jws.signature):
        raise TokenError("bad_signature", "The token's signature is invalid.")


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # bool is an int in Python, and JSON's true is no time. The range test also refuses NaN,
    # infinities and integers too large for a float (10**400 is valid JSON).
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not -NUMERIC_DATE_LIMIT <= value <= NUMERIC_DATE_LIMIT
    ):
        raise TokenError("invalid_claim", f"The '{name}' claim must be a number.")
    return float(value)


def audiences(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and aud and all(isinstance(item, str) for item in aud):
        return aud
    raise TokenError("invalid_claim", "The 'aud' claim must be a string or a list of strings.")


def scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """``scope`` (RFC 8693 §4.2, space-separated) or ``scp`` (a list, or a string as Entra)."""
    value = claims.get("scope", claims.get("scp"))
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return frozenset(value)
    raise TokenError("invalid_claim", "The 'scope' claim must be a string.")


def media_type(value: str) -> str:
    """``typ`` compared as RFC 7515 §4.1.9 says: case-insensitive, ``application/`` implied."""
    value = value.lower()
    return value[len("application/") :] if value.startswith("application/") else value


@dataclass(frozen=True, slots=True)
class ClaimsPolicy:
    """What a verified token's claims must satisfy for one issuer."""

    issuer: str
    audiences: frozenset[str]
    required: frozenset[str] = frozenset({"exp", "iat", "iss", "aud", "sub"})
    leeway: float = 30.0
    types: frozenset[str] | None = None
    """Accepted ``typ`` values (media types, lowercased), or ``None`` not to look."""
    max_lifetime: float | None = 86_400.0
    """The longest ``exp - iat`` accepted: it bounds how long revocation marks must live."""
    string_claims: tuple[str, ...] = field(default=("sub", "jti", "client_id", "sid"))
    values: tuple[tuple[str, str], ...] = ()
    """Claims that must hold exactly these values (``token_type`` of another library)."""

    def check(self, header: Mapping[str, Any], claims: Mapping[str, Any], now: float) -> None:
        if self.types is not None:
            typ = header.get("typ")
            if not isinstance(typ, str) or media_type(typ) not in self.types:
                raise TokenError("invalid_type", "The token is not of an accepted type (typ).")
        missing = sorted(name for name in self.required if name not in claims)
        if missing:
            raise TokenError(
                "missing_claim", f"The token lacks the claim(s): {', '.join(missing)}."
            )
        if claims.get("iss", self.issuer) != self.issuer:
            raise TokenError("invalid_issuer", "The token's issuer is not trusted.")
        for name in self.string_claims:
            value = claims.get(name)
            if value is not None and not (isinstance(value, str) and 0 < len(value) <= 255):
                raise TokenError("invalid_claim", f"The '{name}' claim must be a short string.")
        if "aud" in claims and not self.audiences.intersection(audiences(claims)):
            raise TokenError("invalid_audience", "The token is not meant for this service (aud).")
        for name, expected in self.values:
            if claims.get(name) != expected:
                raise TokenError("invalid_claim", f"The '{name}' claim must be '{expected}'.")
        exp, iat = self.check_times(claims, now)
        if self.max_lifetime is not None and exp is not None:
            start = iat if iat is not None else now
            if exp - start > self.max_lifetime:
                raise TokenError("invalid_claim", "The token's lifetime is longer than allowed.")
        scopes(claims)

    def check_times(
        self, claims: Mapping[str, Any], now: float
    ) -> tuple[float | None, float | None]:
        """``exp``, ``nbf`` and ``iat`` against ``now``: all that changes for a token that
        passed :meth:`check` once. Returns ``exp`` and ``iat``."""
        exp, nbf, iat = _number(claims, "exp"), _number(claims, "nbf"), _number(claims, "iat")
        if exp is not None and exp <= now - self.leeway:
            raise TokenError("expired", "The token has expired.")
        if nbf is not None and nbf > now + self.leeway:
            raise TokenError("not_yet_valid", "The token is not valid yet (nbf).")
        if iat is not None and iat > now + self.leeway:
            raise TokenError("not_yet_valid", "The token was issued in the future (iat).")
        return exp, iat


def decode_claims(jws: JWS) -> dict[str, Any]:
    try:
        return json_object(jws.payload)
    except ValueError:
        raise TokenError("malformed", "The token's payload is not a JSON object.") from None


# -- our own keys ------------------------------------------------------------------


def generate_pair(algorithm: str, key_size: int | None = None) -> tuple[bytes, bytes]:
    """A fresh key pair for ``algorithm``: (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    private: Any
    if algorithm == "RS256":
        if key_size not in (2048, 3072):
            raise ValueError("RS256 keys are 2048 or 3072 bits.")
        private = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"We sign with {', '.join(SIGNING_ALGORITHMS)}, not {algorithm}.")
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


# RFC 7638 §3.2: the required members of each key type, in lexicographic order.
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


def thumbprint(algorithm: str, public_pem: bytes) -> str:
    """The key's RFC 7638 JWK thumbprint (SHA-256), which we use as its ``kid``."""
    jwk = VerificationKey.from_pem(public_pem, algorithm).to_jwk()
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64encode(hashlib.sha256(canonical.encode()).digest())
