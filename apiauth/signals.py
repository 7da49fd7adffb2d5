"""What apiauth's models announce; the subsystems that care listen (connected in
``AppConfig.ready()``, as ``django.contrib.auth`` wires its signals), so a model never imports
the key ring or the cache."""

from __future__ import annotations

from django.dispatch import Signal

signing_keys_changed = Signal()
"""Signing keys changed in a way ``post_save`` does not announce (a bulk update): the key ring
reloads."""

credentials_changed = Signal()
"""Credentials of these ``lineages`` changed in a way ``post_save`` does not announce (a
revocation is a conditional ``UPDATE``): every worker's copy of them is out of date.
Arguments: ``lineages`` (a list of strings), ``using`` (the database alias)."""
