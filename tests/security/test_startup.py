"""Secure by default: without trusted issuers the service only serves loopback, unless told."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from service.auth import is_loopback, startup_check
from service.config import ConfigError, validate_config

from .conftest import ISSUER_A, PUBLIC_URL, REPO_ROOT, auth_config


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost",
                                  "LOCALHOST", "::ffff:127.0.0.1"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "192.168.1.2",
                                  "cds.example.org", "localhost.evil.example", "128.0.0.1"])
def test_non_loopback_hosts(host):
    assert not is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "cds.example.org", "::"])
def test_non_loopback_without_issuers_is_refused(host):
    with pytest.raises(ConfigError, match="without client authentication"):
        startup_check(validate_config({}), host, allow_unauthenticated=False)


def test_loopback_without_issuers_warns_loudly():
    lines = startup_check(validate_config({}), "127.0.0.1", allow_unauthenticated=False)
    assert any("authentication is OFF" in line for line in lines)


@pytest.mark.parametrize("by_flag", [True, False])
def test_allow_unauthenticated_serves_anywhere_with_a_warning(by_flag):
    config = validate_config({} if by_flag else {"auth": {"allow_unauthenticated": True}})
    lines = startup_check(config, "0.0.0.0", allow_unauthenticated=by_flag)
    assert any("ANYONE" in line for line in lines)


def test_with_issuers_any_host_is_fine(jwks_files):
    config = validate_config({"auth": auth_config(jwks_files), "server": {"public_url": PUBLIC_URL}})
    assert startup_check(config, "0.0.0.0", allow_unauthenticated=False) == []


def test_with_issuers_a_missing_key_file_is_refused(tmp_path):
    config = validate_config({"server": {"public_url": PUBLIC_URL}, "auth": {"issuers": [
        {"iss": ISSUER_A, "jwks_file": str(tmp_path / "nope.json")}]}})
    with pytest.raises(ConfigError, match="nope.json"):
        startup_check(config, "127.0.0.1", allow_unauthenticated=False)


def test_relative_jwks_file_is_resolved_from_the_config_folder():
    config = validate_config({"base_dir": str(REPO_ROOT / "docs"),
                              "server": {"public_url": PUBLIC_URL}, "auth": {"issuers": [
        {"iss": "https://sandbox.cds-hooks.org", "jwks_file": "sandbox-jwks.json"}]}})
    assert startup_check(config, "0.0.0.0", allow_unauthenticated=False) == []


# --- the real command ----------------------------------------------------------------

def run_cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(tmp_path / "instance")}
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_serve_refuses_a_public_host_without_issuers(tmp_path):
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "0", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "without client authentication" in result.stderr


def test_serve_with_allow_unauthenticated_passes_the_check(tmp_path):
    """The flag gets past the refusal (the port, taken, then ends the process)."""
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        result = run_cli("serve", "--host", "0.0.0.0", "--port", str(taken.getsockname()[1]),
                         "--allow-unauthenticated", tmp_path=tmp_path)
    assert "without client authentication" not in result.stderr
    assert "already in use" in result.stderr
