"""The API key file: keys created or revoked at the same moment (a provisioning script
run in parallel) are all kept, and a revoked key never comes back."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from application import api_keys
from ledger.errors import LedgerError
from ledger.settings import Settings
from tests.conftest import at_once, failures


def test_keys_created_together_are_all_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    outcomes = at_once(
        [partial(api_keys.create, settings, f"service-{n}", ["read"]) for n in range(16)]
    )
    assert failures(outcomes) == []
    made = [key.key_id for key, _ in outcomes]  # type: ignore[attr-defined]
    assert sorted(k.key_id for k in api_keys.list_keys(settings)) == sorted(made)
    assert len(set(made)) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api-keys.json", "api-keys.json.lock"]


def test_a_key_revoked_while_others_are_created_stays_revoked(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    revoked = [api_keys.create(settings, f"old-{n}", ["read"])[0].key_id for n in range(8)]
    calls = [partial(api_keys.revoke, settings, key_id) for key_id in revoked] + [
        partial(api_keys.create, settings, f"new-{n}", ["read"]) for n in range(8)
    ]
    assert failures(at_once(calls)) == []
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
