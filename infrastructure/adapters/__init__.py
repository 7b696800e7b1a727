"""CPMS adapters. `base.py` is the interface every adapter implements; `registry.py` says which class serves
which adapter type (registered in `InfrastructureConfig.ready()`); `guard.py` wraps every call in the circuit
breaker, retries and metrics. Callers use `infrastructure.services.adapter_for_mapping(mapping)` or
`adapter_for(...)`, never an adapter directly."""
