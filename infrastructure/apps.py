from django.apps import AppConfig


class InfrastructureConfig(AppConfig):
    name = "infrastructure"
