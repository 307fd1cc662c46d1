"""String search: prefix by default, `:exact`, `:contains`, case and accent folding,
Chinese names, and comma-separated alternatives, through a real FHIR client (fhirpy)."""

from __future__ import annotations

from tests.fixtures.health import Fhir
from tests.services.health.helpers import (
    TEST_SYSTEM,
    create,
    fhirpy,
    found,
    patient,
    raw,
    tag,
    word,
)


def _make(fhir: Fhir, marker: str, *names: tuple[str, list[str]]) -> list[str]:
    with fhir.client("doctor") as c:
        return [
            str(create(c, patient(marker, name=[{"family": f, "given": g}]))["id"])
            for f, g in names
        ]


def test_prefix_is_the_default(fhir: Fhir) -> None:
    stem = word()
    son, berg, other = _make(
        fhir, tag(), (f"{stem}son", ["Ann"]), (f"{stem}berg", ["Bob"]), (f"X{stem}", ["Cy"])
    )
    client = fhirpy(fhir)
    assert found(client, "Patient", family=stem) == {son, berg}
    assert found(client, "Patient", family=f"{stem}s") == {son}
    assert found(client, "Patient", family=f"{stem}sonx") == set()
    assert found(client, "Patient", name=stem) == {son, berg}
    # Only the start of a name (or of a word in it) matches, not its middle.
    assert found(client, "Patient", family=stem[1:]) & {son, berg, other} == set()


def test_exact_matches_the_whole_string_as_written(fhir: Fhir) -> None:
    stem = word()
    plain, longer, upper = _make(
        fhir,
        tag(),
        (stem, ["Ann"]),
        (f"{stem}son", ["Bob"]),
        (stem.upper(), ["Cy"]),
    )
    client = fhirpy(fhir)
    assert found(client, "Patient", family__exact=stem) == {plain}
    assert found(client, "Patient", family__exact=stem.upper()) == {upper}
    assert found(client, "Patient", family__exact=stem[:-1]) == set()
    assert found(client, "Patient", family=stem) == {plain, longer, upper}


def test_contains_matches_anywhere(fhir: Fhir) -> None:
    stem = word()
    front, middle, end, none = _make(
        fhir,
        tag(),
        (f"{stem}ab", ["Ann"]),
        (f"Ab{stem}cd", ["Bob"]),
        (f"Xyz{stem}", ["Cy"]),
        (word(), ["Dan"]),
    )
    client = fhirpy(fhir)
    assert found(client, "Patient", family__contains=stem) == {front, middle, end}
    assert found(client, "Patient", family__contains=stem[2:].upper()) == {front, middle, end}
    assert found(client, "Patient", family__contains=f"{stem}cd") == {middle}
    assert found(client, "Patient", family__contains=f"{stem}zz") == set()
    assert none not in found(client, "Patient", family__contains=stem[3:7])


def test_case_and_accents_are_ignored(fhir: Fhir) -> None:
    marker = tag()
    mueller, muller, upper, other = _make(
        fhir,
        marker,
        ("Müller", ["José"]),
        ("Muller", ["Jose"]),
        ("MÜLLER", ["JOSÉ"]),
        ("Mulligan", ["Joe"]),
    )
    client = fhirpy(fhir)
    scope = f"{TEST_SYSTEM}|{marker}"
    every_muller = {mueller, muller, upper}
    for family in ("muller", "MÜLLER", "Müller", "MULLER", "mülle"):
        assert found(client, "Patient", identifier=scope, family=family) == every_muller, family
    for given in ("jose", "José", "JOSE", "josé"):
        assert found(client, "Patient", identifier=scope, given=given) == every_muller, given
    assert found(client, "Patient", identifier=scope, family="mul") == {*every_muller, other}
    assert found(client, "Patient", identifier=scope, name="jose muller") == every_muller
    assert found(client, "Patient", identifier=scope, name="muller jose") == every_muller
    # :exact keeps case and accents.
    assert found(client, "Patient", identifier=scope, family__exact="Müller") == {mueller}
    assert found(client, "Patient", identifier=scope, family__exact="MÜLLER") == {upper}
    assert found(client, "Patient", identifier=scope, family__exact="muller") == set()


def test_chinese_names(fhir: Fhir) -> None:
    marker = tag()
    zhang_wei, zhang_san, wang_wei, ou_yang = _make(
        fhir,
        marker,
        ("张", ["伟"]),
        ("张", ["三"]),
        ("王", ["伟"]),
        ("欧阳", ["娜娜"]),
    )
    client = fhirpy(fhir)
    scope = f"{TEST_SYSTEM}|{marker}"
    assert found(client, "Patient", identifier=scope, family="张") == {zhang_wei, zhang_san}
    assert found(client, "Patient", identifier=scope, name="张伟") == {zhang_wei}
    assert found(client, "Patient", identifier=scope, name="张") == {zhang_wei, zhang_san}
    assert found(client, "Patient", identifier=scope, given="伟") == {zhang_wei, wang_wei}
    assert found(client, "Patient", identifier=scope, name="欧阳娜娜") == {ou_yang}
    assert found(client, "Patient", identifier=scope, family="欧") == {ou_yang}
    assert found(client, "Patient", identifier=scope, name__contains="伟") == {
        zhang_wei,
        wang_wei,
    }
    assert found(client, "Patient", identifier=scope, name__contains="阳娜") == {ou_yang}
    assert found(client, "Patient", identifier=scope, family__exact="张") == {
        zhang_wei,
        zhang_san,
    }
    assert found(client, "Patient", identifier=scope, name="李") == set()


def test_comma_means_or_and_repetition_means_and(fhir: Fhir) -> None:
    a, b = word(), word()
    pa, pb, pab = _make(fhir, tag(), (a, ["Ann"]), (b, ["Bob"]), (a, [b]))
    client = fhirpy(fhir)
    assert found(client, "Patient", family=f"{a},{b}") == {pa, pb, pab}
    assert found(client, "Patient", name=f"{a},{b}") == {pa, pb, pab}
    # The same parameter twice: both must hold.
    assert found(client, "Patient", raw(name=[a, b])) == {pab}
    assert found(client, "Patient", family=a, given=b) == {pab}
