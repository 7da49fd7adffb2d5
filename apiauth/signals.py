"""What apiauth's models announce; the subsystems that care listen (connected in
``AppConfig.ready()``, as ``django.contrib.auth`` wires its signals), so a model never imports
the key ring or the cache."""

from __future__ import annotations

from django.dispatch import Signal

signing_keys_changed = Signal()
"""Signing keys changed in a way ``post_save`` does not announce (a bulk update): the key ring
reloads."""
