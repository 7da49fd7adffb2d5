"""OpenAPI 3 with drf-spectacular (``pip install "apiauth[openapi]"``).

apiauth's app config imports this module when drf-spectacular is installed, which registers:

* **Security schemes** for the authentication classes (and their subclasses): ``ApiKey`` (the
  key header), ``BearerJWT`` (HTTP bearer, JWT), ``SigV4`` (AWS Signature Version 4 in the
  ``Authorization`` header: OpenAPI has no type for it, so it is described, with the
  ``x-amazon-apigateway-authtype: awsSigv4`` mark AWS's tools read) and, at the token
  endpoint, ``OAuthClient`` (an application's ``client_secret_basic``).
* Each operation's **scopes** in its security requirement, from the view's
  ``required_scopes`` for that method: in the requirement itself with OpenAPI 3.1 (which
  allows them for every scheme), in the operation's ``x-required-scopes`` and description with
  3.0 (which requires those lists empty for schemes other than OAuth 2).
* The **OAuth endpoints** described in full: form bodies, token and introspection responses,
  errors.

And :class:`AutoSchema` (set it as DRF's ``DEFAULT_SCHEMA_CLASS``) documents what apiauth
answers on every operation besides the view's own responses: 401 with ``WWW-Authenticate``,
403, 429 with ``Retry-After``, the rate-limit headers on every throttled answer, and the
bodies' 400, 413 and 415 — all ``application/problem+json`` (RFC 9457).
"""

from apiauth.openapi import endpoints, schemes
from apiauth.openapi.responses import AutoSchema

__all__ = ["AutoSchema", "endpoints", "schemes"]
