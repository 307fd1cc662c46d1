"""The tourism service's server fixtures (tests/fixtures/tourism.py), for this package."""

from tests.fixtures.tourism import tourism, tourism_mongo, tourism_sqlite

__all__ = ["tourism", "tourism_mongo", "tourism_sqlite"]
