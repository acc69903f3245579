"""The audit use cases: seal the log, verify it against the seals, export the seals."""

from __future__ import annotations

from contextlib import closing
from dataclasses import asdict
from pathlib import Path
from typing import Any

from application.wiring import log_name, open_log
from ledger import audit
from ledger.settings import Settings
from ledger.stopping import Stop, signal_name


def seal(settings: Settings, key: Path | None, stop: Stop) -> audit.SealReport:
    """Extend each partition's hash chain to the end of the log and checkpoint it (signed
    with ``key`` if given); on ``stop``, checkpoints what it has chained so far."""
    signer = audit.Signer(key) if key else None
    with (
        open_log(settings, create=False) as log,
        closing(audit.AuditStore(settings.audit_path)) as store,
    ):
        return audit.seal(log, log_name(settings), store, signer, stop=stop)


def seal_rate(report: audit.SealReport) -> float:
    return report.records / report.seconds if report.seconds else 0.0


def seal_dict(report: audit.SealReport, interrupted: int) -> dict[str, Any]:
    """A seal's answer for machines (``interrupted``: the signal's exit code, 0: none)."""
    return {
        "records": report.records,
        "seconds": round(report.seconds, 3),
        "records_per_second": round(seal_rate(report)),
        "checkpoints": [c.to_dict() for c in report.checkpoints],
        "interrupted": signal_name(interrupted),
    }


def verify(
    settings: Settings, public_key: Path | None, from_checkpoint: int | None
) -> list[audit.PartitionReport]:
    """Re-read the log and check it against the seals, per partition."""
    key = audit.load_public_key(public_key) if public_key else None
    with (
        open_log(settings, create=False) as log,
        closing(audit.require_seals(log, log_name(settings), settings.audit_path)) as store,
    ):
        return audit.verify(
            log, log_name(settings), store, public_key=key, from_checkpoint=from_checkpoint
        )


def verify_dict(reports: list[audit.PartitionReport]) -> dict[str, Any]:
    """A verification's answer for machines."""
    return {
        "ok": all(r.ok for r in reports),
        "partitions": [
            {
                "partition": r.partition,
                "ok": r.ok,
                "records": r.records,
                "sealed": r.sealed,
                "unsealed": r.unsealed,
                "checkpoints": r.checkpoints,
                "signatures_verified": r.signatures,
                "divergence": asdict(r.divergence) if r.divergence else None,
                "problems": r.problems,
                "layout_1_until": r.layout_1_until,
            }
            for r in reports
        ],
    }


def export(settings: Settings, out: Path) -> Path:
    """Write the checkpoints and public key(s) as a JSON bundle into ``out``."""
    store = audit.AuditStore.existing(settings.audit_path)
    if store is None:
        raise audit.SealsMissing(f"no audit store at {settings.audit_path}: nothing to export")
    with closing(store):
        return audit.export(store, log_name(settings), out)


def keygen(path: Path) -> str:
    """Create an Ed25519 signing key at ``path`` (and ``path``.pub); returns the public key."""
    return audit.generate_key(path)
