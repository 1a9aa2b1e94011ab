"""A small in-memory, read-only FHIR R4 server over fixture resources.

Tests and the demo share it: `InMemoryFhir` holds the resources and answers reads and
searches (also used directly to fill prefetch), `fhir_blueprint` serves it over HTTP
(`/metadata`, `GET /{type}/{id}`, `GET /{type}?...`, `POST /{type}/_search`) and
`create_fhir_app` wraps the blueprint in a Flask app of its own.

Searches support what the CDS service and the CDS Hooks Sandbox ask for: patient/subject,
`_id`, token codes (`system|code` lists), status lists, Condition clinical-status,
date/authoredon (Procedure: performed[x]) with prefixes, `_sort`, `_count` with
`_getpagesoffset` paging and `_include=MedicationRequest:medication`. Anything else is a 400 OperationOutcome.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterable
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, Flask, Response, json, request, url_for

from service.gather import fill_template

FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json; charset=utf-8"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
IGNORED_PARAMS = {"_format", "_pretty"}
RESULT_PARAMS = {"_count", "_sort", "_include", "_getpagesoffset"}
SUPPORTED_INCLUDES = {"MedicationRequest:medication", "MedicationRequest:medication:Medication"}
DATE_PREFIXES = {"eq", "ne", "gt", "lt", "ge", "le"}
FAR_PAST = datetime(1, 1, 2, tzinfo=timezone.utc)
FAR_FUTURE = datetime(9999, 12, 30, tzinfo=timezone.utc)


class FhirError(Exception):
    """A request the server refuses; becomes an OperationOutcome with this HTTP status."""

    def __init__(self, status: int, message: str, code: str = "invalid"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def outcome(self) -> dict:
        return operation_outcome(self.message, self.code)


def operation_outcome(message: str, code: str = "invalid") -> dict:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": message}]}


# ---- reading values out of resources -------------------------------------------------

def values_at(resource: dict, path: str) -> list:
    """All values at a dotted path; lists at any step are flattened."""
    found = [resource]
    for step in path.split("."):
        next_found = []
        for item in found:
            value = item.get(step) if isinstance(item, dict) else None
            if isinstance(value, list):
                next_found.extend(value)
            elif value is not None:
                next_found.append(value)
        found = next_found
    return found


def _codings(value) -> list[tuple[str | None, str | None]]:
    """(system, code) pairs of a CodeableConcept, Coding, Identifier or plain code."""
    if isinstance(value, str):
        return [(None, value)]
    if not isinstance(value, dict):
        return []
    if "coding" in value:
        return [pair for coding in value["coding"] for pair in _codings(coding)]
    code = value.get("code", value.get("value"))
    return [(value.get("system"), code)] if code is not None else []


def _reference_key(reference: str, default_type: str | None) -> str:
    """'Patient/1', 'http://x/fhir/Patient/1' -> 'Patient/1'; a bare id gets default_type."""
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2:
        return "/".join(parts[-2:])
    return f"{default_type}/{reference}" if default_type else reference


# ---- dates ---------------------------------------------------------------------------

def date_range(text: str) -> tuple[datetime, datetime]:
    """The half-open UTC range [start, end) a FHIR date, dateTime or instant covers."""
    try:
        if len(text) == 4:
            start = datetime(int(text), 1, 1, tzinfo=timezone.utc)
            return start, start.replace(year=start.year + 1)
        if len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            start = datetime(year, month, 1, tzinfo=timezone.utc)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
            return start, end
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            return start, start + timedelta(days=1)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(400, f"not a FHIR date: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment, moment + timedelta(seconds=1)


def _value_range(value) -> tuple[datetime, datetime] | None:
    if isinstance(value, str):
        return date_range(value)
    if isinstance(value, dict) and ("start" in value or "end" in value):  # a Period
        start = date_range(value["start"])[0] if "start" in value else FAR_PAST
        end = date_range(value["end"])[1] if "end" in value else FAR_FUTURE
        return start, end
    return None


def _date_matches(prefix: str, wanted: tuple[datetime, datetime],
                  have: tuple[datetime, datetime]) -> bool:
    (w_start, w_end), (h_start, h_end) = wanted, have
    if prefix == "eq":
        return w_start <= h_start and h_end <= w_end
    if prefix == "ne":
        return not (w_start <= h_start and h_end <= w_end)
    if prefix == "gt":
        return h_end > w_end
    if prefix == "lt":
        return h_start < w_start
    if prefix == "ge":
        return h_end > w_start
    return h_start < w_end  # le


def _split_prefix(value: str) -> tuple[str, str]:
    if value[:2].isalpha() and len(value) > 2 and value[2].isdigit():
        if value[:2] not in DATE_PREFIXES:
            raise FhirError(400, f"date prefix {value[:2]!r} is not supported")
        return value[:2], value[2:]
    return "eq", value


# ---- search parameters ---------------------------------------------------------------

# A matcher answers "does this resource match this one parameter value (before commas)".
Matcher = Callable[[dict, str], bool]


@dataclass(frozen=True)
class SearchParam:
    kind: str  # token | reference | date | string (the CapabilityStatement type)
    matches: Matcher
    paths: tuple[str, ...] = ()


def token_param(*paths: str) -> SearchParam:
    def matches(resource: dict, wanted: str) -> bool:
        system, bar, code = wanted.rpartition("|")
        for value in (v for path in paths for v in values_at(resource, path)):
            for have_system, have_code in _codings(value):
                if bar and system and have_system != system:
                    continue
                if bar and not system and have_system:
                    continue  # "|code" means "code with no system"
                if not code or have_code == code:
                    return True
        return False
    return SearchParam("token", matches, paths)


def reference_param(path: str, default_type: str | None) -> SearchParam:
    def matches(resource: dict, wanted: str) -> bool:
        wanted_key = _reference_key(wanted, default_type)
        for value in values_at(resource, path):
            reference = value.get("reference") if isinstance(value, dict) else None
            if not reference:
                continue
            have_key = _reference_key(reference, None)
            if have_key == wanted_key or (default_type is None and have_key.endswith("/" + wanted)):
                return True
        return False
    return SearchParam("reference", matches, (path,))


def date_param(*paths: str) -> SearchParam:
    def matches(resource: dict, wanted: str) -> bool:
        prefix, text = _split_prefix(wanted)
        wanted_range = date_range(text)
        for value in (v for path in paths for v in values_at(resource, path)):
            have = _value_range(value)
            if have and _date_matches(prefix, wanted_range, have):
                return True
        return False
    return SearchParam("date", matches, paths)


def string_param(*paths: str) -> SearchParam:
    def matches(resource: dict, wanted: str) -> bool:
        wanted = wanted.lower()
        return any(isinstance(v, str) and v.lower().startswith(wanted)
                   for path in paths for v in values_at(resource, path))
    return SearchParam("string", matches, paths)


def id_param() -> SearchParam:
    return SearchParam("token", lambda resource, wanted: resource.get("id") == wanted, ("id",))


def _patient_params() -> dict[str, SearchParam]:
    return {"patient": reference_param("subject", "Patient"),
            "subject": reference_param("subject", None)}


SEARCH_PARAMS: dict[str, dict[str, SearchParam]] = {
    "Patient": {
        "name": string_param("name.family", "name.given", "name.text"),
        "family": string_param("name.family"),
        "given": string_param("name.given"),
        "identifier": token_param("identifier"),
        "gender": token_param("gender"),
        "birthdate": date_param("birthDate"),
    },
    "Observation": {
        **_patient_params(),
        "code": token_param("code"),
        "category": token_param("category"),
        "status": token_param("status"),
        "date": date_param("effectiveDateTime", "effectivePeriod", "effectiveInstant"),
    },
    "Condition": {
        **_patient_params(),
        "code": token_param("code"),
        "category": token_param("category"),
        "clinical-status": token_param("clinicalStatus"),
        "verification-status": token_param("verificationStatus"),
        "onset-date": date_param("onsetDateTime", "onsetPeriod"),
        "recorded-date": date_param("recordedDate"),
    },
    "MedicationRequest": {
        **_patient_params(),
        "status": token_param("status"),
        "intent": token_param("intent"),
        "code": token_param("medicationCodeableConcept"),
        "medication": reference_param("medicationReference", "Medication"),
        "authoredon": date_param("authoredOn"),
    },
    "Medication": {
        "code": token_param("code"),
    },
    "Procedure": {
        **_patient_params(),
        "code": token_param("code"),
        "status": token_param("status"),
        "date": date_param("performedDateTime", "performedPeriod"),
    },
}
for _params in SEARCH_PARAMS.values():
    _params["_id"] = id_param()


# ---- the server ----------------------------------------------------------------------

class InMemoryFhir:
    """Fixture resources indexed by type and id, with FHIR read and search semantics."""

    def __init__(self, resources: Iterable[dict] = ()):
        self._resources: dict[str, dict[str, dict]] = {}
        for resource in resources:
            self.add(resource)

    @classmethod
    def from_stories(cls, stories: Iterable[dict]) -> "InMemoryFhir":
        """All the patients and chart resources of the stories (never their drafts)."""
        return cls(resource for story in stories for resource in story_resources(story))

    def add(self, resource: dict) -> None:
        kind, resource_id = resource["resourceType"], resource["id"]
        known = self._resources.setdefault(kind, {})
        if resource_id in known and known[resource_id] != resource:
            raise ValueError(f"two different fixture resources are {kind}/{resource_id}")
        known[resource_id] = resource

    def resource_types(self) -> list[str]:
        return sorted(set(SEARCH_PARAMS) | set(self._resources))

    def read(self, kind: str, resource_id: str) -> dict:
        self._check_type(kind)
        try:
            return self._resources.get(kind, {})[resource_id]
        except KeyError:
            raise FhirError(404, f"{kind}/{resource_id} is not known", "not-found") from None

    def search(self, kind: str, params: list[tuple[str, str]], base_url: str) -> dict:
        """A searchset Bundle for `GET {base_url}/{kind}?{params}`."""
        self._check_type(kind)
        params = [(name, value) for name, value in params
                  if name not in IGNORED_PARAMS and value != ""]
        filters = [(name, value) for name, value in params if name not in RESULT_PARAMS]
        matches = [resource for resource in self._resources.get(kind, {}).values()
                   if self._matches_all(kind, resource, filters)]
        matches = self._sorted(kind, matches, _all_values(params, "_sort"))
        count = _int_param(params, "_count", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        offset = _int_param(params, "_getpagesoffset", 0, len(matches))
        page = matches[offset:offset + count]
        includes = self._included(kind, page, _all_values(params, "_include"))
        return self._bundle(kind, params, base_url, len(matches), offset, count, page, includes)

    def query(self, relative_url: str, base_url: str) -> dict | None:
        """Evaluate `Type/id` (None when absent, as a prefetch read) or `Type?params`."""
        path, _, query = relative_url.partition("?")
        parts = path.strip("/").split("/")
        if len(parts) == 2 and not query:
            try:
                return self.read(*parts)
            except FhirError as error:
                if error.status == 404:
                    return None
                raise
        if len(parts) != 1:
            raise FhirError(400, f"not a read or a search: {relative_url!r}")
        return self.search(parts[0], parse_qsl(query, keep_blank_values=True), base_url)

    # -- helpers

    def _check_type(self, kind: str) -> None:
        if kind not in SEARCH_PARAMS and kind not in self._resources:
            raise FhirError(404, f"resource type {kind!r} is not supported", "not-supported")

    def _matches_all(self, kind: str, resource: dict, filters: list[tuple[str, str]]) -> bool:
        known = SEARCH_PARAMS.get(kind, {"_id": id_param()})
        for name, value in filters:
            param = known.get(name)
            if param is None:
                raise FhirError(400, f"search parameter {name!r} is not supported for {kind}",
                                "not-supported")
            if not any(param.matches(resource, one) for one in value.split(",")):
                return False
        return True

    def _sorted(self, kind: str, resources: list[dict], sort_values: list[str]) -> list[dict]:
        keys = [key for value in sort_values for key in value.split(",") if key]
        for key in reversed(keys):  # stable sorts, last key first
            descending = key.startswith("-")
            param = SEARCH_PARAMS.get(kind, {}).get(key.lstrip("-"))
            if param is None or param.kind != "date":
                raise FhirError(400, f"cannot sort {kind} by {key!r}", "not-supported")
            resources = _sort_by_date(resources, param.paths, descending)
        return resources

    def _included(self, kind: str, page: list[dict], include_values: list[str]) -> list[dict]:
        included: dict[str, dict] = {}
        for include in include_values:
            if include not in SUPPORTED_INCLUDES or kind != "MedicationRequest":
                raise FhirError(400, f"_include={include} is not supported", "not-supported")
            for resource in page:
                reference = (resource.get("medicationReference") or {}).get("reference", "")
                key = _reference_key(reference, "Medication") if reference else ""
                medication = self._resources.get("Medication", {}).get(key.partition("/")[2])
                if key.startswith("Medication/") and medication:
                    included[key] = medication
        return list(included.values())

    def _bundle(self, kind, params, base_url, total, offset, count, page, includes) -> dict:
        def link(page_offset: int) -> str:
            kept = [(n, v) for n, v in params if n != "_getpagesoffset"]
            if page_offset:
                kept.append(("_getpagesoffset", str(page_offset)))
            return f"{base_url}/{kind}?{urlencode(kept)}" if kept else f"{base_url}/{kind}"

        links = [{"relation": "self", "url": link(offset)}]
        if count and offset + count < total:
            links.append({"relation": "next", "url": link(offset + count)})
        if offset:
            links.append({"relation": "previous", "url": link(max(offset - count, 0))})
        bundle = {"resourceType": "Bundle", "id": str(uuid.uuid4()),
                  "meta": {"lastUpdated": _now_text()}, "type": "searchset",
                  "total": total, "link": links}
        entries = [_entry(base_url, r, "match") for r in page]
        entries += [_entry(base_url, r, "include") for r in includes]
        if entries:
            bundle["entry"] = entries
        return bundle


def story_resources(story: dict) -> list[dict]:
    return [story["patient"], *story.get("resources", [])]


def _sort_by_date(resources: list[dict], paths: tuple[str, ...], descending: bool) -> list[dict]:
    def start(resource: dict) -> datetime | None:
        ranges = [_value_range(v) for path in paths for v in values_at(resource, path)]
        starts = [r[0] for r in ranges if r]
        return min(starts) if starts else None

    dated = [r for r in resources if start(r) is not None]
    undated = [r for r in resources if start(r) is None]
    return sorted(dated, key=start, reverse=descending) + undated


def _entry(base_url: str, resource: dict, mode: str) -> dict:
    return {"fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}",
            "resource": resource, "search": {"mode": mode}}


def _all_values(params: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in params if key == name]


def _int_param(params: list[tuple[str, str]], name: str, default: int, ceiling: int) -> int:
    values = _all_values(params, name)
    if not values:
        return default
    try:
        number = int(values[-1])
    except ValueError:
        raise FhirError(400, f"{name} must be a whole number, got {values[-1]!r}") from None
    if number < 0:
        raise FhirError(400, f"{name} must not be negative")
    return min(number, ceiling)


def _now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def capability_statement(fhir: InMemoryFhir) -> dict:
    resources = []
    for kind in fhir.resource_types():
        params = SEARCH_PARAMS.get(kind, {})
        resources.append({
            "type": kind,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": name, "type": param.kind} for name, param in params.items()],
        })
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _now_text(),
        "kind": "instance",
        "software": {"name": "baclofen-cds fixture FHIR server"},
        "implementation": {"description": "In-memory, read-only FHIR R4 server of fixture patients"},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{"mode": "server", "resource": resources}],
    }


# ---- simulated failures (stories with "unavailable") -----------------------------------

FAILURE_REASONS = ("timeout", "HTTP 503", "OperationOutcome", "unreadable")


@dataclass(frozen=True)
class SimulatedFailure:
    """Queries of one patient that fail the way a story says a real FHIR server failed."""

    resource_type: str
    patient_id: str
    codes: frozenset[str]  # the query's code tokens; empty: any query of the type
    reason: str  # one of FAILURE_REASONS

    def matches(self, resource_type: str, patient_id: str | None, codes: frozenset[str]) -> bool:
        return (resource_type == self.resource_type and patient_id == self.patient_id
                and (not self.codes or bool(self.codes & codes)))


def simulated_failures(stories: Iterable[dict], templates: dict[str, str]) -> list[SimulatedFailure]:
    """A failure for each story's `unavailable` data key, located by its prefetch template."""
    failures = []
    for story in stories:
        patient_id = story["patient"]["id"]
        for key, reason in story.get("unavailable", {}).items():
            if reason not in FAILURE_REASONS:
                raise ValueError(f"story {story['id']}: cannot simulate {reason!r} for {key}")
            query = fill_template(templates[key], {"patientId": patient_id})
            path, _, params = query.partition("?")
            failures.append(SimulatedFailure(path.split("/")[0], patient_id,
                                             _query_codes(parse_qsl(params)), reason))
    return failures


