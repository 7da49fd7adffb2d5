from __future__ import annotations

from typing import Any

from rest_framework import serializers

from project.demo.models import Order


class OrderSerializer(serializers.ModelSerializer[Order]):
    sku = serializers.RegexField(r"^[A-Za-z0-9-]{3,64}\Z", max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=100)

    class Meta:
        model = Order
        fields = ["id", "sku", "quantity", "created_at"]
        read_only_fields = ["id", "created_at"]

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)


class PingSerializer(serializers.Serializer[Any]):
    """Who is calling (the schema of the ping's answer)."""

    kind = serializers.CharField(help_text="api_key, hmac or jwt.")
    id = serializers.CharField(help_text="The credential's public id (never a secret).")
    scopes = serializers.ListField(child=serializers.CharField())
    plan = serializers.CharField(allow_null=True)
    owner = serializers.CharField(allow_null=True)


class HealthSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["ok"])
