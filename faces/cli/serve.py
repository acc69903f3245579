"""``ledger serve``: the HTTP face (API, metrics, dashboard); ``ledger api-keys``: its keys."""

from __future__ import annotations

import socket
from contextlib import closing
from pathlib import Path

import click

from application import api_keys
from application.wiring import open_log, open_store
from faces.cli.options import json_option, settings_of
from faces.cli.render import echo_json
from ledger.errors import ConfigurationError
from ledger.settings import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes (each stateless; they share the log and the views).",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Ask for no API key (a laptop only: anyone who reaches the port can do anything).",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(1),
    default=8 * 1024 * 1024,
    show_default=True,
    help="Larger request bodies are refused with 413.",
)
@click.option(
    "--max-batch-events",
    type=click.IntRange(1),
    default=10_000,
    show_default=True,
    help="Larger CloudEvents batches are refused with 413.",
)
@click.option(
    "--ready-max-lag",
    type=click.IntRange(0),
    default=10_000,
    show_default=True,
    help="/readyz fails when the views are more records than this behind.",
)
@click.option(
    "--no-fast-path",
    is_flag=True,
    hidden=True,
    help="Answer profiles and single decisions through FastAPI's router too (a reference "
    "for tests and benchmarks: the answers are the same, only slower).",
)
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    no_auth: bool,
    max_body_bytes: int,
    max_batch_events: int,
    ready_max_lag: int,
    no_fast_path: bool,
    ssl_certfile: Path | None,
    ssl_keyfile: Path | None,
) -> None:
    """Serve the HTTP API (CloudEvents ingest, queries, may-contact), /healthz, /readyz,
    /metrics, the OpenAPI document (/docs, /openapi.json) and the /dashboard.

    Every query answers the same JSON as the CLI's --json. Requests need an API key
    (`ledger api-keys create`) in `Authorization: Bearer KEY`.

    \b
    Example:
      ledger api-keys create ops --scope read --scope contact-check
      ledger serve --host 0.0.0.0 --port 8080 --workers 2
    """
    import uvicorn

    from faces.http.serving import configure

    settings = settings_of(ctx)
    _preflight(settings, host, port)
    configure(
        settings,
        auth=not no_auth,
        max_body_bytes=max_body_bytes,
        max_batch_events=max_batch_events,
        ready_max_lag=ready_max_lag,
        fast_lookups=not no_fast_path,
    )
    uvicorn.run(
        "faces.http.serving:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,  # never shown at "warning"; without it uvicorn still asks per request
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )


def _preflight(settings: Settings, host: str, port: int) -> None:
    """Refuse to start, with one line, what could never serve: an address that does not
    resolve, a data folder that cannot be made, a key file that cannot be read, a log or
    view store that cannot be opened (the embedded log is created: ingest will write it)."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ConfigurationError(f"--host {host[:80]!r}: {exc}") from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    api_keys.list_keys(settings)
    with open_log(settings), closing(open_store(settings)):
        pass


@click.group("api-keys")
def api_keys_group() -> None:
    """API keys of `ledger serve`, stored hashed in DATA_DIR/api-keys.json.

    \b
    Scopes: publish, read, contact-check, audit, personal, admin.
    Example:
      ledger api-keys create campaign-tool --scope contact-check
      ledger api-keys list
      ledger api-keys revoke 3f2a9c01b7e4
    """


@api_keys_group.command("create")
@click.argument("name")
@click.option(
    "--scope", "scopes", multiple=True, required=True, type=click.Choice(list(api_keys.SCOPES))
)
@json_option
@click.pass_context
def create(ctx: click.Context, name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Create a key; its token is printed once and never stored."""
    key, token = api_keys.create(settings_of(ctx), name, list(scopes))
    if as_json:
        echo_json({**key.public(), "token": token})
        return
    click.echo(token)
    click.echo(
        f"key {key.key_id} ({', '.join(key.scopes)}): keep the token above, it is shown only once",
        err=True,
    )


@api_keys_group.command("list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """The keys (never their tokens)."""
    keys = api_keys.list_keys(settings_of(ctx))
    if as_json:
        echo_json([k.public() for k in keys])
        return
    for key in keys:
        state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
        click.echo(f"{key.key_id}  {key.name:20} {','.join(key.scopes):40} {state}")


@api_keys_group.command("revoke")
@click.argument("key_id")
@click.pass_context
def revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key: a running server refuses it from its next request."""
    key = api_keys.revoke(settings_of(ctx), key_id)
    click.echo(f"revoked {key.key_id} ({key.name})")
