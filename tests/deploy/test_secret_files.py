"""Secrets (store URL, patient-hash key, admin token) from files, as Kubernetes and Docker
mount them; a problem names the key and the file, never the secret."""
from __future__ import annotations

import pytest

from service import create_app
from service.config import ConfigError, load_config
from service.store.keys import KEY_FILE_NAME

ADMIN_TOKEN = "admin-token-9c41e7d2b0a8f6e3"
HASH_KEY = "patient-hash-key-" + "7" * 40


def write_secret(folder, name: str, value: str):
    path = folder / name
    path.write_text(value + "\n")  # as `kubectl create secret --from-file` often holds it
    return path


def test_secrets_come_from_files_named_in_the_config(tmp_path, database_url):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    write_secret(secrets, "admin-token", ADMIN_TOKEN)
    write_secret(secrets, "hash-key", HASH_KEY)
    store_url = database_url or f"sqlite+pysqlite:///{tmp_path / 'elsewhere.sqlite3'}"
    write_secret(secrets, "store-url", store_url)
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[server]\ninstance_path = "{tmp_path / "instance"}"\n'
        '[store]\nurl_file = "secrets/store-url"\npatient_hash_key_file = "secrets/hash-key"\n')
    config = load_config(config_file, environ={"BACLOFEN_CDS_ADMIN__TOKEN_FILE": str(secrets / "admin-token")})
    assert (config.store.url, config.store.patient_hash_key, config.admin.token) == (store_url, HASH_KEY, ADMIN_TOKEN)
    client = create_app(config).test_client()
    assert client.get("/admin/report", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    assert client.get("/admin/report", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert not (tmp_path / "instance" / KEY_FILE_NAME).exists()  # the configured key is used
    if not database_url:
        assert (tmp_path / "elsewhere.sqlite3").exists()


@pytest.mark.parametrize("section,key", [("store", "url"), ("store", "patient_hash_key"), ("admin", "token")])
def test_a_missing_or_empty_secret_file_is_named_without_the_secret(tmp_path, section, key):
    with pytest.raises(ConfigError, match=f"{section}.{key}_file: cannot read .*nope"):
        load_config(environ={f"BACLOFEN_CDS_{section.upper()}__{key.upper()}_FILE": str(tmp_path / "nope")})
    empty = write_secret(tmp_path, "empty", "  ")
    with pytest.raises(ConfigError, match=f"{section}.{key}_file: .*empty is empty"):
        load_config(environ={f"BACLOFEN_CDS_{section.upper()}__{key.upper()}_FILE": str(empty)})


def test_a_secret_given_twice_is_refused_without_showing_it(tmp_path):
    path = write_secret(tmp_path, "admin-token", ADMIN_TOKEN)
    with pytest.raises(ConfigError) as raised:
        load_config(environ={"BACLOFEN_CDS_ADMIN__TOKEN": "inline-secret-value",
                             "BACLOFEN_CDS_ADMIN__TOKEN_FILE": str(path)})
    assert "admin.token and admin.token_file" in str(raised.value)
    assert "inline-secret-value" not in str(raised.value) and ADMIN_TOKEN not in str(raised.value)
