"""The `baclofen-cds` command line: serve, call, rules, and the store's commands."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import Config, ConfigError, load_config

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# Threads per worker by default: calls that wait on a slow FHIR server must not hold up
# the others (docs/performance.md, "Choosing the server"); with --demo a hook call fetches
# from /demo/fhir on the same server, which needs threads too.
DEFAULT_THREADS = 16


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except ConfigError as error:
        print(f"baclofen-cds: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baclofen-cds", description=__doc__)
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="run the service under gunicorn")
    _add_config_option(serve)
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    serve.add_argument("--threads", type=int, default=None,
                       help=f"threads per worker (default {DEFAULT_THREADS}: calls waiting on a slow "
                            "FHIR server do not hold up the others; 1: sync workers). Put a buffering "
                            "proxy in front for slow clients: deploy/nginx/baclofen-cds.conf, "
                            "docs/performance.md")
    serve.add_argument("--server", choices=("gunicorn", "granian"), default="gunicorn",
                       help="WSGI server (default gunicorn; granian: docs/performance.md)")
    serve.add_argument("--demo", action="store_true",
                       help="also serve the bundled fixture patients at /demo/fhir and the /demo page")
    serve.add_argument("--allow-unauthenticated", action="store_true",
                       help="accept calls without a client JWT on a non-loopback address")
    serve.set_defaults(func=_serve)

    call = commands.add_parser("call", help="answer one hook request in process and print the response")
    _add_config_option(call)
    call.add_argument("request", type=Path, help="a CDS Hooks request JSON file")
    call.add_argument("--service", help="service id (default: the service for the request's hook)")
    call.set_defaults(func=_call)

    rules = commands.add_parser("rules", help="print the rule catalog from the knowledge file")
    _add_config_option(rules)
    rules.set_defaults(func=_rules)

    from .store import commands as store_commands

    store_commands.add_commands(commands)
    return parser


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML configuration file")


def _serve(args) -> int:
    from . import auth, serving

    overrides = {"demo": {"enabled": True}} if args.demo else {}
    config = load_config(args.config, overrides=overrides)
    for warning in auth.startup_check(config, args.host, args.allow_unauthenticated):
        print(f"baclofen-cds: {warning}", file=sys.stderr)
    threads = args.threads or DEFAULT_THREADS
    runner = serving.run_granian if args.server == "granian" else serving.run
    runner(config, host=args.host, port=args.port, workers=args.workers, threads=threads)
    return 0


def _call(args) -> int:
    from .app import create_app
    from .declarations import SERVICES

    body = json.loads(args.request.read_text())
    service_id = args.service or next(
        (s.id for s in SERVICES if s.hook == body.get("hook")), None)
    if service_id is None:
        print(f"baclofen-cds: no service for hook {body.get('hook')!r}; use --service", file=sys.stderr)
        return 2
    # In process there is no client to authenticate and nothing to audit: a quick check
    # must not count as a card shown to a clinician.
    config = _config(args)
    app = create_app(config.model_copy(update={"auth": config.auth.model_copy(update={"issuers": []})}))
    app.extensions["baclofen_cds"].store = None
    response = app.test_client().post(f"/cds-services/{service_id}", json=body)
    print(json.dumps(response.get_json(), indent=2))
    return 0 if response.status_code == 200 else 1


def _rules(args) -> int:
    from cards.catalog import render_catalog
    from cards.knowledge import KnowledgeError, load_knowledge

    try:
        knowledge = load_knowledge(_config(args).knowledge)
    except KnowledgeError as error:
        raise ConfigError(f"knowledge: {error}") from None
    print(render_catalog(knowledge), end="")
    return 0


def _config(args) -> Config:
    return load_config(args.config)


if __name__ == "__main__":
    sys.exit(main())
