"""Creating the view tables while another projector creates them (consumers/store/recorders.py,
``create_tables``): a lost race is tried again, anything else is raised."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, ProgrammingError

from consumers.store.recorders import create_tables


class Recorder:
    """Fails its first creations as ``failures`` say, then creates."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def create_table(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)


RACES = [
    ProgrammingError('type "notification_tracking" already exists'),
    ProgrammingError('relation "profiles" already exists'),
    IntegrityError("duplicate key value violates unique constraint"),
]


@pytest.mark.parametrize("race", RACES, ids=["type", "table", "migration row"])
def test_a_creation_that_lost_a_race_is_tried_again(race: BaseException) -> None:
    recorder = Recorder(race, race)
    create_tables(recorder)  # type: ignore[arg-type]
    assert recorder.calls == 3


def test_other_failures_are_raised_at_once() -> None:
    recorder: Any = Recorder(ProgrammingError('permission denied for schema "views"'))
    with pytest.raises(ProgrammingError, match="permission denied"):
        create_tables(recorder)
    assert recorder.calls == 1


def test_a_race_lost_every_time_is_raised_in_the_end() -> None:
    recorder: Any = Recorder(*[ProgrammingError('relation "x" already exists')] * 5)
    with pytest.raises(ProgrammingError, match="already exists"):
        create_tables(recorder, attempts=3)
    assert recorder.calls == 3
