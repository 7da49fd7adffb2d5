from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models


class Order(models.Model):
    # Who owns the order: "user:<pk>" or, for a credential without a user, its lineage.
    owner_ref = models.CharField(max_length=80, db_index=True, editable=False)
    sku = models.CharField(max_length=64, validators=[RegexValidator(r"^[A-Za-z0-9-]{3,64}\Z")])
    quantity = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku}"
