"""The registry's server fixtures (tests/fixtures/registry.py), for this package's tests."""

from tests.fixtures.registry import registry, registry_mongo, registry_sqlite

__all__ = ["registry", "registry_mongo", "registry_sqlite"]
