"""The API key file: keys created or revoked at the same moment (a provisioning script
run in parallel) are all kept, and a revoked key never comes back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from application import api_keys
from ledger.errors import LedgerError
from ledger.settings import Settings


def together(count: int, work: Callable[[int], None]) -> list[Exception]:
    start = threading.Barrier(count)
    failures: list[Exception] = []

    def run(number: int) -> None:
        start.wait()
        try:
            work(number)
        except Exception as exc:  # what the test is about: any failure
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_keys_created_together_are_all_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    made: list[str] = []

    def create(number: int) -> None:
        key, _ = api_keys.create(settings, f"service-{number}", ["read"])
        made.append(key.key_id)

    assert together(16, create) == []
    assert sorted(k.key_id for k in api_keys.list_keys(settings)) == sorted(made)
    assert len(made) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api-keys.json", "api-keys.json.lock"]


def test_a_key_revoked_while_others_are_created_stays_revoked(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    revoked = [api_keys.create(settings, f"old-{n}", ["read"])[0].key_id for n in range(8)]

    def create_or_revoke(number: int) -> None:
        if number % 2:
            api_keys.revoke(settings, revoked[number // 2])
        else:
            api_keys.create(settings, f"new-{number}", ["read"])

    assert together(16, create_or_revoke) == []
    keys = {k.key_id: k for k in api_keys.list_keys(settings)}
    assert all(keys[key_id].revoked_at is not None for key_id in revoked)
    assert len(keys) == 16


def test_a_stored_key_checks_and_a_revoked_one_does_not(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    key, token = api_keys.create(settings, "svc", ["read"])
    assert (tmp_path / "api-keys.json").stat().st_mode & 0o777 == 0o600
    assert token not in (tmp_path / "api-keys.json").read_text()
    api_keys.revoke(settings, key.key_id)
    assert api_keys.list_keys(settings)[0].revoked_at is not None
    with pytest.raises(LedgerError, match="no API key"):
        api_keys.revoke(settings, "nosuchkey")
