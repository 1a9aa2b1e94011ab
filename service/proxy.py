"""X-Forwarded-* headers, honoured only from the reverse proxies named in configuration.

Without `[server] trusted_proxies` no forwarded header changes what the app sees (gunicorn's
own trust of 127.0.0.1 is switched off in serving.py). With it, werkzeug's ProxyFix applies
`proxy_hops` of each header, and only to requests whose peer address is a trusted proxy.
"""
from __future__ import annotations

import ipaddress

from werkzeug.middleware.proxy_fix import ProxyFix

from .config import ServerConfig
from .fhir_access import LISTENER_KEY


class TrustedProxyFix:
    def __init__(self, app, server: ServerConfig):
        self.app = app
        hops = server.proxy_hops
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)
        self.networks = [ipaddress.ip_network(network, strict=False)
                         for network in server.trusted_proxies]

    def __call__(self, environ, start_response):
        if self.is_trusted(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)

    def is_trusted(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        return any(address in network for network in self.networks)


class RecordListener:
    """Keep the listening socket's address (SERVER_NAME/PORT as the WSGI server set them)
    before any forwarded header is applied: the service's own address, for the demo."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        environ[LISTENER_KEY] = (environ.get("SERVER_NAME", ""), environ.get("SERVER_PORT", ""))
        return self.app(environ, start_response)


def install(app, server: ServerConfig) -> None:
    if server.trusted_proxies:
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, server)
    app.wsgi_app = RecordListener(app.wsgi_app)
