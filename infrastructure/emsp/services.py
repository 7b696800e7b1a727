"""OCPI registration: the credentials handshake (evpay as sender: an operator's PATCH /config/ocpi; evpay as
receiver: the CPO's PUT/POST/DELETE on our credentials module) and the lookup of a caller by its token.

Tokens: the CPO's token A (given by the operator) is used for the handshake only; token B is issued by evpay,
shown to the CPO once and stored as a SHA-256 hash; token C (the CPO's, which evpay calls it with) is stored
encrypted as the adapter's credentials. No network call happens inside a transaction."""

import base64
import binascii
import hashlib
import logging
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from evpay.core.errors import DomainError, ValidationFailed
from evpay.core.models import Operator

from ..adapters.base import AdapterError
from ..adapters.ocpi import OcpiClient, ocpi_discover, ocpi_module_url, ocpi_object
from ..credentials import credentials_encrypt
from ..models import AdapterConfig, CircuitState, OcpiRegistration
from ..services import UNSET, CpmsUnavailable, adapter_config_ensure, adapter_config_update

logger = logging.getLogger(__name__)

OCPI_ADAPTER = "ocpi"
VERSION = "2.2.1"


def ocpi_versions_url() -> str:
    return f"{settings.PUBLIC_BASE_URL}/ocpi/versions"


def ocpi_details_url() -> str:
    return f"{settings.PUBLIC_BASE_URL}/ocpi/{VERSION}"


def ocpi_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ocpi_token_candidates(header: str) -> list[str]:
    """The tokens an `Authorization: Token <x>` header may carry: base64-decoded (OCPI 2.2.1) and as given."""
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value or len(value) > 1000:
        return []
    candidates = [value]
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if decoded and decoded.isprintable():
        candidates.insert(0, decoded)
    return candidates


def ocpi_caller(header: str) -> tuple[OcpiRegistration, str] | None:
    """(registration, token) of the CPO this header authenticates (its token B, or the one offered in a
    handshake still running), else None."""
    for token in ocpi_token_candidates(header):
        digest = ocpi_token_hash(token)
        registration = (
            OcpiRegistration.objects.select_related("config", "operator")
            .filter(Q(token_hash=digest) | Q(pending_token_hash=digest), config__adapter_type=OCPI_ADAPTER)
            .first()
        )
        if registration is not None:
            return registration, token
    return None


def ocpi_credentials_object(*, token: str, operator: Operator) -> dict:
    """Our Credentials object (OCPI 2.2.1 section 7.3.1): the token the CPO calls us with, our versions URL and
    our role."""
    return {
        "token": token,
        "url": ocpi_versions_url(),
        "roles": [
            {
                "role": "EMSP",
                "country_code": settings.CPMS_OCPI_COUNTRY_CODE,
                "party_id": settings.CPMS_OCPI_PARTY_ID,
                "business_details": {"name": operator.name[:100] or "evpay"},
            }
        ],
    }


def _registration_ensure(config: AdapterConfig) -> OcpiRegistration:
    registration, _ = OcpiRegistration.objects.get_or_create(
        config=config, defaults={"operator_id": config.operator_id}
    )
    return registration


def _cpo_party(credentials: dict) -> tuple[str, str]:
    for role in credentials.get("roles") or []:
        if isinstance(role, dict) and str(role.get("role", "")).upper() == "CPO":
            return str(role.get("country_code", ""))[:2].upper(), str(role.get("party_id", ""))[:3].upper()
    return "", ""


def _refused(exc: AdapterError) -> DomainError:
    message = str(exc)
    if "HTTP 401" in message or "HTTP 403" in message:
        return ValidationFailed(
            f"The CPO refused the token: {message}", errors={"credentials": ["The CPO refused this token."]}
        )
    return CpmsUnavailable(f"The OCPI registration with the CPO failed: {message}")


def _record_registration(
    *, config_pk: int, versions_url: str, token_hash: str, token_c: str, cpo: dict, discovery: dict
) -> AdapterConfig:
    with transaction.atomic():
        config = AdapterConfig.objects.select_for_update().get(pk=config_pk)
        registration = _registration_ensure(config)
        registration = OcpiRegistration.objects.select_for_update().get(pk=registration.pk)
        registration.token_hash, registration.pending_token_hash = token_hash, ""
        registration.versions_url = versions_url
        registration.cpo_country_code, registration.cpo_party_id = _cpo_party(cpo)
        registration.registered_at = timezone.now()
        registration.save()
        config.base_url = versions_url
        config.credentials_encrypted = credentials_encrypt({"token": token_c})
        config.discovery = discovery
        config.circuit_state, config.consecutive_failures, config.circuit_opened_at = CircuitState.CLOSED, 0, None
        config.save()
    return config


