"""The master key file: made once, whoever asks first, and never read half written."""

from __future__ import annotations

import errno
import os
from functools import partial
from pathlib import Path

import pytest

from ledger.errors import MasterKeyError
from ledger.privacy.master import MasterKey, load_master_key
from tests.conftest import at_once


def test_a_missing_file_is_made_once_and_read_after(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    made = load_master_key(None, path, may_create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_master_key(None, path, may_create=False) == made
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # nothing else left


def test_a_missing_file_is_an_error_once_keys_exist(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="is missing"):
        load_master_key(None, tmp_path / "master.key", may_create=False)
    assert not (tmp_path / "master.key").exists()


def test_processes_starting_together_all_get_the_one_key(tmp_path: Path) -> None:
    """Whoever loses the race to make the file reads the winner's key, never a file that
    exists but is not written yet."""
    for round_ in range(30):
        path = tmp_path / f"{round_}" / "master.key"
        found = at_once([partial(load_master_key, None, path, may_create=True)] * 8)
        secrets = {k.secret if isinstance(k, MasterKey) else repr(k) for k in found}
        assert len(secrets) == 1, secrets
        assert load_master_key(None, path, may_create=False).secret in secrets


def test_a_file_system_without_hard_links_still_gets_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: str, target: Path) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "master.key"
    made = load_master_key(None, path, may_create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_master_key(None, path, may_create=False) == made
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]
