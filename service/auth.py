"""CDS client authentication: every call to a CDS endpoint carries a JWT from a trusted EHR.

What is checked (CDS Hooks 2.0.1, "Trusting CDS Clients"):
- the issuer (`iss`) is configured in `[[auth.issuers]]`;
- the key is chosen by `kid` from that issuer's key set (jwks_file or jwks_url); a `jku`
  header is honoured only when listed in that issuer's `jku` allow-list, otherwise rejected;
- the algorithm is an asymmetric one listed in `auth.algorithms` (never `none`, never HMAC)
  and fits the key (EC curve / RSA);
- the signature, `aud` (a configured public URL + the path called), `exp`, `iat` (not in
  the future), with leeway; `exp`, `iat` and `nbf` must be JSON numbers (RFC 7519 NumericDate);
- `jti` is present and has not been seen before during the token's lifetime, in any worker
  process (the store's `claim_jti`).
A failure answers 401 with `WWW-Authenticate: Bearer` and no detail; the reason is logged
without the token.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from flask import Flask, g, jsonify, request

from .config import AuthConfig, Config, ConfigError, IssuerConfig
from .logs import get_logger

CDS_PATH = "/cds-services"
MAX_TOKEN_CHARS = 16 * 1024
MAX_JTI_CHARS = 256
MAX_JWKS_BYTES = 256 * 1024
MAX_LOGGED_CHARS = 200
# A token may not claim to be valid for longer than this from now: its jti is remembered
# until it expires, so an unbounded `exp` would be an unbounded promise to remember.
MAX_TOKEN_LIFETIME_SECONDS = 3600
JWKS_TIMEOUT = (1.0, 2.0)  # connect, read (seconds)
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
TIME_CLAIMS = ("exp", "iat", "nbf")

# The only algorithms ever accepted, whatever the configuration: no `none`, no HMAC.
ASYMMETRIC_ALGORITHMS = {
    "ES256": ("EC", "secp256r1"), "ES384": ("EC", "secp384r1"), "ES512": ("EC", "secp521r1"),
    "RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None),
    "PS256": ("RSA", None), "PS384": ("RSA", None),
}

LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost", "ip6-loopback"}

log = get_logger()


class AuthFailure(Exception):
    """The call is not authenticated; `reason` is for the log only, never for the client."""

    def __init__(self, reason: str, issuer: str | None = None, kid: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.issuer = issuer
        self.kid = kid


# --- key sets -------------------------------------------------------------------------

@dataclass(frozen=True)
class VerificationKey:
    key: Any          # a cryptography public key
    jwk_alg: str | None  # the `alg` the key set names for this key, if any


def parse_jwks(data: Any) -> dict[str, VerificationKey]:
    """Usable signature keys of a JWK Set by kid; symmetric and foreign keys are skipped."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWK Set (no 'keys' list)")
    keys = {}
    for entry in data["keys"]:
        parsed = _parse_jwk(entry)
        if parsed is not None:
            keys[entry["kid"]] = parsed
    return keys


def _parse_jwk(entry: Any) -> VerificationKey | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
        return None
    if entry.get("kty") not in ("EC", "RSA") or entry.get("use", "sig") != "sig":
        return None
    try:
        key = jwt.PyJWK(entry).key
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if hasattr(key, "private_numbers"):  # a private key given by mistake: keep the public half
        key = key.public_key()
    alg = entry.get("alg") if isinstance(entry.get("alg"), str) else None
    return VerificationKey(key=key, jwk_alg=alg)


def read_jwks_file(path: str) -> Any:
    with open(path, "rb") as handle:
        return json.loads(handle.read(MAX_JWKS_BYTES + 1)[:MAX_JWKS_BYTES])


def fetch_jwks_url(url: str) -> Any:
    """GET a key set with a short timeout, no redirects, no credentials and a size cap."""
    with requests.get(url, timeout=JWKS_TIMEOUT, allow_redirects=False, stream=True,
                      headers={"Accept": "application/json"}) as response:
        response.raise_for_status()
        body = response.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("key set too large")
    return json.loads(body)


