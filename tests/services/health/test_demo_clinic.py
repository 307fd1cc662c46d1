"""The generated clinical demo records: valid for the FHIR service, loaded once."""

from __future__ import annotations

from pathlib import Path

from services.health.audit import AuditLog
from services.health.bundles import BundleProcessor
from services.health.demo import load_demo
from services.health.demo_clinic import FIRST_NUMBER, clinic_bundles, load_clinic
from services.health.repository import FhirRepository, specs
from services.health.searching import Searcher
from services.health.service import FhirService
from services.health.settings import HealthSettings
from shared.settings import build_settings
from shared.storage import open_store

TYPES = ("Patient", "Encounter", "Immunization")
BASE = "http://127.0.0.1:8000/fhir"


def test_bundles_are_the_same_on_every_call_and_stay_under_the_entry_limit():
    assert clinic_bundles(120) == clinic_bundles(120)
    limit = HealthSettings.model_fields["max_bundle_entries"].default
    assert all(len(bundle["entry"]) <= limit for bundle in clinic_bundles(300))
    first = clinic_bundles(1)[0]["entry"][0]["resource"]
    assert first["identifier"][0]["value"] == f"R-{FIRST_NUMBER:08d}"


async def test_loading_twice_writes_every_record_once(tmp_path: Path):
    settings = build_settings(HealthSettings, store_url=f"sqlite:///{tmp_path}/health.db")
    store = open_store(settings.store_url, specs())
    await store.open()
    try:
        repo = FhirRepository(store)
        audit = AuditLog(repo, flush_seconds=0.1, batch_size=200, max_backlog=2000)
        service = FhirService(repo, audit, settings)
        bundles = BundleProcessor(service, Searcher(service), settings)
        async with audit.running():
            await load_demo(bundles, BASE)
            await load_clinic(bundles, BASE, 60)
            counts = {t: await repo.count(t, []) for t in TYPES}
            await load_clinic(bundles, BASE, 60)
            again = {t: await repo.count(t, []) for t in TYPES}
        # Three hand-written patients plus the sixty generated ones; nothing added twice.
        assert counts == {"Patient": 63, "Encounter": 60, "Immunization": 60}
        assert again == counts
    finally:
        await store.close()
