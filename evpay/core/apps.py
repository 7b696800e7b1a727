from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "evpay.core"
    label = "core"
    verbose_name = "Operators and access"

    def ready(self):
        from .selectors import api_key_cache_invalidation_connect

        api_key_cache_invalidation_connect()
