"""Redacting rejects files (``ledger erase``) while an import writes one, and while another
erasure redacts the same files: no rejection is lost and every erased customer's lines are
redacted."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import orjson

from application.privacy import redact_rejects
from ledger.importer import Rejection, RejectsFile
from ledger.payloads import ERASED
from tests.conftest import at_once, failures


def rejection(number: int, customer: str) -> Rejection:
    document = {"id": f"e{number}", "subject": customer, "type": "purchase"}
    return Rejection(number, ["data: required"], orjson.dumps(document).decode())


def records(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_rejections_written_after_a_redaction_go_into_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "rejects" / "import.jsonl"
    rejects = RejectsFile(path)
    rejects.write(rejection(1, "C1"))
    rejects.write(rejection(2, "C2"))
    assert redact_rejects(path.parent, {"C1"}, set()) == 1  # renames a new file over it
    rejects.write(rejection(3, "C2"))
    rejects.write(rejection(4, "C1"))  # the import goes on: C1 rejected again, after
    rejects.close()
    found = records(path)
    assert [r["line"] for r in found] == [1, 2, 3, 4]
    assert found[0]["input"] == ERASED
    assert '"C2"' in str(found[1]["input"])
    assert [p.name for p in path.parent.iterdir()] == ["import.jsonl"]  # no temporary left


def test_two_erasures_redacting_together_both_hold(tmp_path: Path) -> None:
    for round_ in range(10):
        folder = tmp_path / f"{round_}"
        rejects = RejectsFile(folder / "import.jsonl")
        for number in range(1, 3001):
            rejects.write(rejection(number, f"C{number % 3}"))
        rejects.close()
        redactions = [partial(redact_rejects, folder, {c}, set()) for c in ("C1", "C2")]
        assert failures(at_once(redactions)) == []
        found = records(folder / "import.jsonl")
        assert [r["line"] for r in found] == list(range(1, 3001))
        erased = {r["line"] for r in found if r["input"] == ERASED}
        assert erased == {n for n in range(1, 3001) if n % 3 in (1, 2)}, round_
