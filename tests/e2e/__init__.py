"""End-to-end tests: several services and the real identity provider together."""