class KeySource:
    """One key set (a file or a URL), cached; reloaded on an unknown kid at most once per interval."""

    def __init__(self, location: str, loader: Callable[[str], Any], refetch_interval: float,
                 issuer: str):
        self.location = location
        self._loader = loader
        self._interval = refetch_interval
        self._issuer = issuer
        self._keys: dict[str, VerificationKey] = {}
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> VerificationKey | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            if kid not in self._keys and self._may_reload():
                self.reload()
            return self._keys.get(kid)

    def ensure_loaded(self) -> bool:
        """True when keys are loaded; otherwise try to load them (rate-limited) first."""
        if not self._keys:
            with self._lock:
                if not self._keys and self._may_reload():
                    self.reload()
        return bool(self._keys)

    @property
    def is_file(self) -> bool:
        return self._loader is read_jwks_file

    def load_or_fail(self) -> None:
        """Load the key set now; ConfigError when it is unreadable or has no usable key."""
        try:
            keys = parse_jwks(self._loader(self.location))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"auth.issuers: key set {self.location}: {exc}") from None
        if not keys:
            raise ConfigError(f"auth.issuers: key set {self.location}: no usable EC or RSA key")
        self._keys, self._loaded_at = keys, time.monotonic()

    def reload(self) -> None:
        """Load the key set now; on failure keep the keys we had and log why."""
        self._loaded_at = time.monotonic()
        try:
            self._keys = parse_jwks(self._loader(self.location))
        except Exception as exc:  # noqa: BLE001 - any I/O or format problem
            log.warning("key set unavailable", extra={
                "event": "jwks_unavailable", "reason": type(exc).__name__, "issuer": self._issuer})

    def _may_reload(self) -> bool:
        return self._loaded_at is None or time.monotonic() - self._loaded_at >= self._interval


class IssuerKeys:
    """The keys one trusted issuer may sign with: its configured set plus allow-listed jku sets."""

    def __init__(self, issuer: IssuerConfig, base_dir: str, refetch_interval: float):
        self.iss = issuer.iss
        self.allowed_jku = frozenset(issuer.jku)
        self._interval = refetch_interval
        self.configured = self._configured_source(issuer, base_dir)
        self._jku_sources = {url: KeySource(url, fetch_jwks_url, refetch_interval, issuer.iss)
                             for url in issuer.jku}

    def _configured_source(self, issuer: IssuerConfig, base_dir: str) -> KeySource:
        if issuer.jwks_url:
            return KeySource(issuer.jwks_url, fetch_jwks_url, self._interval, issuer.iss)
        return KeySource(resolve_path(issuer.jwks_file, base_dir), read_jwks_file,
                         self._interval, issuer.iss)

    def key_for(self, kid: str, jku: str | None) -> VerificationKey | None:
        """The configured set is tried first; an allow-listed jku's set only for a kid it lacks."""
        key = self.configured.key_for(kid)
        if key is None and jku is not None:
            key = self._jku_sources[jku].key_for(kid)
        return key


def resolve_path(path: str, base_dir: str) -> str:
    candidate = Path(path).expanduser()
    if not candidate.is_absolute() and base_dir:
        candidate = Path(base_dir) / candidate
    return str(candidate)


# --- the verifier -----------------------------------------------------------------------

