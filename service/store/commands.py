"""The store's command-line subcommands: `db upgrade`, `purge`, `report`.

The main CLI (service/cli.py) calls `add_commands(subparsers)`; each subcommand takes
`--config FILE` and sets `func(args) -> int`.
`python -m service.store.commands ...` runs them on their own.
"""
from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timedelta, timezone

from cards.knowledge import KnowledgeError, load_knowledge

from ..config import ConfigError, load_config
from . import migrate
from .render import render
from .report import build_report, knowledge_reason_display
from .store import open_engine, open_store

_DURATION = re.compile(r"^(\d+)([dhw])$")
_UNIT = {"d": timedelta(days=1), "h": timedelta(hours=1), "w": timedelta(weeks=1)}


def add_commands(subparsers) -> None:
    db = subparsers.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply pending migrations")
    upgrade.set_defaults(func=db_upgrade)
    _config_option(upgrade)

    purge = subparsers.add_parser("purge", help="delete cards and feedback past retention, and expired JWT ids")
    purge.add_argument("--older-than", type=parse_duration, default=None, metavar="AGE",
                       help="e.g. 365d, 52w, 48h (default: [store] retention_days)")
    purge.set_defaults(func=purge_command)
    _config_option(purge)

    report = subparsers.add_parser("report", help="override report per card topic")
    report.add_argument("--since", type=parse_date, default=None, metavar="DATE",
                        help="only cards issued from this date (YYYY-MM-DD) on")
    report.add_argument("--format", choices=("text", "json", "html"), default="text")
    report.set_defaults(func=report_command)
    _config_option(report)


def _config_option(parser) -> None:
    parser.add_argument("--config", default=None, help="TOML configuration file")


def db_upgrade(args) -> int:
    config = load_config(args.config)
    engine = open_engine(config)
    migrate.upgrade(engine)
    print(f"schema at revision {migrate.current_revision(engine)}")
    engine.dispose()
    return 0


def purge_command(args) -> int:
    config = load_config(args.config)
    age = args.older_than or timedelta(days=config.store.retention_days)
    store = open_store(config)
    result = store.purge(datetime.now(timezone.utc) - age)
    store.close()
    print(f"deleted {result.cards} cards, {result.feedback} feedback items, "
          f"{result.jwt_ids} expired JWT ids, {result.suppressed_cards} suppressed cards, "
          f"{result.baclofen_orders} order rows")
    return 0


def report_command(args) -> int:
    config = load_config(args.config)
    store = open_store(config)
    names = knowledge_reason_display(_knowledge(config))
    sys.stdout.write(render(build_report(store.engine, args.since, names), args.format))
    store.close()
    return 0


def _knowledge(config):
    try:
        return load_knowledge(config.knowledge)
    except KnowledgeError as error:
        raise ConfigError(f"knowledge: {error}") from None


def parse_duration(value: str) -> timedelta:
    match = _DURATION.match(value.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r}: use a number and d, w or h, e.g. 365d")
    return int(match.group(1)) * _UNIT[match.group(2)]


def parse_date(value: str) -> datetime:
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: use YYYY-MM-DD") from None
    return day.replace(tzinfo=timezone.utc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="baclofen-cds")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
