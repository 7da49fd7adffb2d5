"""AWS Signature Version 4, exactly as AWS defines it, for signing and verifying requests.

Pure code with no Django: the verifier (:class:`~apiauth.authentication.HMACAuthentication`)
and the signer shipped to clients (:mod:`apiauth.client`) both build their canonical requests
here, and ``tests/test_sigv4_conformance.py`` runs AWS's own signing test suite through it.

The canonical request is::

    METHOD \\n canonical URI \\n canonical query \\n canonical headers \\n signed headers \\n
    payload hash

* **URI**: the path *as sent on the wire* (already percent-encoded by the client), dot segments
  and repeated slashes removed, then URI-encoded again (``%`` becomes ``%25``): what every
  non-S3 AWS service and botocore do.
* **Query**: ``name=value`` pairs split on ``&`` and ``=``, decoded (``+`` is a space),
  re-encoded with only ``A-Za-z0-9-_.~`` left as they are, sorted by name then value.
* **Headers**: names lowercased and sorted, values trimmed with inner whitespace squeezed,
  repeated headers joined with ``,``.

The names of the scheme (``AWS4-HMAC-SHA256``, ``AWS4``, ``X-Amz-``) are a :class:`Scheme`, so a
deployment can brand it without changing any of the above.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SIGNED_HEADERS = 64

AMZ_DATE_RE = re.compile(r"\d{8}T\d{6}Z", re.ASCII)
SCOPE_DATE_RE = re.compile(r"\d{8}", re.ASCII)
ACCESS_KEY_ID_RE = re.compile(r"[A-Za-z0-9]{1,128}", re.ASCII)
SCOPE_PART_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}", re.ASCII)
SIGNATURE_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)
HEADER_NAME_RE = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]{1,128}", re.ASCII)
HEX_SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)


class SignatureError(ValueError):
    """A request whose signature cannot be accepted; ``code`` is machine-readable."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Scheme:
    """The names of the scheme. SigV4's are the defaults, so AWS signers work unchanged."""

    algorithm: str = "AWS4-HMAC-SHA256"
    secret_prefix: str = "AWS4"
    header_prefix: str = "X-Amz-"
    terminator: str = "aws4_request"
    # Derived once: every request reads them.
    date_header: str = field(init=False, repr=False, compare=False)
    content_sha256_header: str = field(init=False, repr=False, compare=False)
    signature_param: str = field(init=False, repr=False, compare=False)
    credential_param: str = field(init=False, repr=False, compare=False)
    authorization_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    """The ``Authorization`` header as signers write it; others take the general parser."""

    def __post_init__(self) -> None:
        lower = self.header_prefix.lower()
        object.__setattr__(self, "date_header", f"{lower}date")
        object.__setattr__(self, "content_sha256_header", f"{lower}content-sha256")
        object.__setattr__(self, "signature_param", self.param("Signature"))
        object.__setattr__(self, "credential_param", self.param("Credential"))
        authorization = re.compile(
            re.escape(self.algorithm)
            # Printable ASCII but the comma: any other character takes the general parser.
            + r" Credential=([!-+\--~]+), ?SignedHeaders=([!-+\--~]+), ?Signature=([!-+\--~]+)",
            re.ASCII,
        )
        object.__setattr__(self, "authorization_re", authorization)

    def param(self, name: str) -> str:
        """A presigned URL's query parameter: ``X-Amz-Credential`` and so on."""
        return f"{self.header_prefix}{name}"


AWS = Scheme()


# Canonical parts ---------------------------------------------------------------------------


def normalize_path(path: str | bytes) -> str | bytes:
    """Remove dot segments (RFC 3986 §5.2.4) and empty segments, as AWS services do."""
    sep: str | bytes = "/" if isinstance(path, str) else b"/"
    if not path:
        return sep
    out: list[Any] = []
    for segment in path.split(sep):  # type: ignore[arg-type]
        if segment in ("", ".", b"", b"."):
            continue
        if segment in ("..", b".."):
            if out:
                out.pop()
        else:
            out.append(segment)
    first = sep if path[:1] == sep else sep[:0]
    last = sep if path[-1:] == sep and out else sep[:0]
    return first + sep.join(out) + last  # type: ignore[operator]


def is_normal_path(path: bytes) -> bool:
    """Whether :func:`normalize_path` leaves ``path`` as it is. Most paths are told apart by
    three substring tests: no dot segment, no empty segment, a leading slash."""
    if path[:1] == b"/" and b"//" not in path and b"/." not in path:
        return True
    return normalize_path(path) == path


_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
_UNRESERVED_AND_SLASH = _UNRESERVED + b"/"


