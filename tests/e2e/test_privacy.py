"""Erasure by crypto-shredding, end to end (issue 10), on the embedded log and on Kafka.

A customer's personal data goes in through ``ledger import`` (with a rejected line of
theirs); the views are built and the log sealed; ``ledger erase`` then has to leave no
cleartext of theirs in any byte the ledger wrote -- log file and WAL, views and WAL, audit
store, key store, rejects files, every Kafka record -- while the seals still verify, every
other figure stays, and a rebuild gives the same views.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from application.wiring import open_store
from ledger.settings import Settings
from tests.e2e.conftest import Run, lines

ALICE = {"name": "Zeynep Kalaycıoğlu", "email": "zeynep.k@example.com", "phone": "+905551112233"}
ALICE_RECIPIENT = "zeynep.sms@example.org"
BOB = {"name": "Bob Marchetti", "email": "bob.m@example.net", "phone": "+447700900123"}
SECRETS = [*ALICE.values(), ALICE_RECIPIENT]
VERIFIER = Path(__file__).parents[1] / "fixtures" / "verify_seals.py"


def _event(kind: str, customer: str, when: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{kind}-{customer}-{uuid.uuid4().hex[:8]}",
        "source": "crm/test",
        "type": kind,
        "subject": customer,
        "time": when,
        "data": data,
    }


def history_file(folder: Path) -> Path:
    """Alice and Bob: details, consent with a recipient, purchases, a complaint; and one
    line of Alice's that the ledger rejects (its rejects file then holds her name)."""
    documents = []
    for customer, person in (("ALICE", ALICE), ("BOB", BOB)):
        documents += [
            _event(
                "customer.details",
                customer,
                "2025-01-02T10:00:00Z",
                {"personal": person, "country": "TR"},
            ),
            _event(
                "consent.given",
                customer,
                "2025-01-03T10:00:00Z",
                {
                    "channel": "email",
                    "evidence_source": "web",
                    "recipient": ALICE_RECIPIENT if customer == "ALICE" else person["email"],
                },
            ),
            _event(
                "touchpoint.purchase",
                customer,
                "2025-02-01T10:00:00Z",
                {
                    "channel": "web",
                    "order_id": "O-1",
                    "amount": "120.50",
                    "currency": "TRY",
                    "item_count": 2,
                },
            ),
            _event(
                "complaint.opened",
                customer,
                "2025-02-03T10:00:00Z",
                {"channel": "phone", "complaint_id": "K-1", "category": "delivery"},
            ),
        ]
    bad = _event(
        "customer.details",
        "ALICE",
        "2025-01-05T10:00:00Z",
        {"personal": {"name": ALICE["name"], "email": "not-an-email"}},
    )
    text = b"".join(orjson.dumps(d) + b"\n" for d in documents) + orjson.dumps(bad) + b"\n"
    path = folder / "history.jsonl"
    path.write_bytes(text)
    return path


def kafka_records(bootstrap: str, topic: str) -> list[bytes]:
    """Every record of ``topic``: key, value and headers, as raw bytes."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: list[bytes] = []
        while any(consumer.position(p) < ends[p] for p in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    found.append(record.key or b"")
                    found.append(record.value or b"")
                    found += [name.encode() + value for name, value in record.headers]
        return found
    finally:
        consumer.close()


def cleartext_copies(folder: Path, records: list[bytes]) -> list[str]:
    """Where any of Alice's personal values is stored in clear (file or Kafka record)."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name == "history.jsonl":
            continue  # the input the test wrote, not the ledger
        content = path.read_bytes()
        found += [f"{path.name}: {s}" for s in SECRETS if s.encode() in content]
    for index, record in enumerate(records):
        found += [f"kafka record {index}: {s}" for s in SECRETS if s.encode() in record]
    return found


