"""DRF authentication classes, one module per scheme.

Each follows DRF's contract: ``None`` when the request carries no credential of its kind (the
next class tries), a 401 for a bad one, and ``(user, Credential)`` for a good one.
:class:`~apiauth.authentication.base.CredentialAuthentication` holds the template method
the schemes fill in (claim → lockout → authenticate, every refusal recorded once):

- :mod:`~apiauth.authentication.apikey`: API keys;
- :mod:`~apiauth.authentication.hmac`: SigV4-signed requests, with the request adapter in
  :mod:`~apiauth.authentication.signed_request`;
- :mod:`~apiauth.authentication.jwt`: bearer JWTs.
"""

from apiauth.authentication.apikey import APIKeyAuthentication
from apiauth.authentication.base import CredentialAuthentication, Refused
from apiauth.authentication.hmac import HMACAuthentication
from apiauth.authentication.jwt import AmbiguousUser, JWTAuthentication
from apiauth.authentication.signed_request import (
    repeated_in_order,
    request_headers,
    wire_path,
    wire_query,
)

__all__ = [
    "APIKeyAuthentication",
    "AmbiguousUser",
    "CredentialAuthentication",
    "HMACAuthentication",
    "JWTAuthentication",
    "Refused",
    "repeated_in_order",
    "request_headers",
    "wire_path",
    "wire_query",
]
