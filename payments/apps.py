from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self):
        check_processor_settings()


def check_processor_settings() -> None:
    """Refuse to start (web, worker, beat, manage.py) on a processor setting that would fail the first payment."""
    from django.conf import settings

    from .processors import PROCESSORS

    if settings.PAYMENT_PROCESSOR not in PROCESSORS:
        raise ImproperlyConfigured(
            f"PAYMENT_PROCESSOR={settings.PAYMENT_PROCESSOR!r} is not a payment processor; "
            f"use one of: {', '.join(sorted(PROCESSORS))}."
        )
    from .stripe_processor import worst_case_call_seconds

    budget = settings.PAYMENT_PROCESSOR_CLAIM_TIMEOUT / 2
    if worst_case_call_seconds() > budget:
        raise ImproperlyConfigured(
            f"A Stripe call may take {worst_case_call_seconds():.0f} s ((STRIPE_MAX_NETWORK_RETRIES + 1) * "
            f"STRIPE_TIMEOUT plus back-off), more than half of PAYMENT_PROCESSOR_CLAIM_TIMEOUT "
            f"({settings.PAYMENT_PROCESSOR_CLAIM_TIMEOUT} s); lower the former or raise the latter."
        )
