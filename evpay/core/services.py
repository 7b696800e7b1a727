"""Operators, their users and API keys; pruning of stored idempotent responses."""

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from evpay.core.errors import NotFound, ValidationFailed
from evpay.core.pruning import prune_in_batches

from .models import ALL_SCOPES, ApiKey, IdempotencyKey, Operator, Role, User


def operator_create(*, name: str) -> Operator:
    if Operator.objects.filter(name=name).exists():
        raise ValidationFailed(f"An operator named {name!r} exists already.", errors={"name": ["Already exists."]})
    return Operator.objects.create(name=name)


def operator_get(*, ref: str) -> Operator:
    """An operator by id (`op_…`) or by name."""
    operator = Operator.objects.filter(id=ref).first() or Operator.objects.filter(name=ref).first()
    if operator is None:
        raise NotFound(f"No operator {ref!r}.")
    return operator


def normalize_scopes(scopes: Iterable[str]) -> list[str]:
    cleaned = sorted({s.strip() for s in scopes if s.strip()})
    unknown = [s for s in cleaned if s != "*" and s not in ALL_SCOPES]
    if unknown or not cleaned:
        raise ValidationFailed(
            f"Unknown scopes: {', '.join(unknown) or '(none given)'}. Valid: *, {', '.join(ALL_SCOPES)}.",
            errors={"scopes": ["Invalid scope."]},
        )
    return ["*"] if "*" in cleaned else cleaned


def api_key_create(
    *, operator: Operator, scopes: Iterable[str], name: str = "", expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Returns the key and its raw value, which is never stored and cannot be shown again."""
    prefix = secrets.token_hex(4)
    raw_key = f"evp_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        operator=operator,
        name=name,
        prefix=prefix,
        key_hash=ApiKey.hash_key(raw_key),
        scopes=normalize_scopes(scopes),
        expires_at=expires_at,
    )
    return key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
    return api_key


def operator_user_create(*, operator: Operator, username: str, password: str, role: str, is_staff: bool = True) -> User:
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role {role!r}.", errors={"role": [f"Choose one of {Role.values}."]})
    if User.objects.filter(username=username).exists():
        raise ValidationFailed(f"User {username!r} exists already.", errors={"username": ["Already exists."]})
    return User.objects.create_user(
        username=username,
        password=password,
        operator=operator,
        role=role,
        is_staff=is_staff,
    )


def idempotency_keys_prune(*, older_than: timedelta | None = None) -> int:
    """Stored POST responses older than IDEMPOTENCY_KEY_TTL (hourly, from beat)."""
    cutoff = timezone.now() - (older_than or timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL))
    return prune_in_batches(IdempotencyKey.objects.filter(created_at__lt=cutoff))
