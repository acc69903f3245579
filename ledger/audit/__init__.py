"""Tamper evidence: hash-chain seals over the log, verification, and an export for auditors.

The algorithm (``docs/audit.md`` is the reference, with an independent verifier):

* every record is reduced to its stored parts (:class:`~ledger.log.RawRecord`: key,
  headers, value, timestamp) and digested: ``digest = SHA-256(record_bytes(record))``;
* per partition, in log order: ``chain = SHA-256(previous chain || position || digest)``,
  starting from 32 zero bytes;
* a seal writes a **checkpoint** per partition (position of the last record sealed, how
  many records are sealed, the chain hash, when), optionally signed with Ed25519, plus
  the digest of every record it sealed (for naming *what* diverged, not for trust).

Checkpoints and digests live in an audit store apart from the log (a SQLite file; by
default ``audit.db`` in the data folder). Verification re-reads the log, recomputes the
chain and compares it with every checkpoint; the per-record digests let it name the first
divergence per partition and its kind: a modified record, deleted records (or a truncated
end), records in another order, or records inserted before a sealed position.

- :mod:`~ledger.audit.chain`: the algorithm (record bytes, digests, chain, checkpoints, keys);
- :mod:`~ledger.audit.store`: the audit store and the export bundle;
- :mod:`~ledger.audit.reader`: reading a log as digests, in parallel for the embedded log;
- :mod:`~ledger.audit.sealing`: sealing and verifying.
"""

from ledger.audit import reader
from ledger.audit.chain import (
    ALGORITHM,
    ALGORITHMS,
    GENESIS,
    LAYOUT,
    AuditError,
    Checkpoint,
    SealsMissing,
    Signer,
    chain_step,
    generate_key,
    load_public_key,
    record_bytes,
    record_digest,
    signature_ok,
)
from ledger.audit.reader import embedded_digests
from ledger.audit.sealing import Divergence, PartitionReport, SealReport, seal, verify
from ledger.audit.store import AuditStore, export, require_seals

__all__ = [
    "ALGORITHM",
    "ALGORITHMS",
    "GENESIS",
    "LAYOUT",
    "AuditError",
    "AuditStore",
    "Checkpoint",
    "Divergence",
    "PartitionReport",
    "SealReport",
    "SealsMissing",
    "Signer",
    "chain_step",
    "embedded_digests",
    "export",
    "generate_key",
    "load_public_key",
    "reader",
    "record_bytes",
    "record_digest",
    "require_seals",
    "seal",
    "signature_ok",
    "verify",
]
