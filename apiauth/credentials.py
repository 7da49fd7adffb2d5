"""The scheme-independent view of an authenticated credential.

``request.auth`` is always a :class:`Credential`, whichever class authenticated the request, so
permissions, throttles, audit and views never depend on the scheme.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rest_framework.exceptions import APIException, NotAuthenticated
from rest_framework.request import Request

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from apiauth.store.base import Check


@dataclass(frozen=True)
class Credential:
    kind: str
    """``api_key``, ``hmac`` or ``jwt``."""
    id: str
    """Public identifier, safe to log and show."""
    scopes: frozenset[str]
    plan: str | None
    owner: AbstractBaseUser | None
    expires_at: datetime.datetime | None
    lineage: str
    """Stable across rotations: rate-limit buckets and usage belong to it, not to one secret."""
    limits: dict[str, Any] | None = field(default=None, compare=False)
    """Per-credential limit overrides, merged over the plan's."""
    partition: str | None = field(default=None, compare=False)
    """A person using an application's credential (a user's pk): besides the application's
    limits, each person has their own (``PERSON_LIMITS``)."""
    check: Check | None = field(default=None, compare=False, repr=False)
    """Set when the credential was served from a worker's copy: the version token the rate
    limiter confirms in Redis before the view runs (:mod:`apiauth.cache`)."""

    @property
    def owner_ref(self) -> str:
        """Who owns data created with this credential: the user, else the credential lineage."""
        if self.owner is not None:
            return f"user:{self.owner.pk}"
        return f"{self.kind}:{self.lineage}"

    def has_scope(self, scope: str) -> bool:
        from apiauth.scopes import scope_granted

        return scope_granted(scope, self.scopes)


def with_owner(credential: Credential, owner: Any) -> Credential:
    """``credential`` with ``owner`` in its place: a worker's copy is built once and each request
    gets it with its own copy of the owner. The fields are copied, not passed through
    ``__init__`` again (a frozen dataclass sets each field through ``object.__setattr__``):
    this runs on every request."""
    clone = object.__new__(Credential)
    fields = clone.__dict__
    fields.update(credential.__dict__)
    fields["owner"] = owner
    return clone


def get_credential(request: Request) -> Credential:
    """``request.auth`` as a :class:`Credential`; 401 when the request has none."""
    credential = request.auth
    if not isinstance(credential, Credential):
        raise NotAuthenticated()
    return credential


class MachinePrincipal:
    """``request.user`` for a credential with no owning user.

    Authenticated for DRF's ``IsAuthenticated``, but never staff, superuser or holder of any
    Django permission.
    """

    is_active = True
    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, credential: Credential) -> None:
        self.credential = credential
        self.username = f"{credential.kind}:{credential.id}"

    def __str__(self) -> str:
        return self.username

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MachinePrincipal) and other.credential.id == self.credential.id

    def __hash__(self) -> int:
        return hash(self.username)

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def has_perms(self, perm_list: object, obj: object = None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False


@runtime_checkable
class Confirmable(Protocol):
    """What the throttle asks of the class that authenticated a request when its Redis round
    trip finds the credential out of date (a worker's stale copy), revoked (a mark) or the
    request replayed (a signed write's claim made before): every
    :class:`~apiauth.authentication.base.CredentialAuthentication` is one."""

    def reauthenticate(self, request: Request) -> tuple[Any, Credential]:
        """Authenticate again from the database."""
        ...

    def revoked(self, request: Request, credential: Credential) -> APIException:
        """The exception (recorded) for a credential a revocation mark covers."""
        ...

    def replayed(self, request: Request, credential: Credential) -> APIException:
        """The exception (recorded) for a request whose replay claim was made before."""
        ...


def authenticator_of(request: Request) -> Confirmable:
    """The class that authenticated ``request``, as the throttle needs it."""
    authenticator = request.successful_authenticator
    if not isinstance(authenticator, Confirmable):  # pragma: no cover (only ours set a check)
        raise TypeError(f"{type(authenticator).__name__} cannot confirm its credential")
    return authenticator


CLAIMED_ATTR = "_apiauth_claimed"


def claim_made(request: Request, credential: Credential) -> None:
    """Remember, on the Django request, that the store made ``credential``'s claim (its
    :attr:`~apiauth.store.Check.claim`): a view that hands the request on to another
    authenticates it again, and must not find its own claim taken."""
    check = credential.check
    if check is not None and check.claim:
        remember_claim(request)


def remember_claim(request: Request) -> None:
    """Mark this request's claim as made (by a confirmation, a script or a ``SET NX``)."""
    setattr(request._request, CLAIMED_ATTR, True)


def claimed(request: Request) -> bool:
    """Whether this request's claim was made already (:func:`claim_made`)."""
    return bool(getattr(request._request, CLAIMED_ATTR, False))
