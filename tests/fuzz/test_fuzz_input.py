"""The standing fault suite: hostile input to ``import``, ``append`` and ``policy check``.

Whatever comes in, either it is accepted, and then no command breaks on it afterwards, or
it is refused with every problem named (``field: problem``), and never with a traceback.
The CI profile is seeded and small; ``HYPOTHESIS_PROFILE=long`` runs a hundred times more
(see tests/fuzz/profiles.py).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import event, given
from hypothesis import strategies as st

from application.policy_files import DEFAULT_POLICY
from ledger.codec import event_from_json, event_from_stored, event_to_json
from ledger.errors import InvalidEvent
from ledger.events import NOT_TOUCHPOINTS, Touchpoint
from projections import frequency, profile
from projections.fact import fact_of
from tests.fuzz.cli_runner import Ledger
from tests.fuzz.hostile import (
    BAD_TIMES,
    EDGE_TIMES,
    HOSTILE_LINES,
    NUMBERS,
    STRINGS,
    dumps,
    edge_events,
)
from tests.fuzz.profiles import fuzz

REASON = re.compile(r"^[A-Za-z0-9_.()]+: \S")
EDGE_AT = ["1900-01-01T00:00:00Z", "2999-12-31T23:59:59Z"]


def accepted(line: bytes) -> Touchpoint | None:
    """The event of ``line`` if the contract accepts it; a refusal must name its problems."""
    try:
        return event_from_json(line.strip().removeprefix(b"\xef\xbb\xbf"))
    except InvalidEvent as exc:
        reasons = exc.reasons
    assert reasons, "a refusal without a reason"
    for reason in reasons:
        assert REASON.match(reason), f"reason without a field: {reason!r}"
    return None


@fuzz(600)
@given(HOSTILE_LINES)
def test_any_line_is_an_event_or_named_problems(line: bytes) -> None:
    event = accepted(line)
    if event is None:
        return
    # One meaning: what the ledger writes, it reads back as the same event, by both doors.
    written = event_to_json(event)
    assert event_from_json(written) == event
    assert event_from_stored(written) == event
    # And the pure read models can hold it.
    if event.type not in NOT_TOUCHPOINTS:
        profile.replay(event.subject, [fact_of(event)]).to_dict()
    frequency.replay([fact_of(event)])


def every_command(ledger: Ledger, customers: set[str], *, empty: bool) -> None:
    """Every command that reads what was accepted: none may fail because of it."""
    ledger.run("project", "run", "--workers", "1")
    assert orjson.loads(ledger.run("project", "status", "--json").stdout)["last_error"] is None
    assert orjson.loads(ledger.run("project", "errors", "--json").stdout or b"[]") == []
    ledger.run("replay", "--json")
    ledger.run("replay", "--since", EDGE_AT[0], "--until", EDGE_AT[1])
    for at in EDGE_AT:
        ledger.run("customers", "--at", at)
        ledger.run("contacts", "top", "--at", at)
        ledger.run("pressure", "--at", at, "--json")
    ledger.run("violations", "--json")
    for customer in sorted(customers):
        ledger.run("profile", customer, "--json")
        ledger.run("history", customer)
        for at in EDGE_AT:
            ledger.run("profile", customer, "--as-of", at, allowed=(0, 1))  # 1: nothing yet
            ledger.run("contacts", customer, "--at", at)
            ask = ("may-contact", customer, "--channel", "sms", "--purpose", "marketing")
            ledger.run(*ask, "--at", at, allowed=(0, 5))
    ledger.run("audit", "seal")
    ledger.run("audit", "verify", allowed=(0, 1) if empty else (0,))  # 1: nothing sealed
    ledger.run("project", "rebuild", "--workers", "1")


@fuzz(40)
@given(
    st.lists(
        edge_events().map(lambda document: dumps(document).encode()) | HOSTILE_LINES,
        min_size=1,
        max_size=30,
    ),
    st.booleans(),
)
def test_imported_events_never_break_a_command(lines: list[bytes], bom: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(Path(folder) / "data")
        source = Path(folder) / "input.jsonl"
        source.write_bytes((b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines) + b"\n")
        result = ledger.run("import", str(source), "--json", allowed=(0, 3))
        summary = orjson.loads(result.stdout)
        if summary["rejected"]:
            rejects = Path(summary["rejects_file"]).read_bytes().splitlines()
            assert len(rejects) == summary["rejected"]
            for record in map(orjson.loads, rejects):
                assert record["reasons"], record
                assert all(REASON.match(reason) for reason in record["reasons"]), record
        assert summary["read"] == summary["accepted"] + summary["duplicates"] + summary["rejected"]
        events = [e for e in map(accepted, b"\n".join(lines).splitlines()) if e is not None]
        event(f"accepted events: {'none' if not events else 'some'}")
        customers = {e.subject for e in events if e.type not in NOT_TOUCHPOINTS}
        every_command(ledger, customers, empty=not summary["accepted"])


@st.composite
def append_options(draw: st.DrawFn) -> list[str]:
    """``append`` options from a person typing: a type, a customer, a time, fields."""
    args = ["--type", draw(st.sampled_from(["sms", "purchase", "details", "fax", ""]))]
    args += ["--customer", draw(st.sampled_from(["C1", "C 1", ""]))]
    args += ["--time", draw(EDGE_TIMES | BAD_TIMES | STRINGS)]
    keys = st.sampled_from(
        [
            "direction",
            "purpose",
            "channel",
            "amount",
            "currency",
            "order_id",
            "item_count",
            "time_zone",
            "compensation",
            "compensation.amount",
            "a..b",
            "",
        ]
    )
    values = NUMBERS.map(lambda v: v if isinstance(v, str) else json.dumps(v)) | STRINGS
    for key, value in draw(st.lists(st.tuples(keys, values), max_size=6)):
        args += ["--set", f"{key}={value}"]
    return args


@fuzz(50)
@given(
    st.lists(
        HOSTILE_LINES.map(lambda line: ("doc", line)) | append_options().map(lambda o: ("opt", o)),
        min_size=1,
        max_size=6,
    )
)
def test_appended_events_never_break_a_command(requests: list[tuple[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(Path(folder) / "data")
        customers: set[str] = set()
        empty = True
        for kind, value in requests:
            if kind == "doc":
                result = ledger.run("append", "-", "--json", stdin=value, allowed=(0, 1, 2))
            else:
                result = ledger.run("append", *value, "--json", allowed=(0, 1, 2))
            if result.exit_code == 0:
                appended = orjson.loads(result.stdout)
                assert appended["status"] in {"appended", "duplicate"}
                empty = False
                replayed = ledger.run("replay", "--json").stdout.splitlines()
                events = [orjson.loads(line) for line in replayed]
                customers |= {e["subject"] for e in events if e["type"] not in NOT_TOUCHPOINTS}
        event(f"appended: {'none' if empty else 'some'}")
        if not empty:
            every_command(ledger, customers, empty=empty)


EXTREME_BUT_VALID = {
    "max": ["0", "1000000"],
    "per": ['"1m"', '"36600d"', '"5228w"', '"calendar-month"', '"calendar-week"'],
    "cool_down": ['"1m"', '"36600d"'],
    "time_zone": ['"Pacific/Kiritimati"', '"Etc/GMT+12"', '"Pacific/Chatham"'],
    "start": ['"00:00"', '"23:59:59"'],
    "end": ['"00:00:01"', '"23:59"'],
    "version": ['"x"', '"' + "v" * 300 + '"'],
    "channel": ['"*"', '"email"', '"post"'],
    "purpose": ['"service"', '"transactional"'],
    "required_for": ["[]", '["marketing", "service", "transactional"]'],
    "days": ["[]", '["monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]'],
    "channels": ['["*"]', '["phone", "sms", "email", "chat", "store", "web", "social", "post"]'],
    "purposes": ['["marketing", "service"]'],
    "no_marketing_while_open": ["false"],
    "effective_from": ["1900-01-01T00:00:00Z", "2999-12-31T23:59:59.999999+14:00"],
}
EXTRA_LINES = [
    "effective_from = 1900-01-01T00:00:00Z",
    "effective_from = 2999-12-31T23:59:59.999999+14:00",
    "effective_from = 1900-01-01",
]


@st.composite
def hostile_policies(draw: st.DrawFn) -> bytes:
    """The built-in policy with one value changed (to an extreme valid one, or a hostile
    one), or random text, or random bytes."""
    lines = DEFAULT_POLICY.read_text().splitlines()
    if draw(st.booleans()):
        lines.insert(1, draw(st.sampled_from(EXTRA_LINES)))
    settings = [i for i, line in enumerate(lines) if "=" in line and not line.startswith("#")]
    index = draw(st.sampled_from(settings))
    key = lines[index].split("=", 1)[0].strip()
    hostile = (
        NUMBERS.map(json.dumps)
        | st.sampled_from(
            [
                '"99999999999999999999d"',
                '"0m"',
                "1900-01-01T00:00:00Z",
                "0001-01-01",
                "true",
                "[" * 2000,
                "9" * 5000,
                '"Mars/Olympus"',
                '"calendar-year"',
                "{}",
                '"7d"',
            ]
        )
        | STRINGS.map(json.dumps)
    )
    valid = st.sampled_from(EXTREME_BUT_VALID.get(key, ['"x"']))
    lines[index] = f"{key} = {draw(valid | valid | hostile)}"
    text = "\n".join(lines).encode("utf-8", "surrogatepass")
    return draw(
        st.just(text)
        | st.just(text)  # twice as likely: the interesting ones are nearly valid
        | st.binary(max_size=300)
        | STRINGS.map(lambda s: s.encode("utf-8", "surrogatepass"))
    )


@fuzz(100)
@given(hostile_policies())
def test_policy_check_names_every_problem_and_an_accepted_policy_works(text: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(Path(folder) / "data")
        policy = Path(folder) / "policy.toml"
        policy.write_bytes(text)
        result = ledger.run("policy", "check", str(policy), allowed=(0, 1))
        event(f"policy: {'accepted' if result.exit_code == 0 else 'refused'}")
        if result.exit_code != 0:
            return
        ledger.run(
            "append",
            "--type",
            "sms",
            "--customer",
            "C1",
            "--set",
            "direction=outbound",
            "--set",
            "purpose=marketing",
            "--time",
            "2999-12-31T23:59:59Z",
        )
        ledger.run("project", "run", "--workers", "1")
        for at in EDGE_AT:
            ask = ("may-contact", "C1", "--channel", "sms", "--purpose", "marketing")
            # 1: no version in force yet (an effective_from after `at`), said in one line.
            ledger.run(*ask, "--at", at, "--policy", str(policy), allowed=(0, 1, 5))
            ledger.run("pressure", "--at", at, "--policy", str(policy), allowed=(0, 1))
        ledger.run("violations", "--policy", str(policy), allowed=(0, 1))