class Verifier:
    """Checks a client JWT against the configured issuers (everything but jti replay)."""

    def __init__(self, auth: AuthConfig, base_dir: str = ""):
        self.algorithms = [alg for alg in auth.algorithms if alg in ASYMMETRIC_ALGORITHMS]
        self.leeway = auth.leeway_seconds
        self.issuers = {issuer.iss: IssuerKeys(issuer, base_dir, auth.jwks_refetch_interval)
                        for issuer in auth.issuers}

    @classmethod
    def from_config(cls, config: Config) -> "Verifier":
        verifier = cls(config.auth, config.base_dir)
        verifier.load_key_files()
        return verifier

    def load_key_files(self) -> None:
        """Fail fast on a missing or broken jwks_file; jwks_url sets are fetched when needed."""
        for keys in self.issuers.values():
            if keys.configured.is_file:
                keys.configured.load_or_fail()

    def verify(self, token: str, audience: str | list[str], *, verify_expiry: bool = True) -> dict:
        """The token's claims when it is valid for `audience` (one of them, if a list);
        AuthFailure otherwise."""
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthFailure("token too large")
        header = _unverified_header(token)
        issuer = _unverified_issuer(token)
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        keys = self._issuer_keys(issuer, kid)
        alg = self._algorithm(header, issuer, kid)
        key = self._key(keys, header, kid)
        _check_key_fits(key, alg, issuer, kid)
        return self._decode(token, key, alg, audience, issuer, kid, verify_expiry)

    def _issuer_keys(self, issuer: str | None, kid: str | None) -> IssuerKeys:
        if issuer is None or issuer not in self.issuers:
            raise AuthFailure("unknown issuer", issuer, kid)
        if kid is None:
            raise AuthFailure("missing kid", issuer)
        return self.issuers[issuer]

    def _algorithm(self, header: dict, issuer: str, kid: str) -> str:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise AuthFailure(f"algorithm not allowed: {str(alg)[:20]}", issuer, kid)
        return alg

    def _key(self, keys: IssuerKeys, header: dict, kid: str) -> VerificationKey:
        jku = header.get("jku")
        if jku is not None and (not isinstance(jku, str) or jku not in keys.allowed_jku):
            raise AuthFailure("jku not allowed", keys.iss, kid)
        key = keys.key_for(kid, jku)
        if key is None:
            raise AuthFailure("unknown kid", keys.iss, kid)
        return key

    def _decode(self, token: str, key: VerificationKey, alg: str, audience: str | list[str],
                issuer: str, kid: str, verify_expiry: bool) -> dict:
        options = {"require": REQUIRED_CLAIMS, "verify_exp": verify_expiry}
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=audience,
                                issuer=issuer, leeway=self.leeway, options=options)
        except jwt.PyJWTError as exc:
            raise AuthFailure(_describe_jwt_error(exc), issuer, kid) from None
        if not _numeric_dates(claims):
            raise AuthFailure("time claim not a number", issuer, kid)
        if not isinstance(claims["jti"], str) or not 0 < len(claims["jti"]) <= MAX_JTI_CHARS:
            raise AuthFailure("invalid jti", issuer, kid)
        if verify_expiry and int(claims["exp"]) > time.time() + MAX_TOKEN_LIFETIME_SECONDS:
            raise AuthFailure("lifetime too long", issuer, kid)
        return claims


def _numeric_dates(claims: dict) -> bool:
    """RFC 7519 NumericDate: a JSON number; PyJWT alone would take "1795300644" too."""
    return all(isinstance(claims[name], (int, float)) and not isinstance(claims[name], bool)
               for name in TIME_CLAIMS if name in claims)


def _unverified_header(token: str) -> dict:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthFailure("malformed token") from None
    if not isinstance(header, dict):
        raise AuthFailure("malformed token")
    return header


def _unverified_issuer(token: str) -> str | None:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthFailure("malformed token") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


def _check_key_fits(key: VerificationKey, alg: str, issuer: str, kid: str) -> None:
    kty, curve = ASYMMETRIC_ALGORITHMS[alg]
    if key.jwk_alg is not None and key.jwk_alg != alg:
        raise AuthFailure("algorithm does not match key", issuer, kid)
    if kty == "EC":
        fits = isinstance(key.key, EllipticCurvePublicKey) and key.key.curve.name == curve
    else:
        fits = isinstance(key.key, RSAPublicKey)
    if not fits:
        raise AuthFailure("algorithm does not match key", issuer, kid)


def _describe_jwt_error(exc: jwt.PyJWTError) -> str:
    reasons = [
        (jwt.ExpiredSignatureError, "expired"),
        (jwt.ImmatureSignatureError, "issued in the future"),
        (jwt.InvalidAudienceError, "wrong audience"),
        (jwt.InvalidIssuerError, "wrong issuer"),
        (jwt.MissingRequiredClaimError, "missing claim"),
        (jwt.InvalidSignatureError, "bad signature"),
    ]
    for kind, reason in reasons:
        if isinstance(exc, kind):
            return reason
    return "invalid token"


# --- replay ---------------------------------------------------------------------------

def replay_key(issuer: str, jti: str) -> str:
    """jti values are unique per issuer; stored hashed so the store keeps a fixed-size key."""
    return hashlib.sha256(f"{issuer}\0{jti}".encode()).hexdigest()


def claim_token(store: Any, claims: dict, leeway: int) -> None:
    """Raise AuthFailure when this token's jti was used before (in any process)."""
    # The token is accepted until exp + leeway, so its jti is remembered until then.
    expires_at = datetime.fromtimestamp(int(claims["exp"]) + leeway, tz=timezone.utc)
    if not store.claim_jti(replay_key(claims["iss"], claims["jti"]), expires_at):
        raise AuthFailure("replayed jti", claims["iss"])


