import hashlib
import os
import secrets

import redis
from django.db import connection
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Item

_REDIS = redis.Redis.from_url(os.environ.get("REFERENCE_REDIS_URL", "redis://127.0.0.1:6379/13"))
# What evpay's one Redis call per request does: count the request in its rate-limit window, read the API key.
_COUNT_AND_READ = _REDIS.register_script(
    "local n = redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], 60) return {n, redis.call('GET', KEYS[2])}"
)
_BEGIN_LOCK_LOOKUP = (
    "BEGIN; SELECT pg_try_advisory_xact_lock(%s); SELECT body FROM refapp_idempotencykey WHERE key = %s"
)
_WRITE_COMMIT = """
    WITH item AS (
        INSERT INTO refapp_item (amount, currency, created_at) VALUES (%s, %s, now())
        RETURNING id, amount, currency, created_at
    ), event AS (
        INSERT INTO refapp_event (id, type, data, created_at)
        SELECT %s, 'item.created', json_build_object('id', id, 'amount', amount, 'currency', currency), created_at
        FROM item
    ), stored AS (
        INSERT INTO refapp_idempotencykey (key, body, created_at)
        SELECT %s, json_build_object('id', id, 'amount', amount, 'currency', currency, 'created_at', created_at),
               created_at
        FROM item
    )
    SELECT id, created_at FROM item;
    COMMIT
"""


class ItemSerializer(serializers.ModelSerializer):
    amount = serializers.IntegerField(min_value=1)
    currency = serializers.RegexField(r"^[A-Z]{3}$")

    class Meta:
        model = Item
        fields = ["id", "amount", "currency", "created_at"]


class ItemCreate(generics.CreateAPIView):
    queryset = Item.objects.all()
    serializer_class = ItemSerializer


class ItemDetail(generics.RetrieveAPIView):
    queryset = Item.objects.all()
    serializer_class = ItemSerializer


class ItemCreateWithContractRoundTrips(APIView):
    """`POST /items/contract`: the reference's create plus the round trips evpay's create makes, sent as evpay
    sends them and with none of evpay's code around them: one Redis call (the key and the rate limit), then two
    PostgreSQL messages (BEGIN with the Idempotency-Key's lock and lookup; the row, its event and the stored
    response with COMMIT). What the contract's work costs on this machine at the least, beside what DRF costs."""

    def post(self, request):
        key = request.headers.get("Idempotency-Key", "")
        _COUNT_AND_READ(keys=["ref:rate", "ref:key"])
        serializer = ItemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute(_BEGIN_LOCK_LOOKUP, [lock, key])
            cursor.nextset()
            taken = cursor.fetchone()[0]
            cursor.nextset()
            stored = cursor.fetchone()
            if not taken or stored is not None:
                cursor.execute("ROLLBACK")
                if stored is None:
                    return Response({"detail": "in use"}, status=status.HTTP_409_CONFLICT)
                return Response(stored[0], status=status.HTTP_201_CREATED)
            data = serializer.validated_data
            cursor.execute(_WRITE_COMMIT, [data["amount"], data["currency"], f"evt_{secrets.token_hex(12)}", key])
            item_id, created_at = cursor.fetchone()
        body = {"id": item_id, "amount": data["amount"], "currency": data["currency"], "created_at": created_at}
        return Response(body, status=status.HTTP_201_CREATED)
