"""CPMS adapters. Use `registry.adapter_for_mapping(mapping)` / `registry.adapter_for(...)`; see base.py for
the interface and /work/brief/infra-interface.md for the conventions."""