# --- Flask wiring -------------------------------------------------------------------------

def is_cds_endpoint(path: str) -> bool:
    return path == CDS_PATH or path.startswith(CDS_PATH + "/")


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthFailure("no bearer token")
    return token.strip()


def expected_audiences(public_urls: list[str]) -> list[str]:
    """The URLs the client may have called: each configured public base URL + the path.
    Never built from the request's Host or X-Forwarded-* headers, which the caller chooses."""
    return [base + request.path for base in public_urls]


def require_public_url(config: Config) -> None:
    """With client authentication on, the expected `aud` needs `[server] public_url`."""
    if config.auth.issuers and not config.server.public_urls:
        raise ConfigError(
            "[server] public_url is required with [[auth.issuers]]: set it to the URL clients "
            "call (e.g. https://cds.example.org), the JWT aud is checked against it")


def unauthorized():
    response = jsonify({"error": "unauthorized"})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


_startup_warning = {"shown": False}


def startup_warning_shown() -> None:
    """The command line has printed startup_check's warning: the app (built again in every
    worker process, which inherit this flag) does not log it once more each."""
    _startup_warning["shown"] = True


def install(app: Flask, state: Any) -> None:
    """Authenticate every CDS endpoint call (not CORS preflights) when issuers are configured."""
    config: Config = state.config
    if not config.auth.issuers:
        if not _startup_warning["shown"]:
            log.warning("CDS client authentication is OFF: no [[auth.issuers]] configured",
                        extra={"event": "auth_disabled"})
        return
    require_public_url(config)
    verifier = Verifier.from_config(config)
    state.verifier = verifier  # /readyz reports key sets not loaded
    public_urls = config.server.public_urls

    @app.before_request
    def _authenticate_cds_client():
        if request.method == "OPTIONS" or not is_cds_endpoint(request.path):
            return None
        try:
            token = bearer_token(request.headers.get("Authorization"))
            claims = verifier.verify(token, expected_audiences(public_urls))
            claim_token(state.store, claims, verifier.leeway)
        except AuthFailure as failure:
            _log_failure(failure)
            return unauthorized()
        g.cds_client = {"iss": claims["iss"], "tenant": claims.get("tenant")}
        return None


def _log_failure(failure: AuthFailure) -> None:
    log.warning("authentication failed", extra={
        "event": "auth_failed",
        "reason": failure.reason,
        "issuer": _clip(failure.issuer),
        "kid": _clip(failure.kid),
        "path": _clip(request.path),
    })


def _clip(value: str | None) -> str | None:
    return None if value is None else value[:MAX_LOGGED_CHARS]


# --- start-up ---------------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def startup_check(config: Config, host: str, allow_unauthenticated: bool) -> list[str]:
    """Warning lines to print at start-up; ConfigError when serving would be unsafe.

    With issuers configured the key files are checked. Without issuers the service runs
    unauthenticated: allowed on a loopback host (with a warning) or when explicitly allowed
    by --allow-unauthenticated / auth.allow_unauthenticated (with a louder warning).
    """
    if config.auth.issuers:
        require_public_url(config)
        Verifier.from_config(config)
        return []
    if is_loopback(host):
        return _unauthenticated_warning(host, "only this machine can reach it")
    if allow_unauthenticated or config.auth.allow_unauthenticated:
        return _unauthenticated_warning(host, "ANYONE WHO CAN REACH THIS HOST CAN CALL IT")
    raise ConfigError(
        f"refusing to serve on non-loopback host {host!r} without client authentication: "
        "configure [[auth.issuers]] (see docs/security.md), bind to 127.0.0.1, or pass "
        "--allow-unauthenticated (auth.allow_unauthenticated = true) if a gateway "
        "authenticates the EHR")


def _unauthenticated_warning(host: str, exposure: str) -> list[str]:
    bar = "!" * 78
    return [
        bar,
        f"WARNING: CDS client authentication is OFF (no [[auth.issuers]]) on host {host}:",
        f"  every caller is trusted; {exposure}.",
        "  Configure trusted EHR issuers before real use (docs/security.md).",
        bar,
    ]