def _encode(value: bytes | str, safe: bytes) -> str:
    """``quote(value, safe)``, answering most values (nothing to encode) without it."""
    if isinstance(value, bytes) and not value.rstrip(safe):
        return value.decode("ascii")
    return quote(value, safe=safe)


def canonical_uri(wire_path: str | bytes, *, normalize: bool = True) -> str:
    """The path as the client sent it (bytes, or text to be UTF-8 encoded), encoded again."""
    path = wire_path or "/"
    if normalize:
        path = normalize_path(path)
    return _encode(path, _UNRESERVED_AND_SLASH)


def parse_query(query: str | bytes) -> list[tuple[bytes, bytes]]:
    """Decoded ``(name, value)`` pairs of a raw query string, in the order sent."""
    if isinstance(query, str):
        query = query.encode("utf-8")
    pairs = []
    for part in query.split(b"&"):
        if not part:
            continue
        name, _sep, value = part.replace(b"+", b" ").partition(b"=")
        pairs.append((unquote_to_bytes(name), unquote_to_bytes(value)))
    return pairs


def canonical_query(pairs: Iterable[tuple[bytes | str, bytes | str]]) -> str:
    encoded = sorted(
        (_encode(name, _UNRESERVED), _encode(value, _UNRESERVED)) for name, value in pairs
    )
    return "&".join([f"{name}={value}" for name, value in encoded])


def trim(value: str) -> str:
    return " ".join(value.split())


def canonical_headers(headers: Mapping[str, Sequence[str]], signed: Sequence[str]) -> str:
    """One ``name:value`` line per signed header (each name must be in ``headers``)."""
    return "".join([f"{name}:{','.join([trim(v) for v in headers[name]])}\n" for name in signed])


def canonical_request(
    method: str,
    uri: str,
    query: str,
    headers: Mapping[str, Sequence[str]],
    signed: Sequence[str],
    payload_hash: str,
) -> str:
    return "\n".join(
        [method, uri, query, canonical_headers(headers, signed), ";".join(signed), payload_hash]
    )


