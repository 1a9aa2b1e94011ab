"""Where the EHR's FHIR access token may go: the allowed FHIR servers, compared on the
parsed URL, never on its text.

A server is allowed when its scheme, host and port equal those of a configured base URL
and its path starts with the base's path at a segment boundary (`/fhir` admits
`/fhir/Patient/1` and `/fhir?page=2`, not `/fhir-admin`). A URL is refused outright when
it has user-info, a backslash, a fragment, a dot segment (`.`/`..`, also percent-encoded),
an encoded slash, or a scheme other than http(s): such URLs are read differently by
different parsers, or are normalised by the HTTP stack into another path. A fhirServer
base may carry no query either.

Which bases are allowed for a call (`allowed_bases`): `[fhir] allowed_servers` (all
callers), the calling issuer's `fhir_servers` (its JWT `iss`), and with the demo on, the
demo FHIR server at this server's own listening address (never the Host header).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
DEMO_FHIR_PATH = "/demo/fhir"
# WSGI environ key holding the listening socket's address (set by service/proxy.py before
# any forwarded header is applied).
LISTENER_KEY = "baclofen_cds.listener"
_WHITESPACE = re.compile(r"\s")  # str.isspace's characters, searched in C


@dataclass(frozen=True)
class FhirUrl:
    scheme: str
    host: str
    port: int
    segments: tuple[str, ...]  # path segments as sent (not decoded); no trailing empty one
    has_query: bool

    def is_within(self, base: "FhirUrl") -> bool:
        return ((self.scheme, self.host, self.port) == (base.scheme, base.host, base.port)
                and self.segments[:len(base.segments)] == base.segments)


def parse(url: object) -> FhirUrl | None:
    """The URL's parts, or None when it is not a plain http(s) URL we can reason about."""
    if not isinstance(url, str) or "\\" in url or "#" in url or not url.isprintable() \
            or _WHITESPACE.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or "@" in parts.netloc or not parts.hostname:
        return None
    segments = _segments(parts.path)
    if segments is None:
        return None
    return FhirUrl(scheme=scheme, host=parts.hostname.lower(), port=port or DEFAULT_PORTS[scheme],
                   segments=segments, has_query="?" in url)


def _segments(path: str) -> tuple[str, ...] | None:
    if path and not path.startswith("/"):
        return None
    segments = path.split("/")[1:]
    if segments and segments[-1] == "":
        segments.pop()  # "/fhir/" is "/fhir"
    for segment in segments:
        decoded = unquote(segment)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
            return None
    return tuple(segments)


def parse_base(url: str) -> FhirUrl | None:
    """A FHIR server base URL: as `parse`, and no query."""
    parsed = parse(url)
    return parsed if parsed is not None and not parsed.has_query else None


def check_base_urls(urls: list[str]) -> list[str]:
    """For the configuration: every entry must be a plain base URL (no patterns)."""
    for url in urls:
        if "*" in url or parse_base(url) is None:
            raise ValueError(f"{url!r} is not an http(s) base URL (no wildcard, query, "
                             "user-info or dot segments)")
    return urls


def is_allowed(url: str, bases: list[str]) -> bool:
    """May the token go to this fhirServer? It must lie within one of the allowed bases."""
    parsed = parse_base(url)
    return parsed is not None and any(
        parsed.is_within(base) for base in map(parse_base, bases) if base is not None)


def is_within(url: str, base_url: str) -> bool:
    """Is a query or `next` link on the server the call named (so the token may go there)?"""
    parsed, base = parse(url), parse_base(base_url)
    return parsed is not None and base is not None and parsed.is_within(base)


def own_base_url(environ: dict) -> str | None:
    """http://<listening address>:<port>, as this server is reached from itself."""
    host, port = environ.get(LISTENER_KEY) or (None, None)
    if not host or not port:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


def allowed_bases(config, issuer: str | None, environ: dict) -> list[str]:
    """The FHIR server bases one call may use (see the module docstring)."""
    bases = list(config.fhir.allowed_servers)
    bases += [url for entry in config.auth.issuers if entry.iss == issuer for url in entry.fhir_servers]
    own = own_base_url(environ)
    if config.demo.enabled and own:
        bases.append(own + DEMO_FHIR_PATH)
    return bases
