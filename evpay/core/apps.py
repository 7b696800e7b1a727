from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "evpay.core"
    label = "core"
    verbose_name = "Operators and access"
