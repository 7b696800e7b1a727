from django.db import models
from django.utils import timezone

from evpay.api.ids import PrefixedIdField

PRICE_DIGITS = {"max_digits": 12, "decimal_places": 4}


class Tariff(models.Model):
    """Prices in major units excluding VAT; `preauthorize_amount` in minor units. One default per operator."""

    id = PrefixedIdField(prefix="trf")
    operator = models.ForeignKey("core.Operator", on_delete=models.PROTECT, related_name="tariffs")
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    price_per_kwh = models.DecimalField(default=0, **PRICE_DIGITS)
    price_per_minute = models.DecimalField(default=0, **PRICE_DIGITS)
    session_fee = models.DecimalField(default=0, **PRICE_DIGITS)
    vat_rate_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    preauthorize_amount = models.BigIntegerField()
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["operator"], condition=models.Q(is_default=True),
                                    name="one_default_tariff_per_operator"),
        ]

    def __str__(self):
        return f"{self.name} ({self.currency})"
