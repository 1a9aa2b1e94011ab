"""Configuration: one TOML file plus BACLOFEN_CDS_* environment variables, validated once.

Precedence: built-in defaults < TOML file (--config / BACLOFEN_CDS_CONFIG) < environment.
Environment variables name a key as BACLOFEN_CDS_<SECTION>__<KEY>, for example
BACLOFEN_CDS_FHIR__TOTAL_TIMEOUT=2.0; their values are read as TOML values where they
parse as such (numbers, booleans, arrays) and as plain strings otherwise.
"""
from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .fhir_access import check_base_urls

ENV_PREFIX = "BACLOFEN_CDS_"
CONFIG_FILE_ENV = "BACLOFEN_CDS_CONFIG"


class ConfigError(Exception):
    """A configuration key or value is wrong; the message names it."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(Section):
    public_url: str | list[str] = Field("", description="Base URL(s) as clients call the service "
                                        "(https://cds.example.org); the JWT `aud` must be one of them + "
                                        "the path. Required when [[auth.issuers]] are configured.")
    trusted_proxies: list[str] = Field([], description="Addresses or networks of the reverse proxies "
                                       "whose X-Forwarded-* headers are honoured (none: never).")
    proxy_hops: int = Field(1, ge=1, le=5, description="How many trusted proxies in a row set "
                            "X-Forwarded-* headers (werkzeug ProxyFix counts).")
    max_body_bytes: int = Field(1024 * 1024, gt=0, description="Largest request body; larger is 413.")
    max_json_depth: int = Field(64, gt=1, description="Deepest JSON nesting; deeper is 400.")
    max_bundle_entries: int = Field(1000, gt=0, description="Most entries in a context Bundle; more is 400.")
    max_string_length: int = Field(65536, gt=0, description="Longest JSON string; longer is 400.")
    cors_origins: list[str] = Field(["*"], description="Origins browsers may call from (the Sandbox needs its own).")
    instance_path: str = Field("", description="Folder of the SQLite store and generated secrets. "
                               "Empty: ./instance in the working directory.")

    @property
    def public_urls(self) -> list[str]:
        """The configured public base URLs, without a trailing slash."""
        urls = [self.public_url] if isinstance(self.public_url, str) else self.public_url
        return [url.rstrip("/") for url in urls if url]

    @field_validator("public_url")
    @classmethod
    def _absolute_urls(cls, value: str | list[str]) -> str | list[str]:
        for url in [value] if isinstance(value, str) else value:
            if url and not _is_base_url(url):
                raise ValueError(f"{url!r} is not an http(s) base URL without query or fragment")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an IP address or network") from None
        return value


def _is_base_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # raises on a malformed port
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and "@" not in parts.netloc
            and not parts.query and not parts.fragment and "?" not in url and "#" not in url)


class FhirConfig(Section):
    connect_timeout: float = Field(0.5, gt=0, description="Seconds to connect to the FHIR server.")
    total_timeout: float = Field(2.5, gt=0, lt=30, description="Seconds for all FHIR queries of one "
                                 "hook call together, pages included; what is late is 'unavailable'.")
    retries: int = Field(1, ge=0, le=3, description="Retries on connection errors and 502/503/504.")
    max_pages: int = Field(5, ge=1, le=50, description="Pages of one search followed through `next` links.")
    max_workers: int = Field(16, ge=1, le=64, description="Parallel FHIR queries of one hook call "
                             "(each call has its own; stuck calls never hold up others).")
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Largest FHIR response body, "
                                "counted after decompression; larger is 'unavailable'.")
    max_bundle_entries: int = Field(1000, gt=0, description="Most entries of one search, pages "
                                    "together; more is 'unavailable'.")
    max_json_depth: int = Field(64, gt=1, description="Deepest JSON nesting in a FHIR response; "
                                "deeper is 'unavailable'.")
    allowed_servers: list[str] = Field([], description="Base URLs of FHIR servers the service may "
                                       "query and send the access token to, for every caller (scheme, "
                                       "host, port and path prefix must match; no wildcards). See also "
                                       "auth.issuers.fhir_servers.")

    _base_urls = field_validator("allowed_servers")(check_base_urls)


class IssuerConfig(Section):
    iss: str = Field(description="Issuer, exactly as in the JWT `iss` claim.")
    jwks_file: str = Field("", description="Its public key set (JWKS) as a file, relative to the config file.")
    jwks_url: str = Field("", description="Its public key set (JWKS) by URL.")
    jku: list[str] = Field([], description="`jku` header values allowed for this issuer.")
    fhir_servers: list[str] = Field([], description="Base URLs of the FHIR servers this issuer's "
                                    "calls may name as fhirServer (the access token goes there).")

    _base_urls = field_validator("fhir_servers")(check_base_urls)

    @model_validator(mode="after")
    def _one_key_source(self) -> "IssuerConfig":
        if bool(self.jwks_file) == bool(self.jwks_url):
            raise ValueError(f"issuer {self.iss!r}: give exactly one of jwks_file or jwks_url")
        return self


class AuthConfig(Section):
    issuers: list[IssuerConfig] = Field([], description="Trusted CDS clients ([[auth.issuers]] tables). "
                                        "None: calls are not authenticated (loopback only, see below).")
    algorithms: list[str] = Field(["ES384", "RS384"], description="JWT algorithms accepted "
                                  "(ES256/RS256 may be added; none and HMAC never).")
    leeway_seconds: int = Field(30, ge=0, le=300, description="Clock skew allowed on exp and iat.")
    jwks_refetch_interval: float = Field(60.0, ge=0, description="Least seconds between two refetches "
                                         "of an issuer's key set on an unknown kid.")
    allow_unauthenticated: bool = Field(False, description="Serve without client authentication on a "
                                        "non-loopback address (as --allow-unauthenticated).")

    @model_validator(mode="after")
    def _safe_algorithms(self) -> "AuthConfig":
        allowed = {"ES384", "RS384", "ES256", "RS256", "PS384", "PS256", "ES512", "RS512"}
        bad = [a for a in self.algorithms if a not in allowed]
        if bad:
            raise ValueError(f"auth.algorithms: {bad} not allowed (none and HMAC never are)")
        return self


class StoreConfig(Section):
    url: str = Field("", description="SQLAlchemy URL, e.g. postgresql+psycopg://host/db. "
                     "Empty: SQLite file baclofen-cds.sqlite3 in the instance folder.")
    patient_hash_key: str = Field("", description="Secret of the keyed hash of patient ids. "
                                  "Empty: generated once into the instance folder.")
    retention_days: int = Field(365, gt=0, description="Default age for `baclofen-cds purge`.")
    url_file: str = Field("", description="A file holding `url` (e.g. a mounted secret); "
                          "instead of `url`.")
    patient_hash_key_file: str = Field("", description="A file holding `patient_hash_key`; "
                                       "instead of `patient_hash_key`.")
    record_batch_seconds: float = Field(0.02, gt=0, le=10, description="Cards issued are written in "
                                        "one batch per this many seconds, off the hook call's path "
                                        "(a killed worker loses at most this window; docs/store.md).")


class SuppressionConfig(Section):
    once_per_order: bool = Field(True, description="Hide a non-critical card already overridden "
                                 "for the same order (same patient, draft, topic and finding).")
    snooze: bool = Field(True, description="Hide a topic for a patient after an override whose "
                         "reason carries a snooze (knowledge `override_snooze`).")
    same_order_hours: float = Field(24.0, gt=0, le=168, description="How long calls about one "
                                    "draft count as the same order.")


class RunaheadConfig(Section):
    enabled: bool = Field(True, description="Reuse FHIR data fetched for one call on the next "
                          "calls for the same patient, server and access token.")
    ttl_seconds: float = Field(60.0, gt=0, le=600, description="How long fetched data is reused.")
    max_entries: int = Field(2048, gt=0, description="Most FHIR query results kept per process.")
    max_bytes: int = Field(32 * 1024 * 1024, gt=0, description="Most bytes (JSON size) kept per process.")


class AdminConfig(Section):
    token: str = Field("", description="Bearer token of GET /admin/report. Empty: the admin API is off.")
    token_file: str = Field("", description="A file holding `token`; instead of `token`.")


class DemoConfig(Section):
    enabled: bool = Field(False, description="Serve the fixture FHIR server at /demo/fhir and the "
                          "/demo page (as serve --demo).")


class Config(Section):
    server: ServerConfig = ServerConfig()
    fhir: FhirConfig = FhirConfig()
    auth: AuthConfig = AuthConfig()
    store: StoreConfig = StoreConfig()
    admin: AdminConfig = AdminConfig()
    suppression: SuppressionConfig = SuppressionConfig()
    runahead: RunaheadConfig = RunaheadConfig()
    demo: DemoConfig = DemoConfig()
    # Site overrides of the clinical knowledge file (cards/knowledge.toml), same layout.
    knowledge: dict[str, Any] = {}
    # Where relative paths in the file (jwks_file) are resolved from.
    base_dir: str = ""

    @property
    def instance_path(self) -> Path:
        return Path(self.server.instance_path or Path.cwd() / "instance")


def load_config(path: str | os.PathLike | None = None, environ: dict | None = None,
                overrides: dict | None = None) -> Config:
    """Build the configuration once; raise ConfigError naming the bad key or value."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(CONFIG_FILE_ENV) or None
    data: dict[str, Any] = {}
    if path:
        data = _read_toml(Path(path))
        data.setdefault("base_dir", str(Path(path).resolve().parent))
    _deep_merge(data, _from_environment(environ))
    _deep_merge(data, overrides or {})
    return validate_config(data)


