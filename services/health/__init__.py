"""Shared health records: a FHIR R4 server (R4B models) on the suite's storage engine."""