def ocpi_register(*, operator: Operator, versions_url: str, token_a: str, timeout_s: float) -> AdapterConfig:
    """The credentials handshake as sender (OCPI 2.2.1 section 7.2.1): discover the CPO's endpoints with token A,
    offer a fresh token B and our versions URL to its credentials module, keep the token C it answers with.
    Nothing changes unless the handshake completes (503 `cpms_unavailable` / 400 when the CPO refuses)."""
    config = adapter_config_ensure(operator_id=operator.pk, adapter_type=OCPI_ADAPTER)
    if not versions_url:
        raise ValidationFailed(
            "The CPO's versions URL (base_url) is needed for the OCPI registration.",
            errors={"base_url": ["Required to register with the CPO."]},
        )
    client = OcpiClient(token=token_a, timeout_s=timeout_s)
    try:
        discovery = ocpi_discover(client, versions_url)
    except AdapterError as exc:
        raise _refused(exc) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CpmsUnavailable(f"The CPO's version details are malformed ({exc.__class__.__name__}).") from exc
    credentials_url = ocpi_module_url(discovery, "credentials", "RECEIVER")
    if not credentials_url:
        raise CpmsUnavailable("The CPO offers no OCPI credentials module.")
    token_b = secrets.token_urlsafe(32)
    with transaction.atomic():  # token B must be known before the CPO calls our versions endpoint with it
        registration = _registration_ensure(AdapterConfig.objects.select_for_update().get(pk=config.pk))
        OcpiRegistration.objects.filter(pk=registration.pk).update(pending_token_hash=ocpi_token_hash(token_b))
    try:
        _, envelope = client.request(
            "POST", credentials_url, json=ocpi_credentials_object(token=token_b, operator=operator)
        )
        if envelope["status_code"] != 1000:
            raise AdapterError(f"status_code {envelope['status_code']} {envelope.get('status_message') or ''}")
        cpo = ocpi_object(envelope.get("data"))
        token_c = str(cpo["token"])
        if not token_c or len(token_c) > 1000:
            raise ValueError("no usable token")
    except AdapterError as exc:
        OcpiRegistration.objects.filter(pk=registration.pk).update(pending_token_hash="")
        raise _refused(exc) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        OcpiRegistration.objects.filter(pk=registration.pk).update(pending_token_hash="")
        raise CpmsUnavailable(f"The CPO's credentials answer is malformed ({exc.__class__.__name__}).") from exc
    config = _record_registration(
        config_pk=config.pk,
        versions_url=versions_url,
        token_hash=ocpi_token_hash(token_b),
        token_c=token_c,
        cpo=cpo,
        discovery=discovery,
    )
    logger.info("OCPI registration of %s with %s completed", operator.pk, versions_url)
    return config


def ocpi_credentials_receive(*, registration: OcpiRegistration, credentials: dict, timeout_s: float) -> dict:
    """The handshake as receiver (the CPO's POST/PUT on our credentials module): the CPO gives its token C and
    versions URL; we discover its endpoints with that token and answer with a new token B (the old one stops
    working). Returns our Credentials object."""
    token_c, versions_url = credentials["token"], credentials["url"]
    client = OcpiClient(token=token_c, timeout_s=timeout_s)
    try:
        discovery = ocpi_discover(client, versions_url)
    except (AdapterError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CpmsUnavailable(f"evpay could not use the CPO's versions URL: {exc}") from exc
    token_b = secrets.token_urlsafe(32)
    config = _record_registration(
        config_pk=registration.config_id,
        versions_url=versions_url,
        token_hash=ocpi_token_hash(token_b),
        token_c=token_c,
        cpo=credentials,
        discovery=discovery,
    )
    return ocpi_credentials_object(token=token_b, operator=config.operator)


def ocpi_unregister(*, config: AdapterConfig) -> None:
    """Forget the registration (the CPO's DELETE on our credentials module, or `credentials: null`): token B
    stops working, token C is dropped."""
    with transaction.atomic():
        config = AdapterConfig.objects.select_for_update().get(pk=config.pk)
        OcpiRegistration.objects.filter(config=config).update(token_hash="", pending_token_hash="", registered_at=None)
        config.credentials_encrypted = ""
        config.discovery = {}
        config.save()


def adapter_config_update_or_register(*, operator: Operator, adapter_type: str, **changes: Any) -> AdapterConfig:
    """PATCH /config/{adapter_type}. For `ocpi`, credentials `{token}` are the CPO's token A: the OCPI credentials
    handshake runs first (with the given or stored base_url, the CPO's versions URL) and stores the CPO's token
    C; the other fields are applied only once it completed (a failed handshake changes nothing).
    `credentials: null` for ocpi also ends the registration."""
    credentials = changes.get("credentials", UNSET)
    if adapter_type != OCPI_ADAPTER or credentials is UNSET:
        return adapter_config_update(operator=operator, adapter_type=adapter_type, **changes)
    changes.pop("credentials")
    config = adapter_config_ensure(operator_id=operator.pk, adapter_type=adapter_type)
    if credentials is None:
        ocpi_unregister(config=config)
        return adapter_config_update(operator=operator, adapter_type=adapter_type, **changes)
    base_url = changes.get("base_url")
    timeout_ms = changes.get("timeout_ms") or config.timeout_ms
    ocpi_register(
        operator=operator,
        versions_url=config.base_url if base_url is None else base_url,
        token_a=credentials["token"],
        timeout_s=timeout_ms / 1000,
    )
    return adapter_config_update(operator=operator, adapter_type=adapter_type, **changes)
