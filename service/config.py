"""Configuration: one TOML file plus BACLOFEN_CDS_* environment variables, validated once.

Precedence: built-in defaults < TOML file (--config / BACLOFEN_CDS_CONFIG) < environment.
Environment variables name a key as BACLOFEN_CDS_<SECTION>__<KEY>, for example
BACLOFEN_CDS_FHIR__TOTAL_TIMEOUT=2.0; their values are read as TOML values where they
parse as such (numbers, booleans, arrays) and as plain strings otherwise.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ENV_PREFIX = "BACLOFEN_CDS_"
CONFIG_FILE_ENV = "BACLOFEN_CDS_CONFIG"


class ConfigError(Exception):
    """A configuration key or value is wrong; the message names it."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(Section):
    # Base URL as clients see it (scheme://host[:port]); used for the JWT `aud` check
    # behind a proxy. Empty: taken from each request.
    public_url: str = ""
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    max_json_depth: int = Field(64, gt=1)
    max_bundle_entries: int = Field(1000, gt=0)
    max_string_length: int = Field(65536, gt=0)
    cors_origins: list[str] = ["*"]
    # Where the SQLite store and generated secrets live. Empty: ./instance
    instance_path: str = ""


class FhirConfig(Section):
    connect_timeout: float = Field(0.5, gt=0)
    # Wall-clock budget for all FHIR queries of one hook call, pages included.
    total_timeout: float = Field(2.5, gt=0, lt=30)
    retries: int = Field(1, ge=0, le=3)
    max_pages: int = Field(5, ge=1, le=50)
    max_workers: int = Field(8, ge=1, le=32)
    # URL patterns (fnmatch) of FHIR servers the access token may be sent to.
    allowed_servers: list[str] = [
        "https://*",
        "http://127.0.0.1:*",
        "http://127.0.0.1/*",
        "http://localhost:*",
        "http://localhost/*",
        "http://[[]::1]:*",
    ]


class IssuerConfig(Section):
    iss: str
    jwks_file: str = ""
    jwks_url: str = ""
    jku: list[str] = []

    @model_validator(mode="after")
    def _one_key_source(self) -> "IssuerConfig":
        if bool(self.jwks_file) == bool(self.jwks_url):
            raise ValueError(f"issuer {self.iss!r}: give exactly one of jwks_file or jwks_url")
        return self


class AuthConfig(Section):
    issuers: list[IssuerConfig] = []
    algorithms: list[str] = ["ES384", "RS384"]
    leeway_seconds: int = Field(30, ge=0, le=300)
    # Minimum seconds between two refetches of one issuer's key set on an unknown kid.
    jwks_refetch_interval: float = Field(60.0, ge=0)
    allow_unauthenticated: bool = False

    @model_validator(mode="after")
    def _safe_algorithms(self) -> "AuthConfig":
        allowed = {"ES384", "RS384", "ES256", "RS256", "PS384", "PS256", "ES512", "RS512"}
        bad = [a for a in self.algorithms if a not in allowed]
        if bad:
            raise ValueError(f"auth.algorithms: {bad} not allowed (none and HMAC never are)")
        return self


class StoreConfig(Section):
    # SQLAlchemy URL. Empty: SQLite file baclofen-cds.sqlite3 in the instance folder.
    url: str = ""
    # Secret for the keyed hash of patient ids. Empty: generated once in the instance folder.
    patient_hash_key: str = ""
    retention_days: int = Field(365, gt=0)


class AdminConfig(Section):
    # Bearer token for /admin/*. Empty: the admin API is off.
    token: str = ""


class DemoConfig(Section):
    enabled: bool = False


class Config(Section):
    server: ServerConfig = ServerConfig()
    fhir: FhirConfig = FhirConfig()
    auth: AuthConfig = AuthConfig()
    store: StoreConfig = StoreConfig()
    admin: AdminConfig = AdminConfig()
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
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


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