def _query_codes(params: list[tuple[str, str]]) -> frozenset[str]:
    return frozenset(code for name, value in params if name == "code" for code in value.split(","))


def _query_patient(params: list[tuple[str, str]]) -> str | None:
    for name, value in params:
        if name in ("patient", "subject"):
            return _reference_key(value, "Patient").removeprefix("Patient/")
    return None


def failure_response(reason: str, timeout_seconds: float) -> Response:
    if reason == "timeout":
        time.sleep(timeout_seconds)
        return fhir_response(operation_outcome("simulated timeout", "timeout"), 504)
    if reason == "HTTP 503":
        return fhir_response(operation_outcome("simulated outage", "transient"), 503)
    if reason == "OperationOutcome":
        return fhir_response(operation_outcome("simulated search failure", "exception"))
    return Response("<html><body>Gateway error</body></html>", content_type=FHIR_JSON)


# ---- HTTP ----------------------------------------------------------------------------

def fhir_response(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type=FHIR_JSON)


def fhir_blueprint(fhir: InMemoryFhir, name: str = "fixture_fhir",
                   failures: Iterable[SimulatedFailure] = (),
                   timeout_seconds: float = 5.0) -> Blueprint:
    """Routes of the read-only server; register it at any prefix (e.g. /demo/fhir).

    `failures` make some patients' queries fail ("timeout" answers after timeout_seconds)."""
    blueprint = Blueprint(name, __name__)
    failures = tuple(failures)

    def simulate(kind: str, patient_id: str | None, params: list[tuple[str, str]]) -> None:
        codes = _query_codes(params)
        for failure in failures:
            if failure.matches(kind, patient_id, codes):
                raise _Simulated(failure.reason)

    def base_url() -> str:
        return url_for(f"{name}.metadata", _external=True).removesuffix("/metadata")

    @blueprint.after_request
    def _allow_browsers(response: Response) -> Response:
        # The Sandbox reads the FHIR server from the browser: answer CORS (preflights too).
        headers = response.headers
        headers.setdefault("Access-Control-Allow-Origin", "*")
        if request.method == "OPTIONS":
            headers.setdefault("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            headers.setdefault("Access-Control-Allow-Headers", request.headers.get(
                "Access-Control-Request-Headers", "authorization, content-type"))
            if request.headers.get("Access-Control-Request-Private-Network") == "true":
                # Chrome asks before a public page (the Sandbox) reads a loopback server.
                headers.setdefault("Access-Control-Allow-Private-Network", "true")
        return response

    @blueprint.errorhandler(FhirError)
    def _fhir_error(error: FhirError):
        return fhir_response(error.outcome(), error.status)

    @blueprint.errorhandler(_Simulated)
    def _simulated(failure: _Simulated):
        return failure_response(failure.reason, timeout_seconds)

    @blueprint.route("/metadata", methods=["GET"])
    def metadata():
        return fhir_response(capability_statement(fhir))

    @blueprint.route("/<kind>", methods=["GET"])
    def search_get(kind: str):
        params = list(request.args.items(multi=True))
        simulate(kind, _query_patient(params), params)
        return fhir_response(fhir.search(kind, params, base_url()))

    @blueprint.route("/<kind>/_search", methods=["POST"])
    def search_post(kind: str):
        params = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
        simulate(kind, _query_patient(params), params)
        return fhir_response(fhir.search(kind, params, base_url()))

    @blueprint.route("/<kind>/<resource_id>", methods=["GET"])
    def read(kind: str, resource_id: str):
        simulate(kind, resource_id if kind == "Patient" else None, [])
        return fhir_response(fhir.read(kind, resource_id))

    @blueprint.route("/<kind>", methods=["POST", "PUT", "PATCH", "DELETE"])
    @blueprint.route("/<kind>/<resource_id>", methods=["POST", "PUT", "PATCH", "DELETE"])
    def write(kind: str, resource_id: str | None = None):
        raise FhirError(405, "this FHIR server is read-only", "not-supported")

    return blueprint


class _Simulated(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def create_fhir_app(resources: Iterable[dict] | InMemoryFhir,
                    failures: Iterable[SimulatedFailure] = (), timeout_seconds: float = 5.0) -> Flask:
    """A stand-alone Flask app serving the resources at its root."""
    fhir = resources if isinstance(resources, InMemoryFhir) else InMemoryFhir(resources)
    app = Flask(__name__)
    app.json.sort_keys = False
    app.register_blueprint(fhir_blueprint(fhir, failures=failures, timeout_seconds=timeout_seconds))
    app.extensions["fixture_fhir"] = fhir
    return app
