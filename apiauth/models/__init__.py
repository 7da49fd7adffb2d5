"""apiauth's models, one module per credential kind.

- :mod:`~apiauth.models.base`: what every credential shares (``AbstractCredential``), its
  lifecycle and who may issue for whom;
- :mod:`~apiauth.models.apikeys`: API keys; :mod:`~apiauth.models.hmac`: HMAC credentials;
- :mod:`~apiauth.models.jwt`: our signing keys and the refresh-token families we issue;
- :mod:`~apiauth.models.oauth`: applications people authorize, their consents, and
  authorization codes;
- :mod:`~apiauth.models.records`: the audit trail and the token revocations;
- :mod:`~apiauth.models.validators`: the field validators (the migrations name them here).

Models announce their changes (:mod:`apiauth.signals`); the credential cache and the key
ring listen (connected in ``AppConfig.ready()``).
"""

from apiauth.models.apikeys import APIKey, APIKeyManager
from apiauth.models.base import (
    ISSUE_FOR_OTHERS,
    REVOCATION_FIELDS,
    AbstractCredential,
    AlreadyRolled,
    CredentialManager,
    CredentialQuerySet,
    RevokedCredential,
    may_act_as,
    private_copy,
)
from apiauth.models.hmac import (
    ACCESS_KEY_ID_ALPHABET,
    ACCESS_KEY_ID_LENGTH,
    HMAC_SECRET_LENGTH,
    HMACCredential,
    HMACCredentialManager,
    generate_access_key_id,
    generate_hmac_secret,
)
from apiauth.models.jwt import (
    REFRESH_TOKEN_MARKER,
    RefreshToken,
    Rotation,
    SigningKey,
    SigningKeyManager,
    TokenFamily,
)
from apiauth.models.oauth import (
    Application,
    ApplicationManager,
    AuthorizationCode,
    Consent,
    generate_client_id,
    generate_client_secret,
    is_loopback,
    validate_grant_types,
    validate_redirect_uris,
)
from apiauth.models.records import AuditEvent, Revocation
from apiauth.models.validators import (
    FORBIDDEN_NAME_CATEGORIES,
    validate_name,
    validate_networks,
    validate_plan,
    validate_scopes,
)

__all__ = [
    "ACCESS_KEY_ID_ALPHABET",
    "ACCESS_KEY_ID_LENGTH",
    "FORBIDDEN_NAME_CATEGORIES",
    "HMAC_SECRET_LENGTH",
    "ISSUE_FOR_OTHERS",
    "REFRESH_TOKEN_MARKER",
    "REVOCATION_FIELDS",
    "APIKey",
    "APIKeyManager",
    "Application",
    "ApplicationManager",
    "AuthorizationCode",
    "Consent",
    "AbstractCredential",
    "AlreadyRolled",
    "AuditEvent",
    "CredentialManager",
    "CredentialQuerySet",
    "HMACCredential",
    "HMACCredentialManager",
    "RefreshToken",
    "Revocation",
    "RevokedCredential",
    "Rotation",
    "SigningKey",
    "SigningKeyManager",
    "TokenFamily",
    "generate_access_key_id",
    "generate_client_id",
    "generate_client_secret",
    "is_loopback",
    "validate_grant_types",
    "validate_redirect_uris",
    "generate_hmac_secret",
    "may_act_as",
    "private_copy",
    "validate_name",
    "validate_networks",
    "validate_plan",
    "validate_scopes",
]
