"""Test-wide fixtures come from the tests.fixtures package (one module per real server)."""

pytest_plugins = [
    "tests.fixtures.ferretdb",
    "tests.fixtures.keycloak",
    "tests.fixtures.identity",
    "tests.fixtures.storage",
    "tests.fixtures.health",
]
