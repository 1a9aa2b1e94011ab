"""The JWT `aud` is checked against the configured public URL(s), never against the Host or
X-Forwarded-* headers of the request (which the caller chooses), on the real served app."""
from __future__ import annotations

from pathlib import Path

import pytest
import requests
from flask import request

from service.app import create_app
from service.config import ConfigError
from tests.fhir_server_helpers import serve_cli

from .conftest import ISSUER_A, PUBLIC_URL, app_config, bearer, claims_for, sign
from .test_startup import run_cli

DISCOVERY_PATH = "/cds-services"
OTHER_DEPLOYMENT = "cds.other-vendor.example"
SECOND_PUBLIC_URL = "http://127.0.0.1:3001"


def write_config(folder: Path, jwks_file: Path, public_url: str | None) -> Path:
    path = folder / "config.toml"
    server = f"public_url = {public_url}\n" if public_url else ""
    path.write_text(f"""
[server]
{server}instance_path = "{folder / 'instance'}"

[[auth.issuers]]
iss = "{ISSUER_A}"
jwks_file = "{jwks_file}"
""")
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory, jwks_files):
    folder = tmp_path_factory.mktemp("audience")
    config = write_config(folder, jwks_files["a"], f'["{PUBLIC_URL}", "{SECOND_PUBLIC_URL}"]')
    with serve_cli(["--config", str(config), "--workers", "1"], folder,
                   env={"PATH": "/usr/bin:/bin", "HOME": str(folder)}) as base:
        yield base


def discovery(base: str, audience: str, keys, **headers) -> int:
    token = sign(claims_for(audience + DISCOVERY_PATH), keys["a_es384"])
    return requests.get(base + DISCOVERY_PATH, headers={**bearer(token), **headers},
                        timeout=10).status_code


@pytest.mark.parametrize("scheme, headers", [
    ("http", {"Host": OTHER_DEPLOYMENT}),
    ("https", {"Host": OTHER_DEPLOYMENT, "X-Forwarded-Proto": "https"}),
    ("https", {"X-Forwarded-Host": OTHER_DEPLOYMENT, "X-Forwarded-Proto": "https"}),
    ("http", {"Forwarded": f"host={OTHER_DEPLOYMENT};proto=http"}),
], ids=["host", "host-forwarded-proto", "x-forwarded-host", "forwarded"])
def test_token_for_another_deployment_is_refused_whatever_the_headers(served, keys, scheme, headers):
    assert discovery(served, f"{scheme}://{OTHER_DEPLOYMENT}", keys, **headers) == 401


def test_token_for_the_served_address_itself_is_refused(served, keys):
    """The request URL is not a public URL unless configured as one."""
    assert discovery(served, served, keys) == 401


@pytest.mark.parametrize("public_url", [PUBLIC_URL, SECOND_PUBLIC_URL])
def test_token_for_each_configured_public_url_passes(served, keys, public_url):
    """Control: the same call with an `aud` built from a configured URL is accepted."""
    assert discovery(served, public_url, keys, Host=OTHER_DEPLOYMENT) == 200


def test_serve_refuses_to_start_without_a_public_url(tmp_path, jwks_files):
    config = write_config(tmp_path, jwks_files["a"], public_url=None)
    result = run_cli("serve", "--config", str(config), "--port", "0", tmp_path=tmp_path)
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "public_url is required" in line


def test_create_app_refuses_issuers_without_a_public_url(tmp_path, jwks_files):
    config = app_config(tmp_path, jwks_files)
    config["server"]["public_url"] = ""
    with pytest.raises(ConfigError, match="public_url is required"):
        create_app(config)


def forwarded_view(tmp_path, remote_addr: str, **server) -> str:
    """request.url as the app sees it for a call from remote_addr with X-Forwarded-*."""
    app = create_app(app_config(tmp_path, None, server=server))
    app.add_url_rule("/whoami", "whoami", lambda: request.url)
    response = app.test_client().get("/whoami", environ_base={"REMOTE_ADDR": remote_addr}, headers={
        "X-Forwarded-Host": OTHER_DEPLOYMENT, "X-Forwarded-Proto": "https"})
    return response.get_data(as_text=True)


def test_forwarded_headers_are_ignored_by_default(tmp_path):
    assert OTHER_DEPLOYMENT not in forwarded_view(tmp_path, "127.0.0.1")


def test_forwarded_headers_are_honoured_only_from_a_trusted_proxy(tmp_path):
    trusted = {"trusted_proxies": ["10.0.0.0/24"], "proxy_hops": 1}
    assert forwarded_view(tmp_path, "10.0.0.7", **trusted) == f"https://{OTHER_DEPLOYMENT}/whoami"
    assert OTHER_DEPLOYMENT not in forwarded_view(tmp_path, "10.0.1.7", **trusted)


@pytest.mark.parametrize("server, message", [
    ({"public_url": "cds.example.org"}, "public_url"),
    ({"public_url": ["https://cds.example.org?x=1"]}, "public_url"),
    ({"trusted_proxies": ["proxy.example"]}, "trusted_proxies"),
])
def test_bad_public_url_or_proxy_is_a_config_error(tmp_path, server, message):
    with pytest.raises(ConfigError, match=message):
        create_app(app_config(tmp_path, None, server=server))
