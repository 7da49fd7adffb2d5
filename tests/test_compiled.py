from __future__ import annotations

import datetime
import threading
import uuid
from typing import Any

import pytest
from django.db.models import Model
from django.utils import timezone

from apiauth.compiled import CompiledLookup
from apiauth.models import APIKey
from tests.factories import make_key, make_user

pytestmark = pytest.mark.django_db(transaction=True)

lookup: CompiledLookup[APIKey] = CompiledLookup(
    lambda digest: APIKey.objects.select_related("owner").filter(key_hash=digest)
)


def test_matches_the_orm_field_for_field(django_assert_num_queries: Any) -> None:
    owner = make_user("owner")
    key, _raw = make_key(
        owner=owner,
        allowed_networks=["10.0.0.0/8"],
        expires_at=timezone.now() + datetime.timedelta(days=1),
    )
    expected = APIKey.objects.select_related("owner").get(pk=key.pk)
    with django_assert_num_queries(1):
        found = lookup.get(key.key_hash, using="default")
        assert found is not None
        assert found.owner == owner  # joined: no second query
    for field in APIKey._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert isinstance(found.lineage, uuid.UUID)
    assert isinstance(found.expires_at, datetime.datetime) and found.expires_at.tzinfo
    assert found.scopes == ["orders:read", "orders:write"]
    assert found._state.adding is False and found._state.db == "default"


def test_missing_and_ownerless() -> None:
    assert lookup.get("0" * 64, using="default") is None
    key, _raw = make_key()
    found = lookup.get(key.key_hash, using="default")
    assert found is not None and found.owner is None


def test_each_thread_compiles_for_its_own_connection() -> None:
    key, _raw = make_key()
    found: list[Model | None] = []
    thread = threading.Thread(target=lambda: found.append(lookup.get(key.key_hash, "default")))
    thread.start()
    thread.join()
    assert found == [key]


def test_value_must_reach_the_query() -> None:
    broken: CompiledLookup[APIKey] = CompiledLookup(lambda value: APIKey.objects.filter(pk=1))
    with pytest.raises(ValueError):
        broken.get("x", using="default")
