"""The secret for the keyed hash of patient ids: configured, or generated once per instance folder."""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE_NAME = "patient-hash.key"


def patient_hash_key(configured: str, instance_path: Path) -> bytes:
    if configured:
        return configured.encode()
    return _read_or_create_key_file(instance_path / KEY_FILE_NAME)


def hash_patient_id(key: bytes, patient_id: str) -> str:
    return hmac.new(key, patient_id.encode(), hashlib.sha256).hexdigest()


def _read_or_create_key_file(path: Path) -> bytes:
    if not path.exists():
        _create_key_file(path)
    key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{path}: patient hash key too short; delete it to regenerate")
    return key.encode()


def _create_key_file(path: Path) -> None:
    """Write the key to a private temporary file, then link it into place: the first
    process to link wins, and no process ever reads a half-written key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
