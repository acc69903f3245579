"""``ledger audit``: tamper evidence for auditors (keygen, seal, verify, export)."""

from __future__ import annotations

from pathlib import Path

import click

from application import audit as use
from faces.cli.options import json_option, settings_of
from faces.cli.render import EXIT_TAMPERED, echo_json
from ledger.stopping import exit_code, signal_name, stop_on_signals


@click.group()
def audit() -> None:
    """Tamper evidence for auditors: seal the log, verify it, export the seals.

    \b
    Example:
      ledger audit keygen keys/seal.pem
      ledger audit seal --key keys/seal.pem
      ledger audit verify --public-key keys/seal.pem.pub
      ledger audit export --out bundle/
    """


@audit.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def audit_keygen(path: Path) -> None:
    """Create an Ed25519 signing key (PATH, PEM, mode 600) and its public key (PATH.pub).

    Keep the private key away from the people who run the ledger; give auditors the .pub.

    \b
    Example:
      ledger audit keygen keys/seal.pem
    """
    public = use.keygen(path)
    click.echo(f"wrote {path} and {path}.pub (public key {public})")


@audit.command("seal")
@click.option(
    "--key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Sign each checkpoint with this Ed25519 private key (PEM).",
)
@json_option
@click.pass_context
def audit_seal(ctx: click.Context, key: Path | None, as_json: bool) -> None:
    """Extend each partition's hash chain to the end of the log and checkpoint it.

    Incremental: sealing again continues from the last checkpoint. Checkpoints and the
    digest of every sealed record go to the audit store (LEDGER_AUDIT_STORE), not the log.
    On SIGINT/SIGTERM it checkpoints what it has chained so far (a valid, shorter seal),
    prints it and exits 130/143; sealing again goes on from there.

    \b
    Example:
      ledger audit seal --key keys/seal.pem
    """
    with stop_on_signals() as stop:
        report = use.seal(settings_of(ctx), key, stop)
        interrupted = exit_code(stop)
    if as_json:
        echo_json(use.seal_dict(report, interrupted))
    else:
        click.echo(
            f"sealed {report.records} new records in {len(report.checkpoints)} partition(s) "
            f"({use.seal_rate(report):,.0f} records/s){', signed' if key else ''}"
        )
        for checkpoint in report.checkpoints:
            click.echo(
                f"  checkpoint {checkpoint.id}: partition {checkpoint.partition} up to position "
                f"{checkpoint.position}, {checkpoint.count} records, "
                f"chain {checkpoint.chain[:16]}..."
            )
    if interrupted:
        click.echo(
            f"interrupted by {signal_name(interrupted)}: sealed as far as the checkpoints "
            "say; run `ledger audit seal` again to seal the rest",
            err=True,
        )
        ctx.exit(interrupted)


@audit.command("verify")
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Require every checkpoint to be signed by this key (PEM or hex). Without it, "
    "signatures are checked against the key each checkpoint names.",
)
@click.option(
    "--from-checkpoint",
    type=int,
    metavar="ID",
    help="Trust each partition up to its last checkpoint with this id or lower.",
)
@json_option
@click.pass_context
def audit_verify(
    ctx: click.Context, public_key: Path | None, from_checkpoint: int | None, as_json: bool
) -> None:
    """Re-read the log and check it against the seals; exit 4 if anything differs.

    Reports per partition the first divergence, its position and kind: modified,
    deleted, truncated, reordered, inserted (before a sealed position). Records added
    since the last seal are counted, not judged. Streams: memory does not grow with the log.

    \b
    Example:
      ledger audit verify --public-key keys/seal.pem.pub
      ledger audit verify --json | jq '.partitions[].divergence'
    """
    reports = use.verify(settings_of(ctx), public_key, from_checkpoint)
    ok = all(r.ok for r in reports)
    if as_json:
        echo_json(use.verify_dict(reports))
    else:
        for r in reports:
            line = (
                f"partition {r.partition}: {r.sealed} sealed records, {r.checkpoints} "
                f"checkpoint(s), {r.signatures} signature(s) verified, {r.unsealed} unsealed"
            )
            click.echo(("ok       " if r.ok else "TAMPERED ") + line)
            if r.divergence:
                d = r.divergence
                click.echo(f"  first divergence at position {d.position}: {d.kind}: {d.detail}")
            for problem in r.problems[:5]:
                click.echo(f"  {problem}")
            if len(r.problems) > 5:
                click.echo(f"  ... and {len(r.problems) - 5} more")
            if r.layout_1_until:
                click.echo(
                    f"  note: records up to position {r.layout_1_until} were sealed in layout 1, "
                    "which does not cover the version column nor the columns' types "
                    "(docs/audit.md)"
                )
    if not ok:
        ctx.exit(EXIT_TAMPERED)


@audit.command("export")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder."
)
@click.pass_context
def audit_export(ctx: click.Context, out: Path) -> None:
    """Write the checkpoints and public key(s) as a small JSON bundle (seals.json).

    With the algorithm in docs/audit.md, an auditor checks the log against it with their
    own code; the ledger is not needed.

    \b
    Example:
      ledger audit export --out bundle/
    """
    click.echo(str(use.export(settings_of(ctx), out)))
