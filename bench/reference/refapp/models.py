from django.db import models


class Item(models.Model):
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.amount} {self.currency}"


class Event(models.Model):
    """For `POST /items/contract` only: the event a create writes in evpay's outbox."""

    id = models.CharField(max_length=40, primary_key=True)
    type = models.CharField(max_length=64)
    data = models.JSONField()
    created_at = models.DateTimeField()

    def __str__(self):
        return self.id


class IdempotencyKey(models.Model):
    """For `POST /items/contract` only: the stored response of a create with an Idempotency-Key."""

    key = models.CharField(max_length=255, primary_key=True)
    body = models.JSONField()
    created_at = models.DateTimeField()

    def __str__(self):
        return self.key
