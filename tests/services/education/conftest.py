"""The education service's server fixtures (tests/fixtures/education.py), for this package."""

from tests.fixtures.education import education, education_mongo, education_sqlite

__all__ = ["education", "education_mongo", "education_sqlite"]
