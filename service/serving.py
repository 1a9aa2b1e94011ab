"""Running the app under gunicorn (a production WSGI server), configured in code."""
from __future__ import annotations

import tempfile

from gunicorn.app.base import BaseApplication

from . import metrics
from .config import Config, ConfigError

MAX_REQUESTS = 20_000  # per worker, then it is replaced by a fresh one
WORKER_MAX_RSS_MIB = 300  # granian: a worker above this is replaced


class _Gunicorn(BaseApplication):
    def __init__(self, config: Config, options: dict):
        self._config = config
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        from .app import create_app

        return create_app(self._config)


def run(config: Config, *, host: str, port: int, workers: int, threads: int) -> None:
    from .app import create_app

    # Build the app once in the master: a bad configuration, knowledge override or store
    # URL stops start-up here with its message, and migrations run before workers fork.
    create_app(config)
    metrics.prepare_multiprocess(tempfile.mkdtemp(prefix="baclofen-cds-metrics-"))
    options = {
        "bind": _bind(host, port),
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 5,
        # Recycle workers now and then (staggered): whatever memory a worker gains, it
        # gives back (docs/performance.md, "Memory").
        "max_requests": MAX_REQUESTS,
        "max_requests_jitter": MAX_REQUESTS // 10,
        # Access logs would carry URLs only, but stay off: the JSON app log covers requests.
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "child_exit": lambda _server, worker: metrics.mark_worker_dead(worker.pid),
        "worker_exit": _flush_cards,
    }
    _Gunicorn(config, options).run()


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


def _flush_cards(_server, worker) -> None:
    """Write the cards the stopping worker still holds (store/batch.py)."""
    state = getattr(worker.wsgi, "extensions", {}).get("baclofen_cds")
    if state is not None and state.store is not None:
        state.store.flush()


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
