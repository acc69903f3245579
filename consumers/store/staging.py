"""Staging folders for worker processes, and the read-only view reader they dedupe against."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from consumers.store.batch import Seen, StoreUnavailable
from consumers.store.recorders import select_applied, select_profiles, select_seen
from consumers.store.schema import TABLES
from projections.profile import Profile


@dataclass(frozen=True, slots=True)
class Staging:
    """Where a projector's worker processes read a SQLite view store (profiles, applied
    ids) and leave their staging files: the store's file and table suffix."""

    path: Path
    suffix: str
    postgres: str | None = None
    """A PostgreSQL store: its URL (workers read it there; ``path`` only names the staging
    directories, in the temporary directory)."""
    schema: str = "public"

    def new_directory(self) -> Path:
        """A fresh directory for one run's staging files, beside the store (same disk)."""
        prefix = f".{self.path.name}.staging-{os.getpid()}-"
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.path.parent))

    def remove_stale(self) -> None:
        """Remove the staging directories of runs that were killed before cleaning up."""
        for leftover in self.path.parent.glob(f".{self.path.name}.staging-*"):
            pid = leftover.name.rsplit("-", 2)[-2]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ViewReader:
    """Read-only access to a view store's profiles and applied ids, from another process
    (a projector's worker: see consumers.shards): SQLite or PostgreSQL."""

    def __init__(self, staging: Staging) -> None:
        self.postgres = staging.postgres is not None
        self.connection: Any
        if staging.postgres is not None:
            quoted = f'"{staging.schema}".'
            self.tables = {t: f"{quoted}{t}{staging.suffix}" for t in TABLES}
            try:
                self.connection = psycopg.connect(
                    staging.postgres.split("?", 1)[0], autocommit=True, connect_timeout=5
                )
            except psycopg.Error as exc:
                raise StoreUnavailable(f"cannot open the view store: {exc}") from exc
            return
        self.tables = {t: f"{t}{staging.suffix}" for t in TABLES}
        try:
            self.connection = sqlite3.connect(f"file:{staging.path}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the view store {staging.path}: {exc}") from exc

    def select(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        statement = statement.format(**self.tables)
        try:
            if self.postgres:
                statement = statement.replace("?", "%s").replace(" offset", ' "offset"')
                return list(self.connection.execute(statement, params).fetchall())
            return list(self.connection.execute(statement, params).fetchall())
        except (sqlite3.Error, psycopg.Error) as exc:
            raise StoreUnavailable(f"cannot read the view store: {exc}") from exc

    def applied(self, event_ids: Sequence[str]) -> set[str]:
        return select_applied(self.select, event_ids)

    def seen(self, event_ids: Sequence[str]) -> dict[str, Seen]:
        return select_seen(self.select, event_ids, arrays=self.postgres)

    def load_profiles(self, customers: Sequence[str]) -> dict[str, Profile]:
        return select_profiles(self.select, customers, arrays=self.postgres)

    def newest_times(self) -> dict[int, int]:
        return dict(self.select("SELECT partition, last_event_time FROM {progress}"))

    def close(self) -> None:
        self.connection.close()
