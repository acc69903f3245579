"""Import: every line accepted or rejected with reasons; bad lines never hold back good ones."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from application.service import import_file
from ledger.errors import ConfigurationError
from ledger.importer import RejectsFile, candidates, import_stream
from tests.fakes import InMemoryLog

GOOD = {
    "source": "shop/web",
    "type": "touchpoint.purchase",
    "subject": "C1",
    "time": "2025-01-01T10:00:00Z",
    "data": {
        "channel": "web",
        "order_id": "O1",
        "amount": "5.00",
        "currency": "GBP",
        "item_count": 1,
    },
}


def line(event_id: str, **changes: Any) -> bytes:
    return orjson.dumps({**GOOD, "id": event_id, **changes}) + b"\n"


class MemoryRejects(RejectsFile):
    def __init__(self) -> None:
        super().__init__(Path("unused"))
        self.items: list[Any] = []

    def write(self, rejection: Any) -> None:
        self.items.append(rejection)

    @property
    def used(self) -> bool:
        return bool(self.items)


def run(data: bytes, fmt: str = "jsonl", log: InMemoryLog | None = None, batch: int = 2) -> Any:
    log = log or InMemoryLog()
    rejects = MemoryRejects()
    summary = import_stream(
        log,
        candidates(io.BytesIO(data), fmt),
        rejects,  # type: ignore[arg-type]
        batch_size=batch,
    )
    return log, rejects, summary


def test_bad_lines_are_rejected_with_line_numbers_and_neighbours_land() -> None:
    data = (
        line("a")
        + b"{not json}\n"
        + line("b", time="2025-01-01T10:00:00")
        + b"\n"
        + line("c")
        + line("a")
        + line("d", subject="")
    )
    log, rejects, summary = run(data)
    assert [r.event.id for r in log.records] == ["a", "c"]
    assert [(r.line, r.reasons[0].split(":")[0]) for r in rejects.items] == [
        (2, "(event)"),
        (3, "time"),
        (4, "(line)"),
        (7, "subject"),
    ]
    assert rejects.items[1].text.startswith('{"source"')
    assert (summary.read, summary.accepted, summary.duplicates, summary.rejected) == (7, 2, 1, 4)


def test_batches_are_bounded_and_in_order() -> None:
    data = b"".join(line(f"e{i}") for i in range(7))
    log, _, summary = run(data, batch=3)
    assert log.batches == [3, 3, 1]
    assert [r.event.id for r in log.records] == [f"e{i}" for i in range(7)]
    assert str(summary.first_position) == "0:1"
    assert str(summary.last_position) == "0:7"


def test_importing_twice_appends_nothing_new() -> None:
    data = b"".join(line(f"e{i}") for i in range(5))
    log, _, _ = run(data)
    _, _, again = run(data, log=log)
    assert (again.accepted, again.duplicates) == (0, 5)
    assert len(log.records) == 5


def test_a_failing_log_stops_the_import_and_says_so() -> None:
    data = b"".join(line(f"e{i}") for i in range(10))
    log, _, summary = run(data, log=InMemoryLog(fail_after=2), batch=2)
    assert summary.failed == "the fake log is down"
    assert summary.accepted == 4
    assert len(log.records) == 4


def test_csv_columns_nest_and_empty_cells_are_absent() -> None:
    data = (
        b"id,source,type,subject,time,data.channel,data.complaint_id,data.resolution,"
        b"data.compensation.amount,data.compensation.currency,data.note\n"
        b"r1,crm,complaint.resolved,C1,2025-01-01T10:00:00Z,phone,K1,compensated,10.00,GBP,\n"
        b'r2,crm,complaint.resolved,C1,2025-01-01T10:00:00Z,phone,K2,fixed,,,"a, b"\n'
        b"r3,crm,complaint.resolved,C1,2025-01-01T10:00:00Z,phone,K3,fixed,5,,\n"
        b"r4,crm,complaint.resolved,C1\n"
    )
    log, rejects, _ = run(data, fmt="csv")
    first, second = (r.event for r in log.records)
    assert str(first.data.compensation.amount) == "10.00"  # type: ignore[union-attr]
    assert second.data.compensation is None
    assert second.data.note == "a, b"
    assert [(r.line, r.reasons) for r in rejects.items] == [
        (4, ["data.compensation.currency: required"]),
        (5, ["(line): 4 cells for 11 columns"]),
    ]


def test_csv_with_a_byte_order_mark_and_crlf() -> None:
    data = (
        "\ufeffid,source,type,subject,time,data.direction\r\n"
        "m1,desk,touchpoint.email,C1,2025-01-01T10:00:00+01:00,inbound\r\n"
    ).encode()
    log, rejects, _ = run(data, fmt="csv")
    assert not rejects.items
    assert log.records[0].event.id == "m1"


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_undecodable_bytes_are_rejected_not_fatal(fmt: str) -> None:
    header = b"id,source,type,subject,time,data.direction\n" if fmt == "csv" else b""
    good = (
        b"m1,d,touchpoint.email,C1,2025-01-01T10:00:00Z,inbound\n" if fmt == "csv" else line("m1")
    )
    log, rejects, _ = run(header + b"\xff\xfe broken \x00\n" + good, fmt=fmt)
    assert [r.event.id for r in log.records] == ["m1"]
    assert len(rejects.items) == 1


class BrokenLog(InMemoryLog):
    def write(self, events: Any) -> Any:
        raise ZeroDivisionError("a bug in an adapter")


@pytest.mark.parametrize("overlapped", [False, True], ids=["inline", "writer-thread"])
def test_a_bug_in_the_writer_surfaces_instead_of_hanging(overlapped: bool) -> None:
    log = BrokenLog()
    log.overlapped_writes = overlapped
    data = b"".join(line(f"e{i}") for i in range(10))
    with pytest.raises(ZeroDivisionError, match="a bug in an adapter"):
        run(data, log=log, batch=2)


@pytest.mark.parametrize("overlapped", [False, True], ids=["inline", "writer-thread"])
def test_both_write_paths_give_the_same_result(overlapped: bool) -> None:
    log = InMemoryLog()
    log.overlapped_writes = overlapped
    data = b"".join(line(f"e{i % 7}") for i in range(20)) + b"oops\n"
    _, _, summary = run(data, log=log, batch=3)
    assert (summary.accepted, summary.duplicates, summary.rejected) == (7, 13, 1)
    assert [r.event.id for r in log.records] == [f"e{i}" for i in range(7)]


def test_a_csv_column_named_twice_rejects_the_header_and_every_row() -> None:
    data = (
        b"id,source,type,subject,time,data.direction,subject\n"
        b"m1,desk,touchpoint.email,C1,2025-01-01T10:00:00Z,inbound,C2\n"
        b"m2,desk,touchpoint.email,C1,2025-01-01T10:00:00Z,inbound,C3\n"
    )
    log, rejects, summary = run(data, fmt="csv")
    assert log.records == []
    assert [(r.line, r.reasons) for r in rejects.items] == [
        (1, ["(header): column 'subject' appears twice (columns 4 and 7)"]),
        (
            2,
            [
                "(line): not read, because the header is unusable: column 'subject' appears twice "
                "(columns 4 and 7)"
            ],
        ),
        (
            3,
            [
                "(line): not read, because the header is unusable: column 'subject' appears twice "
                "(columns 4 and 7)"
            ],
        ),
    ]
    assert rejects.items[1].text.startswith("m1,")
    assert (summary.read, summary.rejected) == (3, 3)


def test_a_byte_order_mark_is_accepted_in_json_lines_as_in_csv() -> None:
    log, rejects, _ = run(b"\xef\xbb\xbf" + line("m1") + line("m2"))
    assert not rejects.items
    assert [r.event.id for r in log.records] == ["m1", "m2"]


def test_csv_numbers_and_flags_are_read_strictly() -> None:
    header = (
        b"id,source,type,subject,time,data.channel,data.order_id,data.amount,data.currency,"
        b"data.item_count\n"
    )
    data = header + (
        b"p1,shop,touchpoint.purchase,C1,2025-01-01T10:00:00Z,web,O1,19.90,GBP,2\n"
        b"p2,shop,touchpoint.purchase,C1,2025-01-01T10:00:00Z,web,O2,1E+2,GBP,1_000\n"
        b"p3,shop,touchpoint.purchase,C1,2025-01-01T10:00:00Z,web,O3,-0,GBP,true\n"
    )
    log, rejects, _ = run(data, fmt="csv")
    assert [str(r.event.data.amount) for r in log.records] == ["19.90"]
    assert [(r.line, r.reasons) for r in rejects.items] == [
        (
            3,
            [
                "data.amount: '1E+2' is not a plain decimal number (e.g. 19.90; no exponent, "
                "no separators)",
                "data.item_count: '1_000' is not a whole number in plain digits (e.g. 3)",
            ],
        ),
        (
            4,
            [
                "data.amount: '-0' is a negative zero; write 0",
                "data.item_count: 'true' is not a whole number in plain digits (e.g. 3)",
            ],
        ),
    ]


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_the_rejects_file_may_not_be_the_input(tmp_path: Path, link: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(line("m1") + b"not json\n")
    rejects = tmp_path / "rejects.jsonl"
    if link == "same":
        rejects = source
    elif link == "symlink":
        rejects.symlink_to(source)
    else:
        rejects.hardlink_to(source)
    log = InMemoryLog()
    with source.open("rb") as stream, pytest.raises(ConfigurationError, match="input file itself"):
        import_file(log, stream, "jsonl", rejects, batch_size=10)
    assert log.records == []
    assert source.read_bytes() == line("m1") + b"not json\n"
