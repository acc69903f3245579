"""Every ``ledger`` command with broken inputs: a one-line error and a non-zero exit code,
never a traceback.

The commands are discovered from the click group, so a new command is covered the day it
is added; its options get broken values chosen by their type and name (paths that cannot
be read or written, garbage and extreme times, out-of-range numbers, unknown choices).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from application.policy_files import DEFAULT_POLICY
from cli import main

TIME_NAMES = {"at", "as_of", "recorded_by", "since", "until", "start", "when"}
BROKEN_TIMES = [
    "garbage",
    "2025-02-30",
    "2025-01-01T10:00",  # no zone
    "9999-12-31T23:59:59-12:00",  # valid RFC 3339, its UTC instant past year 9999
    "0001-01-01T00:00:00+14:00",
    "١٩٩٩-01-01",  # Arabic-Indic digits
]
BROKEN_WINDOWS = ["99999999999999999999d", "0d", "7x", "٧d"]
BROKEN_DOCUMENTS = ["@/nonexistent/event.json", "[", '{"id": "a", "id": "b"}', "@{dir}"]
BROKEN_FIELDS = ["novalue", "a..b=1", "=1"]
LOG_URLS = ["bogus://x", "sqlite:///{file}/ledger.db", "kafka://", "kafka://h:1/bad topic"]

ERROR_EXITS = {1, 2, 70}
"""Exit codes of errors; 3 (some input rejected) and 5 (contact denied) are outcomes."""

# A required argument's plausible value, so that the broken one is the only problem.
PLAUSIBLE = {"customer": "C1"}
BASE_ARGS = {
    ("append",): [
        "--type",
        "sms",
        "--customer",
        "C1",
        "--set",
        "direction=outbound",
        "--time",
        "2025-01-01T10:00:00Z",
    ],
    ("may-contact",): ["C1", "--channel", "sms", "--purpose", "marketing"],
}


@dataclass(frozen=True)
class Case:
    path: tuple[str, ...]
    args: tuple[str, ...]
    must_fail: bool
    """False for free-text values that a command may legitimately accept."""

    def __str__(self) -> str:
        return " ".join((*self.path, *self.args))[:120]


@dataclass(frozen=True)
class Places:
    root: Path
    data_dir: Path
    a_file: Path
    a_dir: Path
    events: Path
    policy: Path

    def fill(self, value: str) -> str:
        return value.replace("{file}", str(self.a_file)).replace("{dir}", str(self.a_dir))


def leaf_commands(
    group: click.Group = main, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    names = list(group.list_commands(ctx))
    if path == ("contacts",):
        names.append("C1")  # `contacts CUSTOMER` is resolved dynamically
    for name in names:
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*path, name))
        else:
            yield (*path, name), command


def required_args(
    path: tuple[str, ...], command: click.Command, places: Places, skip: str
) -> list[str]:
    if path in BASE_ARGS:
        return list(BASE_ARGS[path])
    args: list[str] = []
    for param in command.params:
        if param.name == skip or not param.required:
            continue
        if isinstance(param, click.Argument):
            args.append(plausible(path, param, places))
        else:
            args += [param.opts[0], plausible(path, param, places)]
    return args


def plausible(path: tuple[str, ...], param: click.Parameter, places: Places) -> str:
    if param.name in PLAUSIBLE:
        return PLAUSIBLE[param.name]
    if path == ("import",):
        return str(places.events)
    if path == ("policy", "check"):
        return str(places.policy)
    return str(places.root / f"new-{param.name}")  # a path to write


def broken_values(param: click.Parameter, places: Places) -> Iterator[tuple[str, bool]]:
    """``(value, must fail)`` pairs for one parameter."""
    kind = param.type
    name = param.name or ""
    if isinstance(kind, click.Path):
        under_a_file = str(places.a_file / "x")
        yield under_a_file, True
        if kind.file_okay and not kind.dir_okay:
            yield str(places.a_dir), True
        elif kind.dir_okay and not kind.file_okay:
            yield str(places.a_file), True
        return
    if isinstance(kind, click.File):
        yield "/nonexistent/requests.csv", True
        yield str(places.a_dir), True
        return
    if isinstance(kind, click.IntRange):
        if kind.min is not None:
            yield str(kind.min - 1), True
        if kind.max is not None:
            yield str(kind.max + 1), True
        yield "1.5", True
        return
    if isinstance(kind, click.types.IntParamType):
        yield "x", True
        yield "٣", False  # click reads other scripts' digits as int() does
        return
    if isinstance(kind, click.Choice):
        yield "bogus", True
        return
    if name in TIME_NAMES:
        for value in BROKEN_TIMES:
            yield value, True
        return
    if name == "window":
        for value in BROKEN_WINDOWS:
            yield value, True
        return
    if name == "document":
        for value in BROKEN_DOCUMENTS:
            yield places.fill(value), True
        return
    if name == "fields":
        for value in BROKEN_FIELDS:
            yield value, True
        return
    if name == "from_position":
        yield "x:y", True
        yield "1:99999999999999999999999", False
        return
    yield "", False
    yield "x" * 5000, False


def cases(places: Places) -> Iterator[Case]:
    for path, command in leaf_commands():
        for param in command.params:
            if getattr(param, "is_flag", False) or param.name in {"help", "follow"}:
                continue
            for value, must_fail in broken_values(param, places):
                args = required_args(path, command, places, skip=param.name or "")
                if isinstance(param, click.Argument):
                    # An argument's position: after the command, before the options.
                    args = [value, *args] if path not in BASE_ARGS else [value]
                else:
                    args += [param.opts[0], value]
                yield Case(path, tuple(args), must_fail)
        for url in LOG_URLS:
            base = required_args(path, command, places, skip="")
            yield Case(("--log", places.fill(url), *path), tuple(base), must_fail=False)
        base = required_args(path, command, places, skip="")
        yield Case(("--data-dir", str(places.a_file / "x"), *path), tuple(base), must_fail=False)


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Places:
    root = tmp_path_factory.mktemp("broken")
    a_file = root / "a-file.txt"
    a_file.write_text("not a folder\n")
    a_dir = root / "a-dir"
    a_dir.mkdir()
    events = root / "events.jsonl"
    events.write_text(
        '{"id": "e1", "source": "t", "type": "touchpoint.sms", "subject": "C1", '
        '"time": "2025-01-01T10:00:00Z", "data": {"direction": "outbound"}}\n'
    )
    policy = root / "policy.toml"
    shutil.copy(DEFAULT_POLICY, policy)
    data_dir = root / "data"
    places = Places(root, data_dir, a_file, a_dir, events, policy)
    # A ledger with an event and up-to-date views, so commands get past "nothing here".
    for args in (["import", str(events)], ["project", "run", "--workers", "1"]):
        assert invoke(places, args).exit_code == 0
    return places


def invoke(places: Places, args: list[str]) -> Result:
    env = {"LEDGER_DATA_DIR": str(places.data_dir), "LEDGER_LOG": None, "LEDGER_DEBUG": None}
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_every_command_is_covered(places: Places) -> None:
    covered = {case.path[-1] for case in cases(places) if not case.path[0].startswith("--")}
    names = {path[-1] for path, _ in leaf_commands()}
    # No parameters to break (reset has only flags; without --yes it refuses, see test_cli;
    # api-keys list has only --json).
    assert covered == names - {
        "errors",
        "retry",
        "status",
        "show",
        "reset",
        "doctor",
        "list",
        "suspicious",
    }
    assert len(list(cases(places))) > 150


def test_every_command_with_broken_inputs_fails_in_one_line(places: Places) -> None:
    """One test over all cases (each is a fast in-process call); the failure message lists
    every case that broke the rule, not only the first."""
    broken: list[str] = []
    for case in cases(places):
        result = invoke(places, [*case.path, *case.args])
        output = result.stdout + result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        if "Traceback" in output or "internal error" in output:
            broken.append(f"{case}: traceback or internal error: {output[-300:]!r}")
        elif case.must_fail and result.exit_code == 0:
            broken.append(f"{case}: exit code 0 for a broken input")
        elif result.exit_code in ERROR_EXITS and len(errors) != 1:
            broken.append(f"{case}: not one error line: {result.stderr[-300:]!r}")
    assert not broken, "\n".join(broken)
