"""Admin screens: issue, renew and revoke credentials, manage signing keys and token
families, read the audit trail. One module per concern over :mod:`apiauth.admin.base`
(``AuditedAdmin`` for every admin, ``CredentialAdmin`` for both credential kinds)."""

from apiauth.admin.apikeys import APIKeyAdmin
from apiauth.admin.base import AuditedAdmin, CredentialAdmin, PlanFilter, StatusFilter
from apiauth.admin.hmac import HMACCredentialAdmin
from apiauth.admin.jwt import SigningKeyAdmin, TokenFamilyAdmin
from apiauth.admin.oauth import ApplicationAdmin, ConsentAdmin
from apiauth.admin.records import AuditEventAdmin

__all__ = [
    "APIKeyAdmin",
    "ApplicationAdmin",
    "ConsentAdmin",
    "AuditEventAdmin",
    "AuditedAdmin",
    "CredentialAdmin",
    "HMACCredentialAdmin",
    "PlanFilter",
    "SigningKeyAdmin",
    "StatusFilter",
    "TokenFamilyAdmin",
]
