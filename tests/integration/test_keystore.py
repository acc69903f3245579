"""The key store port: one contract suite, SQLite and PostgreSQL adapters (never skipped in
CI), and what a destroyed key leaves behind in the SQLite file (nothing)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.errors import KeyStoreUnavailable, MasterKeyError
from ledger.privacy.crypto import associated_data
from ledger.privacy.keystore import KeyStore, SQLiteKeyStore, open_key_store
from ledger.privacy.master import MasterKey
from tests.conftest import at_once, failures

KeyStoreFactory = Callable[[bytes], KeyStore]


def master_of(secret: bytes) -> Callable[[bool], MasterKey]:
    return lambda _may_create: MasterKey(secret, "the test")


@pytest.fixture(params=["sqlite", "postgres"])
def key_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStoreFactory]:
    """Makes stores over one fresh location (a file, or a PostgreSQL schema), each with
    the master key given."""
    opened: list[KeyStore] = []
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keys.db'}"
    else:
        schema = f"k_{uuid.uuid4().hex[:16]}"
        url = f"{request.getfixturevalue('postgres_url')}?schema={schema}"

    def make(secret: bytes) -> KeyStore:
        store = open_key_store(url, master_of(secret))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
    if request.param == "postgres":
        import psycopg

        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]


MASTER = bytes(range(32))


def test_keys_are_made_once_found_by_id_and_destroyed(key_store: KeyStoreFactory) -> None:
    store = key_store(MASTER)
    made = store.keys_for(["C1", "C2"], create=True)
    assert set(made) == {"C1", "C2"}
    assert store.keys_for(["C1", "C2", "C3"], create=False) == made  # the same, none new
    assert store.holders() == {"C1", "C2"}
    aad = associated_data("e1", "C1", "personal.name")
    sealed = made["C1"].seal("Ada", aad)
    other = key_store(MASTER)  # another process: unwraps the same key
    assert other.keys_by_id([sealed.kid])[sealed.kid].open(sealed.model_dump(), aad) == "Ada"
    assert store.destroy(["C1", "C9"]) == {"C1": 1, "C9": 0}
    assert other.keys_by_id([sealed.kid]) == {}
    assert other.holders() == {"C2"}
    again = store.keys_for(["C1"], create=True)["C1"]  # a customer who comes back
    assert again.kid != sealed.kid


def test_a_wrong_master_key_opens_nothing_and_writes_nothing(key_store: KeyStoreFactory) -> None:
    store = key_store(MASTER)
    store.keys_for(["C1"], create=True)
    wrong = key_store(bytes(32))
    with pytest.raises(MasterKeyError, match="does not open"):
        wrong.keys_for(["C2"], create=True)
    with pytest.raises(MasterKeyError):
        wrong.destroy(["C1"])
    assert store.holders() == {"C1"}


def test_a_destroyed_key_leaves_no_copy_in_the_sqlite_file_or_its_wal(tmp_path: Path) -> None:
    store = SQLiteKeyStore(tmp_path / "keys.db", master_of(MASTER))
    store.keys_for([f"C{i}" for i in range(50)], create=True)
    rows = {row.customer: row for row in store.export()}
    store.destroy(["C7"])
    files = [p for p in tmp_path.iterdir() if p.name.startswith("keys.db")]
    stored = b"".join(p.read_bytes() for p in files)
    assert rows["C7"].wrapped not in stored
    assert rows["C7"].kid.encode() not in stored
    assert rows["C8"].wrapped in stored  # the others stay
    assert (tmp_path / "keys.db").stat().st_mode & 0o777 == 0o600
    store.close()


def test_an_unusable_sqlite_key_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    store = SQLiteKeyStore(tmp_path / "file" / "keys.db", master_of(MASTER))
    with pytest.raises(KeyStoreUnavailable, match="key store"):
        store.keys_for(["C1"], create=True)


def test_stores_opened_together_on_a_new_location_all_open_it(
    key_store: KeyStoreFactory,
) -> None:
    """Many processes (threads here, each with its own connection) starting on a new key
    store at once: each makes the tables if they are missing, and none fails because
    another made them meanwhile."""
    stores = [key_store(MASTER) for _ in range(8)]
    assert failures(at_once([store.holders for store in stores])) == []
    stores[0].keys_for(["C1"], create=True)
    assert all(store.holders() == {"C1"} for store in stores)


def test_a_destroy_made_by_a_time_spares_keys_made_after_it(key_store: KeyStoreFactory) -> None:
    store = key_store(MASTER)
    old = store.keys_for(["C1", "C2"], create=True)
    cutoff = time.time_ns() // 1000
    time.sleep(0.002)
    store.destroy(["C2"])
    new = store.keys_for(["C2", "C3"], create=True)  # C2 came back after the cutoff
    assert store.destroy(["C1", "C2", "C3", "C4"], made_by=cutoff) == {
        "C1": 1,
        "C2": 0,
        "C3": 0,
        "C4": 0,
    }
    assert store.holders() == {"C2", "C3"}
    assert store.keys_for(["C2"], create=False)["C2"].kid == new["C2"].kid != old["C2"].kid
