"""The adapter registry: which adapter class serves which adapter type. Nothing else.

The app registers its built-in adapters in `InfrastructureConfig.ready()`; each adapter class carries what
the registry says about it (`adapter_type`, `requires_base_url`, `config_defaults`). The guard around every
call (circuit breaker, retries, metrics) is `guard.py`.
"""

from typing import Any

from django.conf import settings

from .base import CpmsAdapter

ADAPTERS: dict[str, type[CpmsAdapter]] = {}


def register_adapter(cls: type[CpmsAdapter]) -> type[CpmsAdapter]:
    if not cls.adapter_type:
        raise ValueError(f"{cls.__name__} has no adapter_type")
    ADAPTERS[cls.adapter_type] = cls
    return cls


def adapter_types() -> list[str]:
    return sorted(ADAPTERS)


def is_adapter_type(name: str) -> bool:
    return name in ADAPTERS


def adapter_class(name: str) -> type[CpmsAdapter]:
    return ADAPTERS[name]


def adapter_requires_base_url(name: str) -> bool:
    return ADAPTERS[name].requires_base_url


def adapter_config_defaults(name: str) -> dict[str, Any]:
    """The fields of a fresh AdapterConfig of this type (the rest are the model's defaults): enabled when it is
    CPMS_DEFAULT_ADAPTER, plus what the adapter class asks for."""
    return {"enabled": name == settings.CPMS_DEFAULT_ADAPTER, **ADAPTERS[name].config_defaults}
