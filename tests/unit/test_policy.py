"""The contact policy: each rule, their combinations, time zones and DST, and bad files."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from application.policy_files import default_policy, load_policies, load_policy, parse_requests
from application.pressure import percentile
from projections import frequency
from projections.policy import Context, Decision, PolicyError, decide, parse_policy
from projections.profile import replay
from tests.builders import touchpoint as ev

ISTANBUL, NEW_YORK = ZoneInfo("Europe/Istanbul"), ZoneInfo("America/New_York")

BASE = """
version = "t1"
time_zone = "UTC"
[complaints]
no_marketing_while_open = true
cool_down = "7d"
[[caps]]
channel = "sms"
purpose = "marketing"
max = 2
per = "7d"
[[caps]]
channel = "*"
purpose = "marketing"
max = 3
per = "30d"
[[caps]]
channel = "email"
purpose = "marketing"
max = 1
per = "calendar-day"
[[quiet]]
channels = ["phone"]
purposes = ["marketing"]
start = "21:00"
end = "09:00"
days = ["sunday"]
"""


def consent(channel: str, at: datetime, given: bool = True) -> Any:
    kind = "consent.given" if given else "consent.withdrawn"
    return ev(kind, at, {"channel": channel, "evidence_source": "web"})


def sms(at: datetime, purpose: str = "marketing") -> Any:
    return ev("touchpoint.sms", at, {"direction": "outbound", "purpose": purpose})


def email(at: datetime) -> Any:
    return ev("touchpoint.email", at, {"direction": "outbound", "purpose": "marketing"})


def zone(name: str, at: datetime) -> Any:
    return ev("customer.details", at, {"time_zone": name})


T = datetime(2026, 3, 2, 12, tzinfo=UTC)  # a Monday
GRANTED = [consent(c, T - timedelta(days=100)) for c in ("sms", "email", "phone")]


def ask(
    events: list[Any], channel: str, purpose: str, at: datetime, policy: str = BASE
) -> Decision:
    profile = replay("C1", events) if events else None
    counts = frequency.replay(events)
    slots = sorted((slot, ch, d, p, n) for (_, ch, d, p, slot), n in counts.items())
    return decide(
        parse_policy(policy),
        Context(profile, slots),
        customer="C1",
        channel=channel,
        purpose=purpose,
        at=at,
    )


@pytest.mark.parametrize(
    ("events", "channel", "purpose", "allowed", "rules"),
    [
        ([], "sms", "marketing", False, ["consent"]),
        (GRANTED, "sms", "marketing", True, []),
        (
            [consent("sms", T - timedelta(days=9), given=False)],
            "sms",
            "marketing",
            False,
            ["consent"],
        ),
        ([], "sms", "transactional", True, []),  # no consent needed, no cap on it
        ([], "web", "marketing", True, []),  # consent is about phone, sms and e-mail
        ([*GRANTED, sms(T - timedelta(days=1))], "sms", "marketing", True, []),
        (
            [*GRANTED, sms(T - timedelta(days=1)), sms(T - timedelta(days=2))],
            "sms",
            "marketing",
            False,
            ["cap"],
        ),
        (  # transactional messages do not count toward a marketing cap
            [*GRANTED, sms(T - timedelta(days=1), "transactional"), sms(T - timedelta(days=2))],
            "sms",
            "marketing",
            True,
            [],
        ),
        (  # the cross-channel cap: 3 marketing contacts in 30 days on any channels
            [
                *GRANTED,
                sms(T - timedelta(days=20)),
                sms(T - timedelta(days=19)),
                email(T - timedelta(days=3)),
            ],
            "phone",
            "marketing",
            False,
            ["cap"],
        ),
        (  # consent withdrawn later than granted: denied, and capped too
            [
                *GRANTED,
                consent("sms", T - timedelta(days=1), given=False),
                sms(T - timedelta(days=2)),
                sms(T - timedelta(days=3)),
            ],
            "sms",
            "marketing",
            False,
            ["consent", "cap"],
        ),
    ],
)
def test_rules_one_by_one_and_together(
    events: list[Any], channel: str, purpose: str, allowed: bool, rules: list[str]
) -> None:
    decision = ask(events, channel, purpose, T)
    assert decision.allowed is allowed
    assert [r.rule for r in decision.reasons] == rules
    assert (decision.policy_version, len(decision.policy_sha256)) == ("t1", 64)


def test_a_rolling_cap_says_when_it_will_allow_again() -> None:
    oldest = T - timedelta(days=5, minutes=7)
    decision = ask([*GRANTED, sms(oldest), sms(T - timedelta(days=1))], "sms", "marketing", T)
    assert not decision.allowed
    # The oldest contact leaves the 7-day window once its quarter-hour slot has: 7 days
    # after the end of that slot.
    slot_end = datetime(2026, 2, 25, 12, 0, tzinfo=UTC)
    assert oldest < slot_end <= oldest + timedelta(minutes=15)
    assert decision.earliest == slot_end + timedelta(days=7)
    assert "2026-02-25" in decision.reasons[0].message
    again = ask(
        [*GRANTED, sms(oldest), sms(T - timedelta(days=1))], "sms", "marketing", decision.earliest
    )
    assert again.allowed


def test_a_calendar_day_cap_counts_the_customers_own_day() -> None:
    # 23:30 in Istanbul yesterday is 20:30 UTC; "today" there began at 21:00 UTC.
    istanbul = [*GRANTED, zone("Europe/Istanbul", T - timedelta(days=200))]
    yesterday = datetime(2026, 3, 1, 20, 30, tzinfo=UTC)
    assert ask([*istanbul, email(yesterday)], "email", "marketing", T).allowed
    today = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)  # 00:30 on 2 March in Istanbul
    decision = ask([*istanbul, email(today)], "email", "marketing", T)
    assert not decision.allowed
    assert decision.earliest == datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # midnight there


HOURS_ONLY = BASE.replace('days = ["sunday"]\n', "")


@pytest.mark.parametrize(
    ("tz", "at", "until", "policy"),
    [
        # Istanbul, UTC+3 all year: 22:00 local is quiet until 09:00 local (06:00 UTC).
        (
            "Europe/Istanbul",
            datetime(2026, 3, 3, 19, 0, tzinfo=UTC),
            datetime(2026, 3, 4, 6, 0, tzinfo=UTC),
            BASE,
        ),
        # 08:59 local is still quiet; 09:00 is not.
        (
            "Europe/Istanbul",
            datetime(2026, 3, 4, 5, 59, tzinfo=UTC),
            datetime(2026, 3, 4, 6, 0, tzinfo=UTC),
            BASE,
        ),
        ("Europe/Istanbul", datetime(2026, 3, 4, 6, 0, tzinfo=UTC), None, BASE),
        # New York, the night the clocks go forward (8 March 2026): quiet from 21:00 EST
        # until 09:00 EDT, which is 13:00 UTC, not 14:00.
        (
            "America/New_York",
            datetime(2026, 3, 8, 3, 0, tzinfo=UTC),
            datetime(2026, 3, 8, 13, 0, tzinfo=UTC),
            HOURS_ONLY,
        ),
        # ...and the night they go back (1 November 2026): until 09:00 EST = 14:00 UTC.
        (
            "America/New_York",
            datetime(2026, 11, 1, 2, 0, tzinfo=UTC),
            datetime(2026, 11, 1, 14, 0, tzinfo=UTC),
            HOURS_ONLY,
        ),
        # US clocks change on Sundays: with quiet Sundays, Saturday 22:00 EST runs through
        # Sunday into Monday morning's quiet hours: allowed Monday 09:00 EDT (13:00 UTC).
        (
            "America/New_York",
            datetime(2026, 3, 8, 3, 0, tzinfo=UTC),
            datetime(2026, 3, 9, 13, 0, tzinfo=UTC),
            BASE,
        ),
    ],
)
def test_quiet_hours_in_the_customers_zone_across_dst(
    tz: str, at: datetime, until: datetime | None, policy: str
) -> None:
    events = [*GRANTED, zone(tz, T - timedelta(days=300))]
    decision = ask(events, "phone", "marketing", at, policy)
    if until is None:
        assert decision.allowed, decision.reasons
        return
    assert [r.rule for r in decision.reasons] == ["quiet"]
    assert decision.earliest == until
    assert ask(events, "phone", "marketing", until, policy).allowed
    assert not ask(events, "phone", "marketing", until - timedelta(minutes=1), policy).allowed
    assert ask(events, "phone", "transactional", at, policy).allowed  # service calls go on


def test_a_rolling_window_across_a_dst_change_is_exact_hours() -> None:
    """Slots are UTC: seven days back from just after the spring-forward night are 167
    local hours in New York, and the cap counts exactly the contacts in them."""
    ny = [*GRANTED, zone("America/New_York", T - timedelta(days=300))]
    at = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
    inside = at - timedelta(days=7) + timedelta(minutes=15)
    outside = at - timedelta(days=7) - timedelta(minutes=15)
    assert ask([*ny, sms(outside), sms(at - timedelta(hours=1))], "sms", "marketing", at).allowed
    assert not ask([*ny, sms(inside), sms(at - timedelta(hours=1))], "sms", "marketing", at).allowed


def test_complaints_block_marketing_while_open_and_for_the_cool_down() -> None:
    opened = ev(
        "complaint.opened",
        T - timedelta(days=3),
        {"channel": "phone", "complaint_id": "K1", "category": "billing"},
    )
    resolved = ev(
        "complaint.resolved",
        T - timedelta(days=2),
        {"channel": "phone", "complaint_id": "K1", "resolution": "refunded"},
    )
    open_now = ask([*GRANTED, opened], "email", "marketing", T)
    assert [r.rule for r in open_now.reasons] == ["complaint"]
    assert open_now.earliest is None  # waiting alone does not resolve a complaint
    cooling = ask([*GRANTED, opened, resolved], "email", "marketing", T)
    assert cooling.earliest == T - timedelta(days=2) + timedelta(days=7)
    assert ask([*GRANTED, opened, resolved], "email", "transactional", T).allowed
    assert ask([*GRANTED, opened, resolved], "email", "marketing", T + timedelta(days=6)).allowed


def test_a_late_event_changes_the_answer() -> None:
    """The views answer by event time: a contact uploaded late still counts where it
    happened, and turns an allowed contact into a capped one."""
    base = [*GRANTED, sms(T - timedelta(days=1))]
    assert ask(base, "sms", "marketing", T).allowed
    late = sms(T - timedelta(days=6))  # arrives now, happened six days ago
    assert not ask([*base, late], "sms", "marketing", T).allowed


def test_the_earliest_time_clears_quiet_hours_and_caps_together() -> None:
    ny = [*GRANTED, zone("America/New_York", T - timedelta(days=300))]
    policy = BASE.replace('channels = ["phone"]', 'channels = ["phone", "sms"]')
    events = [
        *ny,
        sms(datetime(2026, 3, 1, 3, 0, tzinfo=UTC)),
        sms(datetime(2026, 3, 4, 1, 0, tzinfo=UTC)),
    ]
    at = datetime(2026, 3, 5, 3, 0, tzinfo=UTC)  # 22:00 EST on Wednesday: quiet and capped
    decision = ask(events, "sms", "marketing", at, policy)
    assert {r.rule for r in decision.reasons} == {"cap", "quiet"}
    # The cap frees at 03:15 UTC on the 8th, 22:15 EST on Saturday: quiet; then Sunday;
    # then Monday until 09:00, by then EDT.
    assert decision.earliest == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    assert ask(events, "sms", "marketing", decision.earliest, policy).allowed
    before = decision.earliest - timedelta(minutes=1)
    assert not ask(events, "sms", "marketing", before, policy).allowed


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            'version = "x"\n[[caps]]\nchannel = "sms"\npurpose = "marketing"\nmax = 2\n'
            'per = "7 days"\n',
            "line 6: caps.0.per",
        ),
        (
            'version = "x"\ntime_zone = "Mars/Olympus"\n',
            "line 2: time_zone: 'Mars/Olympus' is not an IANA time zone",
        ),
        ('version = "x"\ncolour = "red"\n', "line 2: colour: unknown key"),
        (
            'version = "x"\n[[quiet]]\nchannels = ["phone"]\npurposes = ["marketing"]\n'
            'start = "25:00"\nend = "09:00"\n',
            "line 5: quiet.0.start",
        ),
        (
            'version = "x"\n[[quiet]]\nchannels = ["fax"]\npurposes = ["marketing"]\n'
            'days = ["sunday"]\n',
            "line 3: quiet.0.channels.0",
        ),
        ('version = "x"\nversion = "y"\n', "Cannot overwrite a value (at line 2"),
        ('[consent]\nrequired_for = ["marketing"]\n', "version: Field required"),
        # Hostile files: each a named problem, never a crash.
        ("[" * 100_000, "(at line 1"),
        ('version = "x"\nx = ' + "[" * 100_000, "nested too deeply"),
        ('version = "x"\n[[caps]]\nmax = ' + "9" * 5000 + "\n", "line 3: a number too long"),
        (
            'version = "x"\n[[caps]]\nchannel = "sms"\npurpose = "marketing"\nmax = 2\n'
            'per = "99999999999999999999d"\n',
            "line 6: caps.0.per: '99999999999999999999d' is longer than 36600 days",
        ),
        (
            'version = "x"\n[[caps]]\nchannel = "sms"\npurpose = "marketing"\nmax = true\n'
            'per = "7d"\n',
            "line 5: caps.0.max",
        ),
        (
            'version = "x"\neffective_from = 0001-01-01T00:00:00+14:00\n',
            "line 2: effective_from: 0001-01-01T00:00:00+14:00 is outside the accepted range",
        ),
        ('version = "x"\neffective_from = 9999-12-31\n', "line 2: effective_from"),
        (
            'version = "x"\n[freshness.marketing]\nstale = "maybe"\n',
            "line 3: freshness.marketing.stale",
        ),
        (
            'version = "x"\n[freshness.service]\nmax_unprojected = -1\n',
            "line 3: freshness.service.max_unprojected",
        ),
        (
            'version = "x"\n[freshness.marketing]\nreserve_for = "soon"\n',
            "line 3: freshness.marketing.reserve_for",
        ),
        ('version = "x"\n[freshness.sales]\nstale = "deny"\n', "freshness.sales: unknown key"),
    ],
)
def test_invalid_policies_are_refused_with_the_line_and_problem(text: str, problem: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.toml")
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_the_built_in_policy_is_valid_and_versioned() -> None:
    loaded = default_policy()
    assert loaded.version
    assert len(loaded.sha256) == 64
    assert loaded.policy.caps


def test_a_folder_of_versions_is_the_policys_history(tmp_path: Any) -> None:
    (tmp_path / "a.toml").write_text('version = "v1"\n')
    (tmp_path / "b.toml").write_text('version = "v2"\neffective_from = 2026-03-04\n')
    history = load_policies(tmp_path)
    assert [v.version for v in history.versions] == ["v1", "v2"]
    before = history.at(datetime(2026, 3, 3, 23, 59, tzinfo=UTC))
    after = history.at(datetime(2026, 3, 4, tzinfo=UTC))
    assert (before and before.version, after and after.version) == ("v1", "v2")
    (tmp_path / "c.toml").write_text('version = "v3"\n')
    with pytest.raises(PolicyError, match="only one version may lack effective_from"):
        load_policies(tmp_path)
    (tmp_path / "c.toml").write_text('version = "v3"\neffective_from = 2026-03-04T00:00:00Z\n')
    with pytest.raises(PolicyError, match="at the same moment"):
        load_policies(tmp_path)
    (tmp_path / "c.toml").write_text('version = "v3"\neffective_from = 2026-03-04T00:00:00\n')
    with pytest.raises(PolicyError, match="give the offset"):
        load_policies(tmp_path)


def test_nearest_rank_percentiles() -> None:
    values = list(range(1, 101))
    assert (percentile(values, 0.5), percentile(values, 0.9), percentile(values, 0.99)) == (
        50,
        90,
        99,
    )
    assert percentile([7], 0.99) == 7
    assert percentile([], 0.5) == 0


def test_a_policy_file_that_is_not_utf8_is_named_with_its_line(tmp_path: Any) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'version = "x"\ntime_zone = "Europe/Z\xfcrich"\n')
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.problems == ["line 2: not UTF-8 (byte 0xfc); TOML is UTF-8"]


def test_a_campaign_list_is_read_strictly() -> None:
    def read(data: bytes) -> list[tuple[int, object]]:
        return list(parse_requests(io.BytesIO(data)))

    bom_csv = b"\xef\xbb\xbfcustomer,channel,purpose\nC1,sms,marketing\nC\xff2,sms,marketing\n"
    assert read(bom_csv) == [(2, ("C1", "sms", "marketing")), (3, "not UTF-8")]
    assert read(b"customer,channel,purpose,customer\nC1,sms,marketing,C2\n") == [
        (1, "the CSV header repeats 'customer'")
    ]
    lines = read(
        b'\xef\xbb\xbf{"customer": "C1", "channel": "sms", "purpose": "marketing"}\n'
        b'{"customer": "C1", "customer": "C2", "channel": "sms", "purpose": "marketing"}\n'
    )
    assert lines == [
        (1, ("C1", "sms", "marketing")),
        (2, "not JSON: duplicate key 'customer'"),
    ]


RESERVING = BASE + '[freshness.marketing]\nreserve_for = "15m"\n'


def ask_reserved(
    events: list[Any], reservations: list[datetime], at: datetime = T, policy: str = RESERVING
) -> Decision:
    """Ask with recorded ``contact.allowed`` decisions (sms marketing) at these times."""
    counts = frequency.replay(events)
    slots = sorted((slot, ch, d, p, n) for (_, ch, d, p, slot), n in counts.items())
    held = [(moment, "sms", "marketing") for moment in reservations]
    return decide(
        parse_policy(policy),
        Context(replay("C1", events), slots, held),
        customer="C1",
        channel="sms",
        purpose="marketing",
        at=at,
    )


def test_a_recorded_allowed_decision_holds_a_slot_until_it_lapses_or_the_contact_comes() -> None:
    """The sms cap is 2 per 7 days; one contact two days ago leaves one slot."""
    sent = [*GRANTED, sms(T - timedelta(days=2))]
    assert ask_reserved(sent, []).allowed
    held = ask_reserved(sent, [T - timedelta(minutes=5)])
    assert [r.rule for r in held.reasons] == ["cap"]
    assert "reached (2)" in held.reasons[0].message
    assert ask_reserved(sent, [T - timedelta(minutes=16)]).allowed  # lapsed after 15m
    assert ask_reserved(sent, [T + timedelta(minutes=1)]).allowed  # not made yet at T
    # The announced contact arrived: it counts, the reservation no longer does.
    arrived = [*sent, sms(T - timedelta(minutes=3))]
    decision = ask_reserved(arrived, [T - timedelta(minutes=5)])
    assert "reached (2)" in decision.reasons[0].message
    # Without reserve_for, recorded decisions never count.
    assert ask_reserved(sent, [T - timedelta(minutes=5)], policy=BASE).allowed


def test_the_built_in_policy_fails_closed_for_marketing_only() -> None:
    rules = default_policy().policy.freshness
    assert rules.of("marketing").stale == "deny"
    assert rules.of("marketing").reserve_for == "15m"
    assert rules.of("service").stale == rules.of("transactional").stale == "allow-with-warning"
