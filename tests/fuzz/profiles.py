"""Hypothesis profiles of the fault suite.

``ci`` (the default): derandomized, so every CI run tries the same examples, and small
enough for CI's time budget. ``long``: random and a hundred times more examples, for a
run on a developer's machine before a release::

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/fuzz -q
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

# No shrinking in CI: a failing CLI example costs seconds to shrink, and CI's timeout would
# hide the failure; the example is printed as found. Locally (long), it is shrunk.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=1,
    suppress_health_check=_SLOW_OK,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
settings.register_profile("long", deadline=None, max_examples=1, suppress_health_check=_SLOW_OK)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE not in {"ci", "long"}:
    raise RuntimeError(f"HYPOTHESIS_PROFILE={PROFILE!r}: use ci or long")
SCALE = 1 if PROFILE == "ci" else 100
"""How many times more examples the long profile tries."""


def fuzz(examples: int) -> settings:
    """Settings for one fuzz test: ``examples`` in CI, a hundred times more when long."""
    return settings(settings.get_profile(PROFILE), max_examples=examples * SCALE)
