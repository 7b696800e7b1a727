from .prometheus import configure_multiprocess_identity

configure_multiprocess_identity()  # before any metric exists (see evpay/prometheus.py)

from .celery import app as celery_app  # noqa: E402

__all__ = ("celery_app",)