def validate_config(data: dict) -> Config:
    data = read_secret_files(data)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


# Secrets that may come from a file (`<key>_file`), as Kubernetes and Docker mount them.
SECRET_FILE_KEYS = {"store": ("url", "patient_hash_key"), "admin": ("token",)}


def read_secret_files(data: dict) -> dict:
    """A copy of `data` with each `<key>_file` read into `<key>`. A relative path is taken
    from the configuration file's folder. Messages name the key and path, never the secret."""
    data = dict(data)
    for section, keys in SECRET_FILE_KEYS.items():
        values = data.get(section)
        if not isinstance(values, dict):
            continue
        values = data[section] = dict(values)
        for key in keys:
            path = values.get(f"{key}_file")
            if not path or not isinstance(path, str):
                continue
            if values.get(key):
                raise ConfigError(f"{section}.{key} and {section}.{key}_file: give one, not both")
            values[key] = _read_secret(f"{section}.{key}_file", _resolve(path, data.get("base_dir")))
    return data


def _resolve(path: str, base_dir: str | None) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() or not base_dir else Path(base_dir) / candidate


def _read_secret(name: str, path: Path) -> str:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{name}: cannot read {path} ({reason})") from None
    if not secret:
        raise ConfigError(f"{name}: {path} is empty")
    return secret


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path}: {exc}") from None


def _from_environment(environ) -> dict:
    data: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_ENV:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX):].split("__")]
        if len(path) < 2 or not all(path):
            raise ConfigError(f"{name}: use BACLOFEN_CDS_<SECTION>__<KEY>")
        target = data
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = _parse_env_value(raw)
    return data


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _deep_merge(base: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "configuration"
        if error["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key")
        else:
            lines.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
    return "invalid configuration: " + "; ".join(lines)


def reference_markdown() -> str:
    """Every key with its default and meaning, as the README's configuration tables."""
    lines = []
    for section, field in Config.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, Section)):
            continue
        lines += [f"`[{section}]`", "", "| key | default | meaning |", "|---|---|---|"]
        for name, item in model.model_fields.items():
            default = "" if item.is_required() else _toml_value(item.get_default(call_default_factory=True))
            lines.append(f"| `{name}` | `{default}` | {item.description or ''} |")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return str(value)
