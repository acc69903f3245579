"""Run every command that has a ``--json`` answer on one demo ledger and keep the outputs.

The check behind a refactoring that must not change behaviour (issue 16): run it on the
commit before and on the commit after, then compare the two folders byte for byte::

    python scripts/json_outputs.py /tmp/before        # on the old commit
    python scripts/json_outputs.py /tmp/after --compare /tmp/before

Every answer is asked at a fixed time (``--at``/``--as-of``) on a seeded demo ledger, so the
only fields that differ between two runs are durations and rates, which are masked.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

AT = "2025-06-30T12:00:00Z"
MASKED = re.compile(
    r"^(seconds|elapsed.*|.*_seconds|.*per_second|rate|events_per_s"
    r"|recorded_at|committed_at|sealed_at|chain|id|event_id)$"
)
"""Keys whose values differ on every run: timings, wall-clock times, the random event ids
the generator gives (and the hash chains over them)."""

COMMANDS: list[tuple[str, list[str]]] = [
    ("demo", ["demo", "--customers", "300", "--days", "180", "--seed", "7", "--json"]),
    ("project-status", ["project", "status", "--json"]),
    ("profile", ["profile", "C0000042", "--json"]),
    ("profile-at", ["profile", "C0000042", "--at", AT, "--json"]),
    ("profile-as-of", ["profile", "C0000042", "--as-of", "2025-04-01", "--json"]),
    ("profile-no-fresh", ["profile", "C0000007", "--no-fresh", "--json"]),
    ("contacts", ["contacts", "C0000042", "--at", AT, "--json"]),
    ("contacts-top", ["contacts", "top", "--window", "30d", "--at", AT, "--json"]),
    ("customers-active", ["customers", "--status", "active", "--at", AT, "--json"]),
    ("customers-risk", ["customers", "--risk", "--at", AT, "--json"]),
    ("history", ["history", "C0000042", "--json"]),
    ("replay", ["replay", "--customer", "C0000042", "--json"]),
    ("replay-types", ["replay", "--type", "complaint.opened", "--limit", "50", "--json"]),
    (
        "may-contact-sms",
        [
            "may-contact",
            "C0000042",
            "--channel",
            "sms",
            "--purpose",
            "marketing",
            "--at",
            AT,
            "--json",
        ],
    ),
    (
        "may-contact-email",
        [
            "may-contact",
            "C0000011",
            "--channel",
            "email",
            "--purpose",
            "service",
            "--at",
            AT,
            "--json",
        ],
    ),
    ("violations", ["violations", "--json"]),
    ("violations-sms", ["violations", "--channel", "sms", "--since", "2025-03-01", "--json"]),
    ("pressure", ["pressure", "--window", "30d", "--at", AT, "--json"]),
    ("policy-show", ["policy", "show", "--json"]),
    ("project-errors", ["project", "errors", "--json"]),
    ("schema", ["schema"]),
    ("schema-asyncapi", ["schema", "--asyncapi"]),
    ("rebuild", ["project", "rebuild", "--json"]),
    ("status-after-rebuild", ["project", "status", "--json"]),
    ("audit-seal", ["audit", "seal", "--json"]),
    ("audit-verify", ["audit", "verify", "--json"]),
]


def mask(value: object) -> object:
    if isinstance(value, dict):
        return {k: "<t>" if MASKED.match(k) else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def masked_text(text: str) -> str:
    """Each JSON document (a whole answer or one line of JSON Lines) with timings masked."""
    try:
        return json.dumps(mask(json.loads(text)), indent=1, sort_keys=False) + "\n"
    except ValueError:
        lines = []
        for line in text.splitlines():
            try:
                lines.append(json.dumps(mask(json.loads(line)), sort_keys=False))
            except ValueError:
                lines.append(line)
        return "\n".join(lines) + "\n"


def run(out: Path, ledger: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "LEDGER_DATA_DIR": data}
        env.pop("LEDGER_LOG", None)
        for number, (name, args) in enumerate(COMMANDS):
            done = subprocess.run(
                [ledger, *args], env=env, capture_output=True, text=True, check=False
            )
            text = masked_text(done.stdout.replace(data, "<data>"))
            target = out / f"{number:02d}-{name}.json"
            target.write_text(f"exit {done.returncode}\n{text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="Folder for the outputs.")
    parser.add_argument("--compare", type=Path, help="A folder from another commit.")
    parser.add_argument(
        "--ledger", default=str(Path(sys.executable).with_name("ledger")), help="The CLI."
    )
    args = parser.parse_args()
    run(args.out, args.ledger)
    if args.compare is None:
        return 0
    differ = [
        p.name
        for p in sorted(args.out.iterdir())
        if not (args.compare / p.name).exists()
        or (args.compare / p.name).read_bytes() != p.read_bytes()
    ]
    for name in differ:
        print(f"differs: {name}")
    print(f"{len(COMMANDS) - len(differ)}/{len(COMMANDS)} answers byte-identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
