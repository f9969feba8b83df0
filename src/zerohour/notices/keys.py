"""Ed25519 signing keys: generation (0600, never overwritten), loading, and the pinned text form.

The public key text form is one line, `<provider-name> ed25519:<base64 of the raw 32 bytes>`:
pinning it pins both the provider's key and its name, so a gateway needs one value
(`--provider-key`) to reject a notice from a different provider or key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from zerohour.errors import ConfigError

KEY_FILE = "signing.key"
GATEWAY_KEY_FILE = "gateway.key"  # a gateway's own identity, in its data folder
_PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def raw_public(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def keyid_of(pub: Ed25519PublicKey) -> str:
    """DSSE key id: lowercase hex SHA-256 of the raw public key."""
    return hashlib.sha256(raw_public(pub)).hexdigest()


def valid_provider_name(name: str) -> bool:
    return bool(_PROVIDER_NAME.match(name))


@dataclass(frozen=True, slots=True)
class PinnedKey:
    """A provider's identity as a gateway pins it."""

    provider: str
    public_key: Ed25519PublicKey

    @property
    def keyid(self) -> str:
        return keyid_of(self.public_key)

    def text(self) -> str:
        return public_key_text(self.provider, self.public_key)


def public_key_text(provider: str, pub: Ed25519PublicKey) -> str:
    return f"{provider} ed25519:{base64.b64encode(raw_public(pub)).decode('ascii')}"


def parse_key_b64(b64: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("public key is not valid base64") from None
    if len(raw) != 32:
        raise ConfigError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def parse_public_key_text(text: str) -> PinnedKey:
    """Parse `<provider> ed25519:<base64>` (the last line of `provider key show`)."""
    parts = text.strip().split()
    if len(parts) != 2 or not parts[1].startswith("ed25519:"):
        raise ConfigError("provider key must look like '<provider> ed25519:<base64>'")
    if not valid_provider_name(parts[0]):
        raise ConfigError(f"invalid provider name {parts[0]!r}")
    return PinnedKey(parts[0], parse_key_b64(parts[1].removeprefix("ed25519:")))


def load_pinned_key(value: str) -> PinnedKey:
    """`--provider-key` value: the key text itself, or a file whose last non-empty line is it."""
    if "ed25519:" in value:
        return parse_public_key_text(value)
    path = Path(value)
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except OSError as exc:
        raise ConfigError(f"cannot read provider key file {value}: {exc.strerror}") from None
    if not lines:
        raise ConfigError(f"provider key file {value} is empty")
    return parse_public_key_text(lines[-1])


def _write_private(path: Path, data: bytes) -> None:
    """Create with 0600 from the start (no window with wider permissions); never overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def generate_key(data_dir: Path, name: str = KEY_FILE) -> Ed25519PrivateKey:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(data_dir / name, pem)
    return key


def load_key(data_dir: Path, name: str = KEY_FILE) -> Ed25519PrivateKey:
    path = data_dir / name
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"no signing key in {data_dir} (run `zerohour provider run` once)"
        ) from None
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return key


def load_or_generate_key(data_dir: Path, name: str = KEY_FILE) -> Ed25519PrivateKey:
    if (data_dir / name).exists():
        return load_key(data_dir, name)
    try:
        return generate_key(data_dir, name)
    except FileExistsError:  # another process created it first
        return load_key(data_dir, name)


def write_secret(path: Path, data: bytes) -> None:
    """Write a 0600 secret file (e.g. a subscription token) that must not already exist."""
    _write_private(path, data)


def gateway_id(data_dir: Path) -> str:
    """The gateway's identity: the keyid of its own Ed25519 key, made at first run (0600) in
    its data folder and kept. The provider keys subscriptions by it, so a restarted gateway
    replaces its subscription instead of adding one."""
    return keyid_of(load_or_generate_key(data_dir, GATEWAY_KEY_FILE).public_key())
