"""The store's commands and files when something is off: a bad date or knowledge override
names the problem; a damaged key file stops the store; the schema can be taken back down."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from service.cli import main as cli
from service.store import database_url as store_database_url
from service.store import migrate, open_store
from service.store.keys import KEY_FILE_NAME
from service.store.store import make_engine

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def instance(config, monkeypatch):
    """The commands find the test's store through the environment, as in production."""
    monkeypatch.setenv("BACLOFEN_CDS_SERVER__INSTANCE_PATH", str(config.instance_path))
    monkeypatch.setenv("BACLOFEN_CDS_STORE__URL", config.store.url)
    return config


def test_report_since_a_non_date_is_refused_by_name(instance, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(["report", "--since", "2026-13-40"])
    assert exit_.value.code == 2
    assert "--since" in capsys.readouterr().err


def test_report_with_a_bad_knowledge_override_names_it(instance, tmp_path, capsys):
    site = tmp_path / "site.toml"
    site.write_text("[knowledge]\nno_such_section = 1\n")
    assert cli(["report", "--config", str(site)]) == 2
    error = capsys.readouterr().err
    assert "knowledge" in error and "no_such_section" in error


def test_the_store_commands_run_on_their_own(instance, tmp_path):
    """`python -m service.store.commands` (no Flask app, no serve)."""
    result = subprocess.run([sys.executable, "-m", "service.store.commands", "purge", "--older-than", "30d"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("deleted 0 cards, 0 feedback items")


def test_a_truncated_key_file_stops_the_store(config):
    key_file = config.instance_path / KEY_FILE_NAME
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text("too-short\n")
    with pytest.raises(ValueError, match="too short"):
        open_store(config)


def test_the_schema_downgrades_to_nothing_and_back(config, store):
    engine = make_engine(store_database_url(config))
    try:
        with engine.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), "base")
        assert not {"cards", "feedback", "jwt_ids"} & set(inspect(engine).get_table_names())
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        assert {"cards", "feedback", "jwt_ids"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_second_key_writer_never_replaces_the_first_key(tmp_path):
    """Two processes starting at once both write a key: the first one linked wins, the
    other's is thrown away (no temporary file left), and both then read the same key."""
    from service.store.keys import _create_key_file

    path = tmp_path / KEY_FILE_NAME
    _create_key_file(path)
    first = path.read_text()
    _create_key_file(path)
    assert path.read_text() == first
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE_NAME]
