"""Versioned schema: applied at start-up and by `baclofen-cds db upgrade`, race-free."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from sqlalchemy import inspect

from service.store import database_url as store_database_url
from service.store import migrate, open_store
from service.store.commands import main as store_cli
from service.store.store import make_engine


def test_open_store_creates_the_schema_at_the_newest_revision(config, store):
    assert migrate.current_revision(store.engine) == migrate.head_revision()
    tables = set(inspect(store.engine).get_table_names())
    assert {"cards", "feedback", "jwt_ids", "alembic_version"} <= tables


def test_db_upgrade_command_migrates_and_is_idempotent(config, capsys, monkeypatch):
    monkeypatch.setenv("BACLOFEN_CDS_SERVER__INSTANCE_PATH", str(config.instance_path))
    monkeypatch.setenv("BACLOFEN_CDS_STORE__URL", config.store.url)
    assert store_cli(["db", "upgrade"]) == 0
    assert store_cli(["db", "upgrade"]) == 0
    assert f"schema at revision {migrate.head_revision()}" in capsys.readouterr().out
    engine = make_engine(store_database_url(config))
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def _open_and_close(config) -> str:
    store = open_store(config)
    revision = migrate.current_revision(store.engine)
    store.close()
    return revision


def test_concurrent_start_up_of_several_processes_does_not_race(config):
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
        revisions = list(pool.map(_open_and_close, [config] * 8))
    assert revisions == [migrate.head_revision()] * 8


def test_migration_scripts_ship_inside_the_package():
    scripts = list((migrate.MIGRATIONS_PATH / "versions").glob("*.py"))
    assert any(path.name.startswith("0001") for path in scripts)
    assert (migrate.MIGRATIONS_PATH / "__init__.py").exists()  # a package: in the wheel
    assert (migrate.MIGRATIONS_PATH / "script.py.mako").exists()
