from django.apps import AppConfig


class ChargingConfig(AppConfig):
    name = "charging"

    def ready(self):
        from infrastructure.selectors import active_session_source_register

        from .selectors import running_sessions

        # Mapping deletion, connector removal, `active_session_id` and the simulator's CHARGING ask us.
        active_session_source_register(running_sessions)