@pytest.fixture(params=["sqlite", "kafka"])
def ledger(
    request: pytest.FixtureRequest, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Run, Callable[[], list[bytes]]]]:
    """``run`` on a fresh log of each kind with everything in ./ledger-data, and a reader
    of every Kafka record (none on the embedded log)."""
    if request.param == "sqlite":
        yield run, list
        return
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    topic = f"privacy-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("LEDGER_LOG", f"kafka://{bootstrap}/{topic}")
    monkeypatch.setenv("LEDGER_KAFKA_PARTITIONS", "3")

    def invoke(*args: str, input: bytes | str | None = None) -> Any:
        from click.testing import CliRunner

        from cli import main

        return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)

    yield invoke, lambda: kafka_records(bootstrap, topic)


def profile_of(run: Run, customer: str, *extra: str) -> dict[str, Any]:
    result = run("profile", customer, "--json", "--no-fresh", *extra)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = orjson.loads(result.stdout)
    document.pop("freshness", None)
    return document


def test_after_erasure_the_person_appears_nowhere_and_everything_else_stays(
    ledger: tuple[Run, Callable[[], list[bytes]]], tmp_path: Path
) -> None:
    run, records = ledger
    data = tmp_path / "ledger-data"
    imported = run("import", str(history_file(tmp_path)), "--json")
    assert imported.exit_code == 3, imported.output  # the one bad line
    # Her phone number is linked to her (issue 12): stored as its keyed hash, the number
    # sealed in the key store; shown in clear while her key exists.
    linked = run("link", "ALICE", "--phone", ALICE["phone"], "--evidence", "sms code")
    assert linked.exit_code == 0, linked.output
    assert run("project", "run").exit_code == 0
    graph = orjson.loads(run("identity", "ALICE", "--json").stdout)
    assert graph["identifiers"] == [f"phone:{ALICE['phone']}"]
    assert [link["identifier"] for link in graph["links"]] == [f"phone:{ALICE['phone']}"]
    by_number = orjson.loads(run("identity", f"phone:{ALICE['phone']}", "--json").stdout)
    assert by_number["person"] == "ALICE"
    before = profile_of(run, "ALICE")
    bob_before = profile_of(run, "BOB")
    assert before["details"]["name"]["value"] == ALICE["name"]  # opened for people
    # Stored: never in clear, in the log, the views or Kafka -- only the rejects file
    # (the input as given) holds her name before the erasure.
    before_copies = cleartext_copies(data, records())
    assert before_copies
    assert all(c.startswith("history.jsonl-") for c in before_copies), before_copies
    keygen = run("audit", "keygen", str(tmp_path / "seal.pem"))
    assert keygen.exit_code == 0
    sealed = run("audit", "seal", "--key", str(tmp_path / "seal.pem"))
    assert sealed.exit_code == 0, sealed.output

    erased = run(
        "erase", "ALICE", "--reason", "KVKK Art. 7 request", "--request-id", "REQ-1", "--json"
    )
    assert erased.exit_code == 0, erased.output
    outcome = orjson.loads(erased.stdout)
    assert outcome["keys_destroyed"] == 1
    assert outcome["rejects_redacted"] == 1
    assert outcome["identifiers_erased"] == 1  # her linked phone number went with her
    assert outcome["seconds"] < 1
    again = run("erase", "ALICE", "--reason", "KVKK Art. 7 request", "--json")
    assert orjson.loads(again.stdout)["already_erased"] is True  # idempotent
    assert run("project", "run").exit_code == 0

    # Nowhere in clear: log (and WAL), views (and WAL), audit store, key store, rejects,
    # every Kafka record.
    assert cleartext_copies(data, records()) == []
    # Read as erased everywhere; every other figure unchanged; Bob untouched.
    after = profile_of(run, "ALICE")
    for name in ("name", "email", "phone"):
        assert after["details"][name]["value"] == "[erased]"
    assert after["details"]["country"] == before["details"]["country"]
    assert {k: v for k, v in after.items() if k != "details"} == {
        k: v for k, v in before.items() if k != "details"
    }
    assert profile_of(run, "BOB") == bob_before
    as_of = profile_of(run, "ALICE", "--as-of", "2025-03-01")
    assert as_of["details"]["name"]["value"] == "[erased]"
    replayed = lines(run("replay", "--customer", "ALICE", "--json"))
    details = next(e for e in replayed if e["type"] == "customer.details")
    assert details["data"]["personal"] == dict.fromkeys(ALICE, "[erased]")
    consent = next(e for e in replayed if e["type"] == "consent.given")
    assert consent["data"]["recipient"] == "[erased]"
    bob = lines(run("replay", "--customer", "BOB", "--json"))
    assert next(e for e in bob if e["type"] == "customer.details")["data"]["personal"] == BOB
    register = lines(run("erasures", "--json"))
    assert [(e["customer"], e["request_id"], e["reason"]) for e in register] == [
        ("ALICE", "REQ-1", "KVKK Art. 7 request")
    ]
    # The graph still joins her number to her (by its hash), but the number is gone.
    graph = orjson.loads(run("identity", "ALICE", "--json").stdout)
    assert graph["identifiers"] == ["[erased]"]
    linked_events = [e for e in replayed if e["type"] == "identity.linked"]
    assert [e["data"]["identifier"] for e in linked_events] == ["[erased]"]
    # The view keeps not even the sealed values (purged when customer.erased was applied).
    with closing(open_store(Settings(data_dir=data))) as store:
        found = store.profile("ALICE")
        assert found is not None
        assert [found.state["details"][n][0] for n in ALICE] == ["[erased]"] * 3
    # A rebuild cannot bring anything back, and gives the same views.
    assert run("project", "rebuild").exit_code == 0
    assert profile_of(run, "ALICE") == after
    assert cleartext_copies(data, records()) == []
    # The seals made before the erasure still verify: the stored bytes never changed.
    verified = run("audit", "verify", "--public-key", str(tmp_path / "seal.pem.pub"))
    assert verified.exit_code == 0, verified.output


