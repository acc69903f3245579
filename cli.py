"""The ``ledger`` command: the entry point that assembles the command groups.

The commands live by area in :mod:`faces.cli` (each parses, calls one application function
and renders); a :class:`LedgerError` becomes a one-line ``error: ...`` on stderr and exit
code 1, with no traceback for a user's mistake (see :class:`faces.cli.render.LedgerGroup`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from faces.cli import (
    audit,
    decisions,
    demo,
    identity,
    log,
    privacy,
    projecting,
    scale,
    serve,
    service_levels,
    views,
)
from faces.cli.render import LedgerGroup, warnings_to_stderr
from ledger.errors import ConfigurationError
from ledger.redact import redact
from ledger.settings import Settings


@click.group(cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log",
    "log_url",
    metavar="URL",
    help="sqlite:///PATH or kafka://HOST:PORT[,HOST:PORT]/TOPIC (env LEDGER_LOG).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Folder for the embedded log, views and rejects (env LEDGER_DATA_DIR).",
)
@click.version_option(package_name="touchpoint-ledger")
@click.pass_context
def main(ctx: click.Context, log_url: str | None, data_dir: Path | None) -> None:
    """touchpoint-ledger: every interaction with every customer, as an immutable log.

    \b
    Example:
      ledger demo
      ledger replay --customer C0000042
    """
    warnings_to_stderr()
    overrides: dict[str, Any] = {}
    if log_url:
        overrides["log"] = log_url
    if data_dir:
        overrides["data_dir"] = data_dir
    try:
        ctx.obj = Settings(**overrides)
    except ValueError as exc:
        raise ConfigurationError(f"settings: {redact(str(exc))}") from exc


main.add_command(log.append)
main.add_command(log.import_)
main.add_command(log.replay)
main.add_command(log.history)
main.add_command(log.generate)
main.add_command(demo.demo)
main.add_command(projecting.project)
main.add_command(views.profile)
main.add_command(views.contacts)
main.add_command(views.customers)
main.add_command(log.schema)
main.add_command(decisions.policy)
main.add_command(decisions.may_contact)
main.add_command(decisions.violations)
main.add_command(decisions.pressure_command)
main.add_command(audit.audit)
main.add_command(service_levels.service_levels_command)
main.add_command(service_levels.sla)
main.add_command(service_levels.churn)
for command in privacy.PRIVACY_COMMANDS:
    main.add_command(command)
main.add_command(scale.copy)
main.add_command(serve.serve)
main.add_command(serve.api_keys_group)
for command in identity.COMMANDS:
    main.add_command(command)

if __name__ == "__main__":
    main()
