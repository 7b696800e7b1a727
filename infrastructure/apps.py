from django.apps import AppConfig


class InfrastructureConfig(AppConfig):
    name = "infrastructure"

    def ready(self):
        from .adapters.ocpi import OcpiAdapter
        from .adapters.registry import register_adapter
        from .adapters.simulator import SimulatorAdapter
        from .selectors import simulator_connector_states

        # The built-in CPMS adapters; each carries its defaults on its class.
        for adapter in (SimulatorAdapter, OcpiAdapter):
            register_adapter(adapter)
        SimulatorAdapter.connector_states = staticmethod(simulator_connector_states)
