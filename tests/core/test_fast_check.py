"""The fast check (service/fast_check.py) against its reference, fhir.resources with the
repair loop (service/parsing.py): it may only say yes where the reference returns the
resource unchanged, so a malformed element the reference rejects (or repairs, or drops)
is never let through; and on the fixtures it says yes to everything the reference accepts
unchanged, unless the resource carries an element the fast check does not know."""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_fixtures import all_stories
from service import fast_check
from service.parsing import Unreadable, parse_resource, parse_with_reference
from tests.conftest import REPO_ROOT, SANDBOX_REQUESTS


def resources_in(value):
    if isinstance(value, dict):
        if value.get("resourceType") in fast_check.VALIDATORS:
            yield value
        for item in value.values():
            yield from resources_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from resources_in(item)


def fixture_resources() -> list[dict]:
    sources = [*all_stories(), *(json.loads(path.read_text()) for path in SANDBOX_REQUESTS.glob("*.json")),
               *(json.loads(path.read_text()) for path in (REPO_ROOT / "fhir_fixtures" / "examples").glob("*.json"))]
    unique = {json.dumps(r, sort_keys=True): r for source in sources for r in resources_in(source)}
    return list(unique.values())


FIXTURES = fixture_resources()


def reference_unchanged(resource: dict) -> bool:
    """The reference accepts the resource exactly as it is (no repair, nothing dropped)."""
    try:
        parsed = parse_with_reference(copy.deepcopy(resource), "R4")
    except Unreadable:
        return False
    return parsed.resource == resource and not parsed.dropped


def test_the_fixtures_cover_every_resource_type_the_check_knows():
    assert {r["resourceType"] for r in FIXTURES} == set(fast_check.VALIDATORS)
    assert len(FIXTURES) > 200


@pytest.mark.parametrize("resource", FIXTURES, ids=lambda r: f"{r['resourceType']}/{r.get('id')}")
def test_on_every_fixture_the_fast_check_agrees_with_the_reference(resource):
    fast = fast_check.accepts(resource)
    reference = reference_unchanged(resource)
    if fast:
        assert reference, "the fast check let through what the reference would change or reject"
    elif reference:
        unknown = set(resource) - fast_check.KNOWN[resource["resourceType"]]
        assert unknown, "the reference accepts this unchanged, and every element is known to the fast check"


def test_most_fixtures_take_the_fast_path():
    assert sum(map(fast_check.accepts, FIXTURES)) >= 0.95 * len(FIXTURES)


JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["", " ", " x", "a  b", "2024", "2024-13", "2023-02-29",
                                           "2024-02-29", "2024-04-30T08:00:00", "2024-04-30T08:00Z",
                                           "2024-04-30T24:00:00Z", "0000-01-01", "1950-01-01",
                                           "http://loinc.org", "mg", "1e400", "-0"]),
    st.from_regex(r"\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})?)?)?)?",
                  fullmatch=True),
    st.lists(st.text(max_size=4), max_size=2), st.dictionaries(st.text(max_size=6), st.text(max_size=4), max_size=2),
    st.just([]), st.just({}),
)


@st.composite
def mutated(draw):
    """A fixture resource with one element, at any depth, replaced by junk (or a key added)."""
    resource = copy.deepcopy(draw(st.sampled_from(FIXTURES)))
    parent, key = None, None
    node = resource
    while isinstance(node, (dict, list)) and node and (parent is None or draw(st.booleans())):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, draw(st.sampled_from(keys))
        node = node[key]
    if parent is None or (isinstance(parent, dict) and draw(st.integers(0, 9)) == 0):
        target = parent if isinstance(parent, dict) else resource
        target[draw(st.sampled_from(["extension", "foo", "_birthDate", "text", "valueString"]))] = draw(JUNK)
    else:
        parent[key] = draw(JUNK)
    return resource


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_on_fuzzed_resources_the_fast_check_never_accepts_what_the_reference_would_not(resource):
    if fast_check.accepts(resource):
        assert reference_unchanged(resource), json.dumps(resource)


def patient_with(element: str, value) -> dict:
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-01-01"}
    patient[element] = value
    return patient


@pytest.mark.parametrize("element, value", [
    ("birthDate", "1950-02-30"), ("birthDate", "50-01-01"), ("birthDate", "1950-01-01T08:00:00"),
    ("birthDate", "195\u0660-01-01"), ("gender", ""), ("gender", "fe  male"), ("id", "a b"),
])
def test_a_malformed_essential_element_is_declined_and_the_reference_calls_it_unreadable(element, value):
    patient = patient_with(element, value)
    assert not fast_check.accepts(patient)
    with pytest.raises(Unreadable):
        parse_resource(patient, "R4")


@pytest.mark.parametrize("element, value, read_as", [
    ("name", {"family": "x"}, [{"family": "x"}]),  # a single object where FHIR wants a list
    ("name", [{"family": ""}], None),  # malformed, not essential: dropped
])
def test_what_the_reference_repairs_or_drops_is_declined_and_repaired(element, value, read_as):
    patient = patient_with(element, value)
    assert not fast_check.accepts(patient)
    assert parse_resource(patient, "R4").resource.get(element) == read_as


TRICKY = [None, True, 0, 1, -1, 1.5, float("nan"), "", " ", "a  b", "x", "2024", "2024-13", "2023-02-29",
          "2024-02-29", "2024-04-30T08:00:00", "2024-04-30T08:00Z", "2024-04-30T24:00:00Z",
          "2024-04-30T08:00:00+15:00", "0000-01-01", "1950-01-01", "urn:oid:1.2", "a b", [], {}, ["x"],
          {"foo": "x"},
          # where Python's and Rust's regex engines disagree on what is whitespace, and on "$"
          "\x1c", "a\x1cb", "\x85", "a\xa0b", "\u2028", "a\u3000b", "\n", "abc\n", "a\tb"]


def leaf_paths(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaf_paths(item, (*path, index))
    else:
        yield path


def one_of_each_type() -> list[dict]:
    """For each resource type, the fast-accepted fixture with the most leaves."""
    best: dict[str, dict] = {}
    for resource in filter(fast_check.accepts, FIXTURES):
        kind = resource["resourceType"]
        if len(list(leaf_paths(resource))) > len(list(leaf_paths(best.get(kind, {})))):
            best[kind] = resource
    return list(best.values())


@pytest.mark.parametrize("resource", one_of_each_type(), ids=lambda r: r["resourceType"])
def test_every_leaf_of_a_fixture_replaced_by_tricky_values_is_never_wrongly_accepted(resource):
    for path in leaf_paths(resource):
        for value in TRICKY:
            mutant = copy.deepcopy(resource)
            target = mutant
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value
            if fast_check.accepts(mutant):
                assert reference_unchanged(mutant), (path, value)