def test_seals_verify_after_erasure_independently_and_tampered_ciphertext_is_caught(
    run: Run, tmp_path: Path
) -> None:
    assert run("import", str(history_file(tmp_path))).exit_code == 3
    keygen = run("audit", "keygen", str(tmp_path / "seal.pem"))
    assert keygen.exit_code == 0
    public = keygen.stdout.split()[-1].rstrip(")")  # the raw key, hex
    assert run("audit", "seal", "--key", str(tmp_path / "seal.pem")).exit_code == 0
    assert run("erase", "ALICE", "--reason", "request").exit_code == 0
    assert run("audit", "seal", "--key", str(tmp_path / "seal.pem")).exit_code == 0
    assert run("audit", "export", "--out", str(tmp_path / "bundle")).exit_code == 0
    log = tmp_path / "ledger-data" / "ledger.db"

    def independent() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                str(VERIFIER),
                str(log),
                str(tmp_path / "bundle" / "seals.json"),
                public,
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    assert independent().returncode == 0, independent().stdout
    assert run("audit", "verify").exit_code == 0
    # One character of one ciphertext changed: both verifiers name it.
    with sqlite3.connect(log) as connection:
        position, state = connection.execute(
            "SELECT position, state FROM touchpoints WHERE topic = 'customer.details' "
            "AND subject = 'BOB'"
        ).fetchone()
        document = orjson.loads(state)
        sealed = document["data"]["personal"]["name"]
        sealed["c"] = ("A" if sealed["c"][5] != "A" else "B").join(
            (sealed["c"][:5], sealed["c"][6:])
        )
        connection.execute(
            "UPDATE touchpoints SET state = ? WHERE position = ?",
            (orjson.dumps(document), position),
        )
    assert independent().returncode == 1
    tampered = run("audit", "verify")
    assert tampered.exit_code == 4, tampered.output


