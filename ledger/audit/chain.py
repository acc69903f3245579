"""The seal algorithm: a record's bytes and digest, the per-partition hash chain, the
checkpoints that record it, and their Ed25519 signatures (docs/audit.md is the reference)."""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from ledger.errors import LedgerError
from ledger.log import RawRecord
from ledger.timeutil import to_micros

LAYOUT = 2
"""The seal layout new checkpoints get (docs/audit.md): 1 sealed the embedded log's
customer, id, type, event time, state and append time; 2 seals every column of its table
with its SQLite type. Kafka records digest alike under both."""
ALGORITHMS = {1: "touchpoint-ledger-seal-v1", 2: "touchpoint-ledger-seal-v2"}
ALGORITHM = ALGORITHMS[LAYOUT]
GENESIS = bytes(32)
_ABSENT = 0xFFFFFFFF
I64 = struct.Struct(">q")
SEAL_CHUNK = 20_000
MISMATCH_CAP = 100_000
"""Diverging records remembered per partition to classify the first divergence; past
this, verification still counts them but keeps no more (memory stays bounded)."""


class AuditError(LedgerError):
    """The audit store or a key cannot be used."""


class SealsMissing(AuditError):
    """The audit store holds no seals for a log: nothing can be verified."""


_LAYOUTS: dict[int, struct.Struct] = {}
_NAMES: dict[str, bytes] = {}


def record_bytes(record: RawRecord) -> bytes:
    """The canonical bytes of one stored record (see docs/audit.md): the tag, the
    timestamp, the number of headers, the length of each field, then the fields (key, each
    header's name and value, value); an absent field has length FFFFFFFF and no bytes."""
    fields = [record.key]
    for name, value in record.headers:
        encoded = _NAMES.get(name)
        if encoded is None:
            encoded = _NAMES[name] = name.encode()
        fields += (encoded, value)
    fields.append(record.value)
    layout = _LAYOUTS.get(len(fields))
    if layout is None:
        layout = _LAYOUTS[len(fields)] = struct.Struct(f">qI{len(fields)}I")
    if None in fields:
        lengths = [_ABSENT if f is None else len(f) for f in fields]
        head = layout.pack(record.timestamp, len(record.headers), *lengths)
        return b"".join([record.tag, head, *[f for f in fields if f is not None]])
    present = cast(list[bytes], fields)  # no field is absent
    head = layout.pack(record.timestamp, len(record.headers), *map(len, present))
    return record.tag + head + b"".join(present)


def record_digest(record: RawRecord) -> bytes:
    return hashlib.sha256(record_bytes(record)).digest()


def chain_step(previous: bytes, position: int, digest: bytes) -> bytes:
    return hashlib.sha256(previous + I64.pack(position) + digest).digest()


# -- checkpoints ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The state of one partition's chain after a seal."""

    id: int
    log: str
    partition: int
    position: int
    """Offset of the last record sealed."""
    count: int
    """Records sealed in this partition, in all, up to ``position``."""
    chain: str
    """The chain hash after that record, hex."""
    sealed_at: datetime
    public_key: str | None = None
    """Ed25519 public key (raw, hex) that signed it, if signed."""
    signature: str | None = None
    layout: int = 1
    """The seal layout of the records this checkpoint was the first to cover."""

    def message(self) -> bytes:
        """What the signature signs (docs/audit.md): its first line names the layout."""
        algorithm = ALGORITHMS.get(self.layout, f"touchpoint-ledger-seal-v{self.layout}")
        return (
            f"{algorithm}\nlog={self.log}\npartition={self.partition}\n"
            f"position={self.position}\ncount={self.count}\nchain={self.chain}\n"
            f"sealed_at={to_micros(self.sealed_at)}\n"
        ).encode()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "log": self.log,
            "partition": self.partition,
            "position": self.position,
            "count": self.count,
            "chain": self.chain,
            "sealed_at": to_micros(self.sealed_at),
            "public_key": self.public_key,
            "signature": self.signature,
            "layout": self.layout,
        }


class Signer:
    """An Ed25519 private key from a PEM file (``ledger audit keygen`` writes one)."""

    def __init__(self, path: Path) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            PublicFormat,
            load_pem_private_key,
        )

        try:
            key = load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise AuditError(f"cannot read the signing key {path}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditError(f"{path}: not an Ed25519 private key")
        self._key = key
        self.public_key = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()


def generate_key(path: Path) -> str:
    """Write a new Ed25519 private key (PEM, mode 600) and its public key beside it
    (``PATH.pub``, PEM); returns the public key, raw, hex."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # made here or not at all: two keygens at once never overwrite each other's key
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AuditError(f"{path} exists: refusing to overwrite a key") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public = key.public_key()
    path.with_name(path.name + ".pub").write_bytes(
        public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def load_public_key(path: Path) -> str:
    """A public key file (PEM, or raw hex) as raw hex."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_public_key,
    )

    try:
        text = path.read_bytes()
    except OSError as exc:
        raise AuditError(f"cannot read the public key {path}: {exc}") from exc
    if not text.startswith(b"-----"):
        return str(text.decode().strip())
    key = load_pem_public_key(text)
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError(f"{path}: not an Ed25519 public key")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def signature_ok(checkpoint: Checkpoint, public_key: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if checkpoint.signature is None:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            bytes.fromhex(checkpoint.signature), checkpoint.message()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


# -- sealing --------------------------------------------------------------------------------
