"""The `baclofen-cds` command line: serve, call, rules, and the store's commands."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import Config, ConfigError, load_config

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# Two gevent workers per core (of the 2-core reference machine): while one worker parses
# the FHIR answers of its fetching calls, the other's calls go on (docs/performance.md:
# complete-prefetch p99 during fetch load 30-42 ms with 4 workers, 37-64 ms with 2).
DEFAULT_WORKERS = 4
# The server `serve` runs (docs/deploy.md, "What serve runs"): gunicorn with gevent
# workers; --threads (or --server gunicorn) gives gunicorn's thread workers instead.
SERVERS = ("gevent", "gunicorn", "granian")
# Threads per worker for --server gunicorn and granian: calls that wait on a slow FHIR
# server must not hold up the others; with --demo a hook call fetches from /demo/fhir on
# the same server, which needs threads too.
DEFAULT_THREADS = 16


class UsageError(Exception):
    """A command was given something it cannot use; the message is one line naming it."""


JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number",
              bool: "a boolean", type(None): "null"}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except (ConfigError, UsageError) as error:
        print(f"baclofen-cds: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baclofen-cds", description=__doc__)
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="run the service (gunicorn with gevent workers)")
    _add_config_option(serve)
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT)
    serve.add_argument("--workers", type=_positive, default=DEFAULT_WORKERS,
                       help=f"worker processes (default {DEFAULT_WORKERS}: two per core of a 2-core machine)")
    serve.add_argument("--threads", type=_positive, default=None,
                       help=f"threads per worker for --server gunicorn or granian (default "
                            f"{DEFAULT_THREADS}; gunicorn with 1: sync workers); given alone, it "
                            "selects --server gunicorn")
    serve.add_argument("--server", choices=SERVERS, default=None,
                       help="gevent (default: gunicorn with gevent workers), gunicorn (thread "
                            "workers) or granian; docs/deploy.md, \"What serve runs\"")
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


def _server(args) -> str:
    if args.server is None:
        return "gunicorn" if args.threads else "gevent"
    if args.server == "gevent" and args.threads:
        raise UsageError("--threads is for --server gunicorn or granian (gevent workers have no threads)")
    return args.server


def _positive(value: str) -> int:
    number = _integer(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: must be 1 or more")
    return number


def _port(value: str) -> int:
    number = _integer(value)
    if not 0 <= number < 65536:  # 0: any free port
        raise argparse.ArgumentTypeError(f"{value!r}: a port is 0 to 65535")
    return number


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: not a whole number") from None


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML configuration file")


def _serve(args) -> int:
    from . import auth, serving

    server = _server(args)
    if server == "gevent":
        serving.ensure_monkey_patched(args.argv)
    overrides = {"demo": {"enabled": True}} if args.demo else {}
    config = load_config(args.config, overrides=overrides)
    warnings = auth.startup_check(config, args.host, args.allow_unauthenticated)
    serving.check_port_free(args.host, args.port)
    for warning in warnings:
        print(f"baclofen-cds: {warning}", file=sys.stderr)
    if warnings:
        auth.startup_warning_shown()  # printed above: not again by each worker's log
    threads = args.threads or DEFAULT_THREADS
    if server == "granian":
        serving.run_granian(config, host=args.host, port=args.port, workers=args.workers, threads=threads)
    else:
        serving.run(config, host=args.host, port=args.port, workers=args.workers,
                    threads=0 if server == "gevent" else threads)
    return 0


def _call(args) -> int:
    from . import auth
    from .app import create_app
    from .declarations import SERVICES

    body = read_request_file(args.request)
    service_id = args.service or next(
        (s.id for s in SERVICES if s.hook == body.get("hook")), None)
    if service_id is None:
        print(f"baclofen-cds: no service for hook {body.get('hook')!r}; use --service", file=sys.stderr)
        return 2
    # In process there is no client to authenticate (so no warning about it) and nothing
    # to audit: a quick check must not count as a card shown to a clinician.
    auth.startup_warning_shown()
    config = _config(args)
    app = create_app(config.model_copy(update={"auth": config.auth.model_copy(update={"issuers": []})}),
                     with_store=False)
    response = app.test_client().post(f"/cds-services/{service_id}", json=body)
    print(json.dumps(response.get_json(), indent=2))
    return 0 if response.status_code == 200 else 1


def read_request_file(path: Path) -> dict:
    """The JSON object in `path`; UsageError with one line naming what is wrong."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise UsageError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        body = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        problem = "empty file" if not raw.strip() else f"{error.msg} at line {error.lineno} column {error.colno}"
        raise UsageError(f"{path}: not JSON ({problem})") from None
    if not isinstance(body, dict):
        raise UsageError(f"{path}: a CDS Hooks request is a JSON object, not {JSON_KINDS.get(type(body), type(body).__name__)}")
    return body


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
