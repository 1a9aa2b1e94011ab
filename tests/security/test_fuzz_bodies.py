"""Property-based attacks on the hook and feedback endpoints: malformed, random and mutated
bodies never cause a 5xx; the size, depth, Bundle and string limits answer 413/400."""
from __future__ import annotations

import copy
import io
import json
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app

from .conftest import FEEDBACK_PATH, HOOK_PATH, feedback_body, order_sign_body

EXAMPLES = 120
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow])
LIMITS = {"max_body_bytes": 20_000, "max_json_depth": 20, "max_bundle_entries": 50,
          "max_string_length": 500}

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12),
                                                                      children, max_size=4),
    max_leaves=20)


@pytest.fixture(scope="module")
def client():
    """Unauthenticated, so every body reaches the checks; no FHIR server is reachable."""
    app = create_app({
        "server": {"instance_path": tempfile.mkdtemp(prefix="baclofen-cds-fuzz-"), **LIMITS},
        "fhir": {"allowed_servers": ["http://127.0.0.1:9/fhir"], "retries": 0,
                 "total_timeout": 0.5},
    })
    return app.test_client()


def assert_handled(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    assert response.is_json


def paths_of(value, prefix=()):
    """Every location in a JSON document, as key/index tuples."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_of(item, prefix + (index,))


def replaced(document, path, new_value):
    if not path:
        return new_value
    document = copy.deepcopy(document)
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new_value
    return document


def mutations_of(valid_body: dict):
    locations = sorted(paths_of(valid_body), key=repr)
    return st.tuples(st.sampled_from(locations), json_values).map(
        lambda change: replaced(valid_body, *change))


VALID_BODIES = {
    "hook": (HOOK_PATH, order_sign_body()),
    "hook-fetching": (HOOK_PATH, order_sign_body("http://127.0.0.1:9/fhir")),
    "feedback": (FEEDBACK_PATH, feedback_body()),
}


@pytest.mark.parametrize("path", [HOOK_PATH, FEEDBACK_PATH])
@FUZZ_SETTINGS
@given(body=json_values)
def test_random_json(client, path, body):
    assert_handled(client.post(path, json=body))


@pytest.mark.parametrize("name", sorted(VALID_BODIES))
@FUZZ_SETTINGS
@given(data=st.data())
def test_valid_body_with_one_element_replaced(client, name, data):
    path, valid = VALID_BODIES[name]
    assert_handled(client.post(path, json=data.draw(mutations_of(valid))))


@FUZZ_SETTINGS
@given(raw=st.binary(max_size=300),
       content_type=st.sampled_from(["application/json", "application/fhir+json",
                                     "text/plain", "application/json; charset=latin-1", ""]))
def test_hook_and_feedback_with_random_bytes(client, raw, content_type):
    for path in (HOOK_PATH, FEEDBACK_PATH):
        assert_handled(client.post(path, data=raw, content_type=content_type or None))


@FUZZ_SETTINGS
@given(service_id=st.text(min_size=1, max_size=40).filter(lambda s: "/" not in s))
def test_any_service_id(client, service_id):
    assert_handled(client.post(f"/cds-services/{service_id}", json=order_sign_body()))


# --- the limits ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", [HOOK_PATH, FEEDBACK_PATH])
def test_body_over_the_size_limit_is_413(client, path):
    body = json.dumps({"padding": ["x" * 400] * 60})
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 413


@pytest.mark.parametrize("path", [HOOK_PATH, FEEDBACK_PATH])
def test_chunked_body_over_the_size_limit_is_413(client, path):
    """No Content-Length to check up front: the read itself must stop at the limit.
    (wsgi.input_terminated: the server, gunicorn, has de-chunked the stream.)"""
    stream = io.BytesIO(b'{"padding": "' + b"x" * 25_000 + b'"}')
    response = client.post(path, input_stream=stream, content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413


@pytest.mark.parametrize("depth", [21, 5_000, 200_000])
@pytest.mark.parametrize("path", [HOOK_PATH, FEEDBACK_PATH])
def test_json_nested_too_deep_is_400(client, path, depth):
    body = "[" * depth + "]" * depth
    too_large = len(body) > LIMITS["max_body_bytes"]
    expected = 413 if too_large else 400
    assert client.post(path, data=body, content_type="application/json").status_code == expected


# Strings full of brackets, quotes and backslashes: the depth check must count nesting only.
bracket_text = st.text(alphabet='[]{}"\\a', max_size=8)
bracket_values = st.recursive(
    st.none() | st.integers() | bracket_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(bracket_text, children, max_size=3),
    max_leaves=12)


def nesting(value) -> int:
    if not isinstance(value, (dict, list)):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((nesting(item) for item in items), default=0)


@FUZZ_SETTINGS
@given(value=bracket_values, wrappers=st.integers(min_value=0, max_value=LIMITS["max_json_depth"] + 2))
def test_the_depth_limit_counts_nesting_not_brackets_in_strings(client, value, wrappers):
    for _ in range(wrappers):
        value = [value]
    response = client.post(HOOK_PATH, data=json.dumps(value), content_type="application/json")
    assert_handled(response)
    refused_as_deep = "nested deeper" in response.get_json()["error"]
    assert refused_as_deep == (nesting(value) > LIMITS["max_json_depth"])


def test_nesting_inside_a_valid_request_is_400(client):
    body = order_sign_body()
    nested: dict = {}
    for _ in range(25):
        nested = {"a": nested}
    body["context"]["draftOrders"]["entry"][0]["resource"]["extension"] = [nested]
    assert client.post(HOOK_PATH, json=body).status_code == 400


def test_too_many_bundle_entries_is_400(client):
    body = order_sign_body()
    entry = body["context"]["draftOrders"]["entry"][0]
    body["context"]["draftOrders"]["entry"] = [
        {"resource": {"resourceType": "Basic", "id": str(i)}} for i in range(51)] + [entry]
    response = client.post(HOOK_PATH, json=body)
    assert response.status_code == 400 and "entry" in response.get_json()["error"]


@pytest.mark.parametrize("where", ["value", "key"])
def test_string_over_the_limit_is_400(client, where):
    body = order_sign_body()
    long = "y" * 501
    if where == "value":
        body["context"]["userId"] = long
    else:
        body["context"][long] = 1
    assert client.post(HOOK_PATH, json=body).status_code == 400


def test_feedback_string_over_the_limit_is_400(client):
    body = feedback_body()
    body["feedback"][0]["overrideReason"] = {"userComment": "z" * 501}
    assert client.post(FEEDBACK_PATH, json=body).status_code == 400


@pytest.mark.parametrize("path", [HOOK_PATH, FEEDBACK_PATH])
def test_wrong_content_type_is_415(client, path):
    response = client.post(path, data="{}", content_type="text/plain")
    assert response.status_code == 415


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(client, method):
    assert client.open(HOOK_PATH, method=method).status_code == 405
