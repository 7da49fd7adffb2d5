"""Authentication classes a project derives from ours (the checks recognise subclasses)."""

from __future__ import annotations

from apiauth.authentication import HMACAuthentication, JWTAuthentication


class StrictJWTAuthentication(JWTAuthentication):
    """A project's own subclass: still our JWT scheme."""


class ProjectHMAC(HMACAuthentication):
    """A project's own subclass: still our HMAC scheme."""
