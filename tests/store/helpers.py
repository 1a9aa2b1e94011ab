"""Fixtures shared by the store and feedback tests: every test runs on SQLite and on a
fresh PostgreSQL database (created per test, dropped afterwards).

PostgreSQL is found at BACLOFEN_CDS_TEST_POSTGRES (a SQLAlchemy URL of a maintenance
database, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres). When it cannot
be reached the PostgreSQL half is skipped with a loud reason, never silently.
"""
from __future__ import annotations

import functools
import os
import re
import uuid
import warnings
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy.engine import make_url

from service.config import Config, validate_config
from service.store import open_store

POSTGRES_ADMIN_URL = os.environ.get(
    "BACLOFEN_CDS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ORDER_SIGN = "baclofen-order-sign"
PATIENT_ID = "pat-7d3b-Quentin-Abernathy"


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@functools.cache
def postgres_unreachable_reason() -> str | None:
    try:
        psycopg.connect(_libpq(POSTGRES_ADMIN_URL), connect_timeout=3).close()
    except psycopg.Error as exc:
        reason = (f"!!! PostgreSQL UNREACHABLE at {POSTGRES_ADMIN_URL} ({exc}); "
                  "the PostgreSQL half of the store tests is SKIPPED !!!")
        warnings.warn(reason)
        return reason
    return None


def create_postgres_database() -> str:
    """A fresh database; returns its SQLAlchemy URL."""
    name = f"baclofen_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """"" for SQLite (the default file in the instance folder), else a fresh PostgreSQL URL."""
    if request.param == "sqlite":
        return ""
    return request.getfixturevalue("postgres_url")


@contextmanager
def fresh_postgres_database():
    """A fresh PostgreSQL database (dropped afterwards); skipped loudly when unreachable."""
    reason = postgres_unreachable_reason()
    if reason:
        pytest.skip(reason)
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def postgres_url():
    with fresh_postgres_database() as url:
        yield url


def make_config(database_url: str, instance_path, **sections) -> Config:
    data = {
        "server": {"instance_path": str(instance_path)},
        "store": {"url": database_url},
        "auth": {"allow_unauthenticated": True},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return validate_config(data)


@pytest.fixture
def config(database_url, tmp_path) -> Config:
    return make_config(database_url, tmp_path / "instance")


@pytest.fixture
def store(config):
    opened = open_store(config)
    yield opened
    opened.close()


def columns_containing(engine, needle: str) -> list[tuple[str, str]]:
    """(table, value) for every value in every column of every table that contains needle."""
    from sqlalchemy import inspect, text

    found = []
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                found += [(table, str(v)) for v in row if needle.lower() in str(v).lower()]
    return found


def metric_value(text: str, name: str, **labels) -> float:
    """The sum of a metric's samples with these labels in a /metrics exposition text."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


def make_card(topic: str, indicator: str = "warning", suggestions: int = 1) -> dict:
    """A CDS Hooks card as the engine builds it, with fresh uuids."""
    card = {
        "uuid": str(uuid.uuid4()),
        "summary": f"Check {topic}",
        "indicator": indicator,
        "source": {"label": "Baclofen CDS",
                   "topic": {"system": "https://baclofen-cds.example/topic", "code": topic,
                             "display": topic.replace("-", " ").capitalize()}},
    }
    if suggestions:
        card["suggestions"] = [{"label": f"fix {i}", "uuid": str(uuid.uuid4())}
                               for i in range(suggestions)]
        card["selectionBehavior"] = "at-most-one"
    return card