def string_to_sign(scheme: Scheme, amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{scheme.algorithm}\n{amz_date}\n{scope}\n{digest}"


def signing_key(scheme: Scheme, secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key of one day, region and service: four HMACs, worth caching."""
    key = (scheme.secret_prefix + secret).encode("utf-8")
    for part in (date, region, service, scheme.terminator):
        key = hmac.digest(key, part.encode("utf-8"), "sha256")
    return key


def signature(key: bytes, to_sign: str) -> str:
    return hmac.digest(key, to_sign.encode("utf-8"), "sha256").hex()


def format_date(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime(DATE_FORMAT)


def parse_date(value: str) -> datetime.datetime:
    if not AMZ_DATE_RE.fullmatch(value):
        raise SignatureError("malformed_date", "The request date must read YYYYMMDDTHHMMSSZ.")
    if value[9:11] >= "24":  # newer Pythons read hour 24 as the next day's midnight
        raise SignatureError("malformed_date", "The request date is not a valid date.")
    try:  # ISO 8601's basic format, read in C (strptime costs five times as much)
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        raise SignatureError("malformed_date", "The request date is not a valid date.") from None


# Parsing what the client sent ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credential:
    """``<access key id>/<date>/<region>/<service>/<terminator>``."""

    access_key_id: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}"

    @classmethod
    def parse(cls, value: str, scheme: Scheme) -> Credential:
        key = (value, scheme.terminator)
        parsed = _credentials.get(key)
        if parsed is None:
            parsed = cls._parse(value, scheme)
            _remember(_credentials, key, parsed)
        return parsed

    @classmethod
    def _parse(cls, value: str, scheme: Scheme) -> Credential:
        parts = value.split("/")
        if len(parts) != 5 or parts[4] != scheme.terminator:
            raise SignatureError(
                "malformed_credential",
                f"Credential must read <access key id>/<date>/<region>/<service>/"
                f"{scheme.terminator}.",
            )
        akid, date, region, service, _terminator = parts
        if not ACCESS_KEY_ID_RE.fullmatch(akid):
            raise SignatureError("malformed_credential", "Malformed access key id.")
        if not SCOPE_DATE_RE.fullmatch(date):
            raise SignatureError("malformed_credential", "The credential scope date is malformed.")
        if not SCOPE_PART_RE.fullmatch(region) or not SCOPE_PART_RE.fullmatch(service):
            raise SignatureError("malformed_credential", "Malformed region or service.")
        return cls(akid, date, region, service)


@dataclass(frozen=True, slots=True)
class Presented:
    """A signature as presented, in the ``Authorization`` header or a presigned URL."""

    credential: Credential
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    presigned: bool = False
    expires: int | None = None
    query: list[tuple[bytes, bytes]] = field(default_factory=list)
    """The query pairs that are signed (a presigned URL's own signature left out)."""


# A client sends the same credential scope and signed headers all day: each is validated once
# and remembered. Clients choose them, so the memos are bounded.
_credentials: dict[tuple[str, str], Credential] = {}
_signed_headers: dict[str, tuple[str, ...]] = {}
MEMO_SIZE = 1024


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = value


def parse_signed_headers(value: str) -> tuple[str, ...]:
    names = _signed_headers.get(value)
    if names is None:
        names = _parse_signed_headers(value)
        if len(value) <= 512:  # the lists clients send; not a few KB a client made up
            _remember(_signed_headers, value, names)
    return names


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(value.split(";"))
    if (
        not value
        or len(names) > MAX_SIGNED_HEADERS
        or not all(HEADER_NAME_RE.fullmatch(name) for name in names)
        or list(names) != sorted(set(names))
    ):
        raise SignatureError(
            "malformed_signed_headers",
            "SignedHeaders must list lowercase header names, sorted, separated by ';'.",
        )
    return names


def parse_authorization(
    value: str, scheme: Scheme, amz_date: str | None, query: list[tuple[bytes, bytes]]
) -> Presented:
    """``<algorithm> Credential=..., SignedHeaders=..., Signature=...`` (any order)."""
    if amz_date is not None:
        written = scheme.authorization_re.fullmatch(value)
        if written is not None:
            # As signers write it: what the general parser below would find.
            credential, signed_headers, signature = written.groups()
            return Presented(
                credential=Credential.parse(credential, scheme),
                signed_headers=parse_signed_headers(signed_headers),
                signature=_signature(signature),
                amz_date=amz_date,
                query=query,
            )
    algorithm, _sep, rest = value.strip().partition(" ")
    if algorithm != scheme.algorithm:
        raise SignatureError("unsupported_algorithm", f"Sign requests with {scheme.algorithm}.")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, field_value = item.strip().partition("=")
        if not sep or name in fields:
            raise SignatureError("malformed_authorization", "Malformed Authorization header.")
        fields[name] = field_value
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise SignatureError(
            "malformed_authorization",
            "The Authorization header must hold Credential, SignedHeaders and Signature.",
        )
    if amz_date is None:
        raise SignatureError("missing_date", f"The {scheme.header_prefix}Date header is required.")
    return Presented(
        credential=Credential.parse(fields["Credential"], scheme),
        signed_headers=parse_signed_headers(fields["SignedHeaders"]),
        signature=_signature(fields["Signature"]),
        amz_date=amz_date,
        query=query,
    )


def parse_presigned(pairs: list[tuple[bytes, bytes]], scheme: Scheme) -> Presented | None:
    """The presigned form's parameters, or ``None`` when the query carries no signature."""
    names = {scheme.param(n).encode(): n for n in PRESIGN_PARAMS}
    found: dict[str, str] = {}
    rest = []
    for name, value in pairs:
        param = names.get(name)
        if param is None:
            rest.append((name, value))
            continue
        if param in found:
            raise SignatureError("malformed_query", f"{name.decode()} appears more than once.")
        try:
            found[param] = value.decode("ascii")
        except UnicodeDecodeError:
            raise SignatureError("malformed_query", f"{name.decode()} is malformed.") from None
        if param != "Signature":
            rest.append((name, value))
    if "Signature" not in found:
        if found.keys() & {"Algorithm", "Credential"}:
            raise SignatureError("malformed_query", "The presigned URL has no signature.")
        return None
    missing = [n for n in PRESIGN_PARAMS if n not in found]
    if missing:
        raise SignatureError(
            "malformed_query",
            "A presigned URL needs " + ", ".join(scheme.param(n) for n in missing) + ".",
        )
    if found["Algorithm"] != scheme.algorithm:
        raise SignatureError("unsupported_algorithm", f"Sign requests with {scheme.algorithm}.")
    expires = found["Expires"]
    if not expires.isdigit() or len(expires) > 7:
        raise SignatureError("malformed_query", f"{scheme.param('Expires')} must be seconds.")
    return Presented(
        credential=Credential.parse(found["Credential"], scheme),
        signed_headers=parse_signed_headers(found["SignedHeaders"]),
        signature=_signature(found["Signature"]),
        amz_date=found["Date"],
        presigned=True,
        expires=int(expires),
        query=rest,
    )


PRESIGN_PARAMS = ("Algorithm", "Credential", "Date", "Expires", "SignedHeaders", "Signature")


def _signature(value: str) -> str:
    if not SIGNATURE_RE.fullmatch(value):
        raise SignatureError("malformed_signature", "The signature must be 64 hex digits.")
    return value


# Signing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """Signs requests as any SigV4 client does. Used by :mod:`apiauth.client` and the tests."""

    access_key_id: str
    secret: str
    region: str = "global"
    service: str = "apiauth"
    scheme: Scheme = AWS

    def credential(self, when: datetime.datetime) -> str:
        date = format_date(when)[:8]
        return f"{self.access_key_id}/{date}/{self.region}/{self.service}/{self.scheme.terminator}"

    def signature(self, when: datetime.datetime, canonical: str) -> str:
        """The signature of a canonical request made at ``when``."""
        amz_date = format_date(when)
        scope = self.credential(when).partition("/")[2]
        key = signing_key(self.scheme, self.secret, amz_date[:8], self.region, self.service)
        return signature(key, string_to_sign(self.scheme, amz_date, scope, canonical))

    def sign(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        *,
        when: datetime.datetime | None = None,
        sign_content_sha256: bool = True,
    ) -> dict[str, str]:
        """The headers to add to the request: date, body hash, ``Authorization`` (and ``Host``
        when missing). Every header passed in is signed, so send them unchanged."""
        when = when or datetime.datetime.now(datetime.UTC)
        amz_date = format_date(when)
        parts = urlsplit(url)
        headers = dict(headers or {})
        payload_hash = hashlib.sha256(body).hexdigest()
        given = [v for k, v in headers.items() if k.lower() == self.scheme.content_sha256_header]
        added = {self.scheme.param("Date"): amz_date}
        if given:
            payload_hash = given[0]  # e.g. UNSIGNED-PAYLOAD, where the server allows it
        elif sign_content_sha256:
            added[self.scheme.param("Content-Sha256")] = payload_hash
        merged = {**headers, **added}
        if not any(name.lower() == "host" for name in merged):
            merged["Host"] = added["Host"] = parts.netloc.rpartition("@")[2]
        lowered: dict[str, list[str]] = {}
        for name, value in merged.items():
            lowered.setdefault(name.lower(), []).append(value)
        signed = sorted(lowered)
        canonical = canonical_request(
            method.upper(),
            canonical_uri(parts.path),
            canonical_query(parse_query(parts.query)),
            lowered,
            signed,
            payload_hash,
        )
        sig = self.signature(when, canonical)
        added["Authorization"] = (
            f"{self.scheme.algorithm} Credential={self.credential(when)}, "
            f"SignedHeaders={';'.join(signed)}, Signature={sig}"
        )
        return added

    def presign(
        self,
        url: str,
        expires: int = 3600,
        *,
        method: str = "GET",
        when: datetime.datetime | None = None,
    ) -> str:
        """``url`` with the presigned query parameters; only ``host`` is signed."""
        when = when or datetime.datetime.now(datetime.UTC)
        amz_date = format_date(when)
        parts = urlsplit(url)
        params = [
            ("Algorithm", self.scheme.algorithm),
            ("Credential", self.credential(when)),
            ("Date", amz_date),
            ("Expires", str(int(expires))),
            ("SignedHeaders", "host"),
        ]
        pairs = parse_query(parts.query) + [
            (self.scheme.param(name).encode(), value.encode()) for name, value in params
        ]
        query = canonical_query(pairs)
        host = parts.netloc.rpartition("@")[2]
        canonical = canonical_request(
            method.upper(),
            canonical_uri(parts.path),
            query,
            {"host": [host]},
            ["host"],
            EMPTY_SHA256,
        )
        sig = self.signature(when, canonical)
        signed_query = f"{query}&{self.scheme.param('Signature')}={sig}"
        return parts._replace(query=signed_query).geturl()


# Verifying ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a verifier needs of a request, whatever the server."""

    method: str
    path: bytes
    """As sent on the wire (still percent-encoded)."""
    headers: Mapping[str, Sequence[str]]
    """Lowercase names; a repeated header has several values."""
    body_sha256: str
    """Computed by the server from the body it received, never taken from the client."""

    @property
    def has_body(self) -> bool:
        return self.body_sha256 != EMPTY_SHA256


@dataclass(frozen=True)
class Policy:
    """What a verifier accepts, and the canonical request it rebuilds."""

    scheme: Scheme = AWS
    service: str = "apiauth"
    regions: frozenset[str] = frozenset({"global"})
    max_skew: int = 300
    max_expires: int = 3600
    allow_unsigned_payload: bool = False
    normalize: bool = True

    def presented(
        self, authorization: str | None, amz_date: str | None, query: list[tuple[bytes, bytes]]
    ) -> Presented | None:
        """The signature the request carries, or ``None`` when it carries none of this scheme."""
        if authorization is not None and authorization.partition(" ")[0] == self.scheme.algorithm:
            signature_param = self.scheme.signature_param.encode()
            if any(name == signature_param for name, _v in query):
                raise SignatureError(
                    "ambiguous", "Sign in the Authorization header or in the URL, not both."
                )
            return parse_authorization(authorization, self.scheme, amz_date, query)
        return parse_presigned(query, self.scheme)

    def check(self, presented: Presented, request: SignedRequest, now: datetime.datetime) -> str:
        """Everything but the signature itself; returns the payload hash to sign with."""
        credential = presented.credential
        if credential.service != self.service:
            raise SignatureError("wrong_service", f"Sign for the service “{self.service}”.")
        if credential.region not in self.regions:
            raise SignatureError("wrong_region", "This region is not accepted here.")
        when = parse_date(presented.amz_date)
        if credential.date != presented.amz_date[:8]:
            raise SignatureError(
                "scope_date_mismatch", "The credential scope date is not the request's date."
            )
        # In seconds, not datetimes: a date in the year 9999 plus the window would overflow.
        signed_at, current = when.timestamp(), now.timestamp()
        if presented.presigned:
            assert presented.expires is not None
            if not 1 <= presented.expires <= self.max_expires:
                raise SignatureError(
                    "expires_out_of_range",
                    f"A presigned URL may be valid for 1 to {self.max_expires} seconds.",
                )
            not_after = signed_at + presented.expires
        else:
            not_after = signed_at + self.max_skew
        if current > not_after:
            raise SignatureError("signature_expired", "The signature has expired.")
        if current < signed_at - self.max_skew:
            raise SignatureError(
                "signature_not_yet_valid", "The request date is ahead of the server's clock."
            )
        self.check_signed_headers(presented, request)
        return self.payload_hash(request)

    def check_signed_headers(self, presented: Presented, request: SignedRequest) -> None:
        """``host``, the date (unless presigned), the scheme's own headers and a body's
        ``content-type`` must be signed; every signed header must be sent."""
        signed = set(presented.signed_headers)
        headers = request.headers
        prefix = self.scheme.header_prefix.lower()
        unsigned = {
            name
            for name in headers
            if name not in signed
            and (name.startswith(prefix) or (name == "content-type" and request.has_body))
        }
        if "host" not in signed:
            unsigned.add("host")
        if not presented.presigned and self.scheme.date_header not in signed:
            unsigned.add(self.scheme.date_header)
        if unsigned:
            raise SignatureError(
                "unsigned_header", f"These headers must be signed: {', '.join(sorted(unsigned))}."
            )
        for name in presented.signed_headers:  # sorted: the first absent is named
            if name not in headers:
                raise SignatureError(
                    "missing_signed_header", f"Signed headers missing from the request: {name}."
                )

    def payload_hash(self, request: SignedRequest) -> str:
        claimed = request.headers.get(self.scheme.content_sha256_header)
        if claimed is None:
            return request.body_sha256
        if len(claimed) != 1:
            raise SignatureError(
                "content_sha256_mismatch", "The content hash header appears more than once."
            )
        value = claimed[0].strip()
        if value == UNSIGNED_PAYLOAD:
            if not self.allow_unsigned_payload:
                raise SignatureError("unsigned_payload", "The body must be signed.")
            return UNSIGNED_PAYLOAD
        if not hmac.compare_digest(value.lower(), request.body_sha256):
            raise SignatureError(
                "content_sha256_mismatch", "The content hash header does not match the body."
            )
        return value

    def string_to_sign(
        self, presented: Presented, request: SignedRequest, payload_hash: str
    ) -> tuple[str, str]:
        """The canonical request and the string to sign."""
        canonical = canonical_request(
            request.method,
            canonical_uri(request.path, normalize=self.normalize),
            canonical_query(presented.query),
            request.headers,
            presented.signed_headers,
            payload_hash,
        )
        scope = f"{presented.credential.scope}/{self.scheme.terminator}"
        return canonical, string_to_sign(self.scheme, presented.amz_date, scope, canonical)

    def matches(self, presented: Presented, to_sign: str, key: bytes) -> bool:
        """Constant-time comparison of the presented signature with the expected one."""
        return hmac.compare_digest(signature(key, to_sign), presented.signature)
