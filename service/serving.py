"""Running the app under a production WSGI server, configured in code: gunicorn with gevent
workers (`serve`'s default), gunicorn with threads, or granian (docs/deploy.md, "What serve
runs")."""
from __future__ import annotations

import errno
import os
import shutil
import socket
import sys
import tempfile

from gunicorn.app.base import BaseApplication

from . import metrics, tracing
from .config import Config, ConfigError

GEVENT_WORKER = "service.gevent_worker.FairGeventWorker"
# A fresh interpreter that patches the standard library before anything else is imported.
_PATCHED_CLI = ("from gevent import monkey; monkey.patch_all(); import sys; "
                "from service.cli import main; sys.exit(main(sys.argv[1:]))")
MAX_REQUESTS = 20_000  # per worker, then it is replaced by a fresh one
WORKER_MAX_RSS_MIB = 300  # granian: a worker above this is replaced


class _Gunicorn(BaseApplication):
    def __init__(self, config: Config, options: dict):
        self._config = config
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:  # settings newer gunicorns added (control socket)
                self.cfg.set(key, value)

    def load(self):
        from .app import create_app

        return create_app(self._config)


def ensure_monkey_patched(argv: list[str]) -> None:
    """Gevent workers need the standard library patched before anything imports it: patched
    later, urllib3 keeps the unpatched SSLContext (every HTTPS query fails with
    RecursionError) and psycopg its blocking wait. By the time the command line runs, the
    service is imported; so run the same command again in a fresh interpreter that patches
    first (same pid: signals and supervisors see no difference)."""
    try:
        from gevent import monkey
    except ImportError:
        raise ConfigError("gevent workers need gevent: pip install gevent, or choose "
                          "--server gunicorn") from None
    if monkey.is_module_patched("socket"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-c", _PATCHED_CLI, *argv])


def run(config: Config, *, host: str, port: int, workers: int, threads: int) -> None:
    """gunicorn: gevent workers when threads is 0 (the process must already be patched:
    ensure_monkey_patched), else threads per worker (1: sync workers)."""
    from .app import create_app

    # Build the app once in the master: a bad configuration, knowledge override or store
    # URL stops start-up here with its message, and migrations run before workers fork.
    tracing.defer_to_workers()
    create_app(config)
    master = os.getpid()
    metrics_folder = tempfile.mkdtemp(prefix="baclofen-cds-metrics-")
    metrics.prepare_multiprocess(metrics_folder)
    try:
        _Gunicorn(config, _options(host, port, workers, threads)).run()
    finally:
        # Workers leave through here too (gunicorn ends them with SystemExit): only the
        # master removes the folder they share.
        if os.getpid() == master:
            shutil.rmtree(metrics_folder, ignore_errors=True)


def _options(host: str, port: int, workers: int, threads: int) -> dict:
    return {
        "bind": _bind(host, port),
        "workers": workers,
        "threads": max(threads, 1),
        "worker_class": GEVENT_WORKER if threads == 0 else "gthread" if threads > 1 else "sync",
        # gevent: connections one worker holds at once (slow clients included)
        "worker_connections": 1000,
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 5,
        # Forwarded headers are trusted only from [server] trusted_proxies (service/proxy.py),
        # not from gunicorn's default 127.0.0.1.
        "forwarded_allow_ips": "",
        "secure_scheme_headers": {},
        # Recycle workers now and then (staggered): whatever memory a worker gains, it
        # gives back (docs/performance.md, "Memory").
        "max_requests": MAX_REQUESTS,
        "max_requests_jitter": MAX_REQUESTS // 10,
        # Access logs would carry URLs only, but stay off: the JSON app log covers requests.
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "child_exit": lambda _server, worker: metrics.mark_worker_dead(worker.pid),
        "post_fork": lambda _server, _worker: tracing.start_in_worker(),
        # SIGTERM (Kubernetes, compose, systemd): stop accepting, finish the calls in
        # flight (up to graceful_timeout), then flush and close the store in each worker.
        "worker_exit": _on_worker_exit,
        # One control socket per user (~/.gunicorn/gunicorn.ctl) would be shared by every
        # instance on the host; nothing here uses it.
        "control_socket_disable": True,
    }


def _on_worker_exit(_server, worker) -> None:
    """In a worker that is exiting: write what the store still holds (a batched card record
    has a flush), close its connections, and export the last spans."""
    app = getattr(worker, "wsgi", None)
    state = app.extensions.get("baclofen_cds") if app is not None else None
    store = getattr(state, "store", None)
    if store is not None:
        store.flush()
        store.close()
    tracing.flush()


def check_port_free(host: str, port: int) -> None:
    """One clear line instead of gunicorn's five retries and tracebacks."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is already in use (another serve?): "
                                  "stop it or choose another --port") from None
            raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def run_granian(config: Config, *, host: str, port: int, workers: int, threads: int) -> None:
    """The same app under granian (Rust HTTP front, Python WSGI threads; docs/performance.md,
    "Choosing the server"). Workers serve `service.wsgi:app` with this configuration; one
    that grows past WORKER_MAX_RSS_MIB is replaced."""
    import os

    try:
        from granian import Granian
        from granian.constants import Interfaces
    except ImportError:
        raise ConfigError("--server granian needs granian: pip install 'baclofen-cds[granian]'") from None

    from .app import create_app
    from .wsgi import SERVE_CONFIG_ENV

    create_app(config)  # a bad configuration stops start-up here, before any worker
    metrics.prepare_multiprocess(tempfile.mkdtemp(prefix="baclofen-cds-metrics-"))
    os.environ[SERVE_CONFIG_ENV] = config.model_dump_json()
    Granian("service.wsgi:app", address=host, port=port, interface=Interfaces.WSGI,
            workers=workers, blocking_threads=threads, respawn_failed_workers=True,
            workers_max_rss=WORKER_MAX_RSS_MIB, rss_sample_interval=10, log_access=False).serve()


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