def test_a_wrong_or_missing_master_key_is_a_clear_error_and_nothing_is_written(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "ledger-data"
    details = ("append", "--type", "details", "--customer", "C1")
    first = run(*details, "--set", "personal.name=Ada Lovelace")
    assert first.exit_code == 0, first.output
    assert (data / "master.key").stat().st_mode & 0o777 == 0o600
    assert (data / "keys.db").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("LEDGER_MASTER_KEY", "11" * 32)
    wrong = run(*details, "--set", "personal.name=Grace Hopper")
    assert wrong.exit_code == 1
    assert "master key from LEDGER_MASTER_KEY does not open the key store" in wrong.stderr
    assert "11" * 32 not in wrong.stderr
    monkeypatch.delenv("LEDGER_MASTER_KEY")
    (data / "master.key").rename(tmp_path / "elsewhere.key")
    missing = run(*details, "--set", "personal.name=Grace Hopper")
    assert missing.exit_code == 1
    assert "master key file" in missing.stderr
    assert "is missing" in missing.stderr
    assert not (data / "master.key").exists()  # never silently replaced by a new one
    (tmp_path / "elsewhere.key").rename(data / "master.key")
    assert len(lines(run("replay", "--json"))) == 1  # nothing written meanwhile
    assert b"Grace" not in (data / "ledger.db").read_bytes()


def test_without_a_key_store_personal_data_is_refused_and_the_rest_goes_on(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("LEDGER_KEYS", f"sqlite:///{tmp_path / 'a-file' / 'keys.db'}")
    refused = run(
        "append", "--type", "details", "--customer", "C1", "--set", "personal.name=Ada Lovelace"
    )
    assert refused.exit_code == 1
    assert "key store" in refused.stderr
    purchase = run(
        "append",
        "--type",
        "purchase",
        "--customer",
        "C1",
        "--set",
        "channel=web",
        "--set",
        "order_id=O1",
        "--set",
        "amount=1",
        "--set",
        "currency=TRY",
        "--set",
        "item_count=1",
    )
    assert purchase.exit_code == 0, purchase.output  # no personal data: no key needed
    stored = (tmp_path / "ledger-data" / "ledger.db").read_bytes()
    assert b"Ada Lovelace" not in stored
    assert len(lines(run("replay", "--json"))) == 1


def test_subject_access_writes_everything_decrypted(run: Run, tmp_path: Path) -> None:
    assert run("import", str(history_file(tmp_path))).exit_code == 3
    assert run("project", "run").exit_code == 0
    out = tmp_path / "alice.json"
    result = run("subject-access", "ALICE", "--out", str(out))
    assert result.exit_code == 0, result.output
    document = orjson.loads(out.read_bytes())
    assert len(document["events"]) == 4
    details = next(e for e in document["events"] if e["event"]["type"] == "customer.details")
    assert details["event"]["data"]["personal"] == ALICE
    assert document["profile"]["details"]["email"]["value"] == ALICE["email"]
    assert document["data_keys_held"] == 1


def test_doctor_and_copy_encrypt_an_old_plaintext_log(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_ENCRYPT", "false")  # a log written before this change
    assert run("import", str(history_file(tmp_path))).exit_code == 3
    monkeypatch.delenv("LEDGER_ENCRYPT")
    plain = tmp_path / "ledger-data" / "ledger.db"
    assert ALICE["name"].encode() in plain.read_bytes()
    checked = run("doctor", "--json")
    assert checked.exit_code == 3
    assert orjson.loads(checked.stdout)["cleartext_events"] == 4
    copy = tmp_path / "copy.db"
    copied = run("copy", "--to", f"sqlite:///{copy}", "--json")
    assert copied.exit_code == 0, copied.output
    assert orjson.loads(copied.stdout)["appended"] == 8
    assert not any(s.encode() in copy.read_bytes() for s in SECRETS)
    clean = run("--log", f"sqlite:///{copy}", "doctor", "--json")
    assert clean.exit_code == 0
    assert orjson.loads(clean.stdout)["cleartext_events"] == 0
    replayed = lines(run("--log", f"sqlite:///{copy}", "replay", "--customer", "ALICE"))
    assert next(e for e in replayed if e["type"] == "customer.details")["data"]["personal"] == (
        ALICE
    )


def test_keys_backup_holds_wrapped_keys_only(run: Run, tmp_path: Path) -> None:
    assert run("import", str(history_file(tmp_path))).exit_code == 3
    backup = tmp_path / "keys.json"
    result = run("keys", "backup", "--out", str(backup))
    assert result.exit_code == 0, result.output
    assert backup.stat().st_mode & 0o777 == 0o600
    document = orjson.loads(backup.read_bytes())
    assert {k["customer"] for k in document["keys"]} == {"ALICE", "BOB"}
    master = (tmp_path / "ledger-data" / "master.key").read_text().strip()
    assert master not in backup.read_text()
    # Restoring after an erasure does not bring the erased key back.
    assert run("erase", "ALICE", "--reason", "request").exit_code == 0
    restored = run("keys", "restore", str(backup))
    assert restored.exit_code == 0, restored.output
    assert "1 key(s) restored; 1 skipped" in restored.stdout
    replayed = lines(run("replay", "--customer", "ALICE"))
    assert (
        next(e for e in replayed if e["type"] == "customer.details")["data"]["personal"]["name"]
        == "[erased]"
    )


def test_a_phone_number_as_customer_id_is_stored_hashed_and_forgotten_on_erasure(
    run: Run, tmp_path: Path
) -> None:
    phone = "+905329876543"
    details = run("append", "--type", "details", "--customer", phone, "--set", "country=TR")
    assert details.exit_code == 0, details.output
    sms = run(
        "append", "--type", "sms", "--customer", phone, "--set", "direction=outbound",
        "--set", "purpose=marketing",
    )  # fmt: skip
    assert sms.exit_code == 0, sms.output
    assert run("project", "run").exit_code == 0
    data = tmp_path / "ledger-data"
    stored = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    assert phone[1:].encode() not in stored  # no file holds the number, not even the key store
    replayed = lines(run("replay", "--customer", phone, "--json"))
    assert [e["subject"] for e in replayed] == [phone, phone]  # given back as appended
    profile = profile_of(run, phone)
    assert profile["customer"] == phone
    assert profile["by_type"] == {"customer.details": 1, "touchpoint.sms": 1}
    assert run("erase", phone, "--reason", "request").exit_code == 0
    after = lines(run("replay", "--json"))
    hashed = {e["subject"] for e in after}
    assert len(hashed) == 1
    assert next(iter(hashed)).startswith("h:")  # what remains: the keyed hash
    assert profile_of(run, phone)["by_type"] == profile["by_type"]  # still found by number
    again = run("erase", phone, "--reason", "request", "--json")
    assert orjson.loads(again.stdout)["already_erased"] is True


def test_a_kafka_publisher_that_sends_personal_data_in_clear_is_reported(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str
) -> None:
    from kafka import KafkaProducer

    topic = f"clear-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("LEDGER_LOG", f"kafka://{kafka_bootstrap}/{topic}")
    monkeypatch.setenv("LEDGER_KAFKA_PARTITIONS", "2")
    assert run("import", str(history_file(tmp_path))).exit_code == 3  # the ledger encrypts
    foreign = _event("customer.details", "CAROL", "2025-03-01T10:00:00Z", {"personal": BOB})
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(
        topic,
        orjson.dumps(foreign),
        b"CAROL",
        headers=[("content-type", b"application/cloudevents+json")],
    ).get(timeout=30)
    producer.close()
    assert run("project", "run").exit_code == 0
    status = run("project", "status", "--json")
    reported = orjson.loads(status.stdout)["cleartext_personal_data"]
    assert reported["records"] == 1
    assert "in clear" in reported["explanation"]
    checked = run("doctor", "--json")
    assert checked.exit_code == 3
    assert orjson.loads(checked.stdout)["cleartext_events"] == 1


def test_a_linked_phone_number_is_a_hashed_key_everywhere_and_erased_with_its_person(
    run: Run, tmp_path: Path
) -> None:
    """Issue 12 under issue 10: a phone number linked to a customer and used as a subject
    (``phone:+90…``) is stored as one keyed hash, found by any spelling, and after the
    customer's erasure shows as [erased] while the counts stay."""
    number, digits = "phone:+905321114455", b"5321114455"
    assert (
        run("append", "--type", "visit", "--customer", "C7", "--set", "channel=web").exit_code == 0
    )
    linked = run("link", "C7", "--phone", "+90 532 111 44 55", "--evidence", "sms code")
    assert linked.exit_code == 0, linked.output
    sms = run(
        "append", "--type", "sms", "--customer", number, "--set", "direction=outbound",
        "--set", "purpose=marketing",
    )  # fmt: skip
    assert sms.exit_code == 0, sms.output
    assert run("project", "run").exit_code == 0
    data = tmp_path / "ledger-data"
    stored = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    assert digits not in stored  # not in the log, the views, the identity rows, the key store
    graph = orjson.loads(run("identity", "+905321114455", "--json").stdout)
    assert graph["person"] == "C7"  # a bare number and phone:… are one key
    assert graph["identifiers"] == [number]
    replayed = lines(run("replay", "--customer", "C7", "--json"))
    assert {e["type"] for e in replayed} == {
        "touchpoint.visit",
        "identity.linked",
        "touchpoint.sms",
    }
    link_event = next(e for e in replayed if e["type"] == "identity.linked")
    assert link_event["data"]["identifier"] == number  # opened for display
    assert next(e for e in replayed if e["type"] == "touchpoint.sms")["subject"] == number
    counts = {"touchpoint.visit": 1, "touchpoint.sms": 1}
    joined = profile_of(run, "C7")
    assert joined["by_type"] == counts  # the graph joins the number's SMS
    assert joined["members"] == ["C7", number]  # opened, never the hash
    stored_rows = lines(run("replay", "--json"))
    hashed = {e["data"]["identifier"] for e in stored_rows if e["type"] == "identity.linked"}
    assert hashed == {number}

    erased = run("erase", "C7", "--reason", "request", "--json")
    assert erased.exit_code == 0, erased.output
    assert orjson.loads(erased.stdout)["identifiers_erased"] == 1
    assert run("project", "run").exit_code == 0
    graph = orjson.loads(run("identity", "C7", "--json").stdout)
    assert graph["identifiers"] == ["[erased]"]
    after = lines(run("replay", "--customer", "C7", "--json"))
    assert next(e for e in after if e["type"] == "identity.linked")["data"]["identifier"] == (
        "[erased]"
    )
    sms_after = next(e for e in after if e["type"] == "touchpoint.sms")
    assert sms_after["subject"].startswith("h:")  # the keyed hash is all that remains
    joined = profile_of(run, "C7")
    assert joined["by_type"] == counts  # still joined, still counted
    assert joined["members"] == ["C7", "[erased]"]
    stored = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    assert digits not in stored


def _two_ids_of_one_person(run: Run, tmp_path: Path) -> Path:
    """ALICE and BOB imported; a second id of Alice's (the shop's ``S-ALICE``, her details
    given there too) merged into ALICE; a phone number linked to the shop id, and an SMS
    sent to that number."""
    assert run("import", str(history_file(tmp_path))).exit_code == 3
    shop = tmp_path / "shop.jsonl"
    shop.write_bytes(
        orjson.dumps(
            _event(
                "customer.details",
                "S-ALICE",
                "2025-01-05T10:00:00Z",
                {"personal": {"name": "Z. Kalaycioglu", "email": "zk.shop@example.com"}},
            )
        )
        + b"\n"
    )
    assert run("import", str(shop)).exit_code == 0
    merged = run("merge", "S-ALICE", "ALICE", "--into", "ALICE", "--reason", "same national id")
    assert merged.exit_code == 0, merged.output
    linked = run("link", "S-ALICE", "--phone", "+90 532 444 55 66", "--evidence", "sms code")
    assert linked.exit_code == 0, linked.output
    sms = run(
        "append", "--type", "sms", "--customer", "phone:+905324445566",
        "--set", "direction=outbound", "--set", "purpose=service",
    )  # fmt: skip
    assert sms.exit_code == 0, sms.output
    assert run("project", "run").exit_code == 0
    return tmp_path / "ledger-data"


def test_erasing_a_customer_erases_the_whole_person_and_only_them(run: Run, tmp_path: Path) -> None:
    """Issue 10 under issue 12: ``ledger erase ALICE`` also erases the shop id merged into
    her and the phone number linked to it; Bob, another person, keeps everything."""
    _two_ids_of_one_person(run, tmp_path)

    def shop_details() -> dict[str, str]:
        replayed = lines(run("replay", "--customer", "S-ALICE", "--json"))
        found = next(
            e for e in replayed if e["type"] == "customer.details" and e["subject"] == "S-ALICE"
        )
        personal: dict[str, str] = found["data"]["personal"]
        return personal

    assert shop_details()["name"] == "Z. Kalaycioglu"  # opened while the key exists
    assert orjson.loads(run("identity", "ALICE", "--json").stdout)["identifiers"] == [
        "phone:+905324445566"
    ]
    bob_before = profile_of(run, "BOB")
    erased = run("erase", "ALICE", "--reason", "KVKK Art. 7", "--json")
    assert erased.exit_code == 0, erased.output
    answer = orjson.loads(erased.stdout)
    assert answer["customer"] == "ALICE"
    assert [e["customer"] for e in answer["erased_with_it"]] == ["S-ALICE"]
    assert answer["erased_with_it"][0]["identifiers_erased"] == 1
    assert answer["erased_with_it"][0]["event_id"]  # its own customer.erased
    register = lines(run("erasures", "--json"))
    assert sorted(r["customer"] for r in register) == ["ALICE", "S-ALICE"]
    assert run("project", "run").exit_code == 0
    assert shop_details() == {"name": "[erased]", "email": "[erased]"}
    assert orjson.loads(run("identity", "ALICE", "--json").stdout)["identifiers"] == ["[erased]"]
    assert profile_of(run, "S-ALICE")["details"]["name"]["value"] == "[erased]"
    assert profile_of(run, "BOB") == bob_before  # another person: untouched
    again = run("erase", "S-ALICE", "--reason", "KVKK Art. 7", "--json")
    assert orjson.loads(again.stdout)["already_erased"] is True  # idempotent, by either id


def test_only_this_id_leaves_the_rest_of_the_person(run: Run, tmp_path: Path) -> None:
    _two_ids_of_one_person(run, tmp_path)
    erased = run("erase", "ALICE", "--reason", "KVKK Art. 7", "--only-this-id", "--json")
    assert erased.exit_code == 0, erased.output
    assert orjson.loads(erased.stdout)["erased_with_it"] == []
    out = tmp_path / "shop.json"
    assert run("subject-access", "S-ALICE", "--out", str(out)).exit_code == 0
    document = orjson.loads(out.read_bytes())
    names = {
        e["event"]["data"]["personal"]["name"]
        for e in document["events"]
        if e["event"]["type"] == "customer.details"
    }
    assert names == {"Z. Kalaycioglu", "[erased]"}  # hers from the shop kept, ALICE's gone


def test_subject_access_covers_every_id_of_the_person(run: Run, tmp_path: Path) -> None:
    _two_ids_of_one_person(run, tmp_path)
    out = tmp_path / "alice.json"
    result = run("subject-access", "ALICE", "--out", str(out))
    assert result.exit_code == 0, result.output
    document = orjson.loads(out.read_bytes())
    assert document["person"] == "ALICE"
    assert document["members"] == ["ALICE", "S-ALICE", "phone:+905324445566"]
    by_subject: dict[str, set[str]] = {}
    for e in document["events"]:
        by_subject.setdefault(e["event"]["subject"], set()).add(e["event"]["type"])
    assert "customer.details" in by_subject["S-ALICE"]
    assert by_subject["phone:+905324445566"] == {"touchpoint.sms"}
    assert len([e for e in document["events"] if e["event"]["subject"] == "ALICE"]) == 4
    assert set(document["profiles"]) == {"ALICE", "S-ALICE"}
    assert document["data_keys_held"] == 3  # ALICE, S-ALICE and the phone number


def test_a_persons_profile_opens_the_details_of_each_of_its_ids(run: Run, tmp_path: Path) -> None:
    """The person's profile takes the newest details of any of its ids; each was sealed for
    its own customer id and must be opened as such (not read as [unreadable])."""
    _two_ids_of_one_person(run, tmp_path)
    for asked in ("ALICE", "S-ALICE"):
        details = profile_of(run, asked)["details"]
        assert details["name"]["value"] == "Z. Kalaycioglu"  # the shop's, newer
        assert details["email"]["value"] == "zk.shop@example.com"
        assert details["phone"]["value"] == ALICE["phone"]  # ALICE's own, older


def _retention_policy(data: Path, after: str) -> None:
    default = (Path(__file__).parents[2] / "application" / "default_policy.toml").read_text()
    commented = '# [retention]\n# erase_personal_data_after = "3650d"'
    assert commented in default
    rule = f'[retention]\nerase_personal_data_after = "{after}"'
    (data / "policy.toml").write_text(default.replace(commented, rule))


def test_erase_due_erases_the_idle_and_spares_a_person_still_in_touch(
    run: Run, tmp_path: Path
) -> None:
    """``ledger erase --due``: Alice and Bob last heard of in 2025, a retention rule of
    300 days. Bob is due. Alice and her shop id are not, although their own last touchpoints
    are old: the SMS to the phone number linked to her shop id was sent today."""
    data = _two_ids_of_one_person(run, tmp_path)
    no_rule = run("erase", "--due", "--dry-run")
    assert no_rule.exit_code != 0
    assert "no [retention] erase_personal_data_after: nobody is due" in no_rule.output
    _retention_policy(data, "300d")
    listed = run("erase", "--due", "--dry-run", "--json")
    assert listed.exit_code == 0, listed.output
    assert orjson.loads(listed.stdout)["due"] == ["BOB"]
    assert lines(run("erasures", "--json")) == []  # a dry run erases nobody
    erased = run("erase", "--due", "--json")
    assert erased.exit_code == 0, erased.output
    assert orjson.loads(erased.stdout)["erased"] == 1
    register = lines(run("erasures", "--json"))
    assert [(r["customer"], r["retention_rule"]) for r in register] == [
        ("BOB", "erase_personal_data_after=300d")
    ]
    assert run("project", "run").exit_code == 0
    assert profile_of(run, "BOB")["details"]["name"]["value"] == "[erased]"
    assert profile_of(run, "ALICE")["details"]["name"]["value"] == "Z. Kalaycioglu"
    again = run("erase", "--due", "--json")
    assert orjson.loads(again.stdout)["erased"] == 0  # nothing of Bob's left to erase


def test_a_shared_landline_does_not_make_two_people_one_for_erasure(
    run: Run, tmp_path: Path
) -> None:
    """ALICE and BOB share a landline (each linked to it, never merged). The graph counts
    their contacts together, but erasing Alice must not erase Bob, nor the landline Bob
    still uses; her subject access must not hand over Bob's events."""
    assert run("import", str(history_file(tmp_path))).exit_code == 3
    for customer in ("ALICE", "BOB"):
        linked = run("link", customer, "--phone", "+90 212 555 44 33", "--evidence", "call")
        assert linked.exit_code == 0, linked.output
    assert run("project", "run").exit_code == 0
    out = tmp_path / "alice.json"
    assert run("subject-access", "ALICE", "--out", str(out)).exit_code == 0
    document = orjson.loads(out.read_bytes())
    assert document["members"] == ["ALICE"]
    assert {e["event"]["subject"] for e in document["events"]} == {"ALICE"}
    erased = run("erase", "ALICE", "--reason", "KVKK Art. 7", "--json")
    assert erased.exit_code == 0, erased.output
    answer = orjson.loads(erased.stdout)
    assert answer["erased_with_it"] == []
    assert answer["identifiers_erased"] == 0  # Bob still holds the landline
    assert [r["customer"] for r in lines(run("erasures", "--json"))] == ["ALICE"]
    assert run("project", "run").exit_code == 0
    bobs = lines(run("replay", "--customer", "BOB", "--json"))
    details = next(e for e in bobs if e["type"] == "customer.details" and e["subject"] == "BOB")
    assert details["data"]["personal"] == BOB  # his own data: not erased
    bob = orjson.loads(run("identity", "BOB", "--json").stdout)
    assert "phone:+902125554433" in bob["identifiers"]  # still readable: not erased
