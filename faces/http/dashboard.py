"""``GET /dashboard``: one server-rendered page for operators, no script, no CDN.

Projector lag and parked records, outbound contacts per day by channel (an inline SVG
stacked bar chart), the most-contacted customers, customers over the caps, violations by
rule (SVG bars), and a customer lookup (a plain form GET: profile, contacts, may-contact).
A browser sends its API key as ``?key=`` (kept in the form and links), or a header.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from application import decisions
from application.as_of import customer_contacts, customer_profile
from application.dashboard import Dashboard, dashboard
from application.personal import without_personal_profile
from faces.http.common import Caller, may_see_personal, require, state_of
from ledger.errors import LedgerError
from ledger.settings import Settings
from projections.policy import parse_duration

router = APIRouter(tags=["dashboard"])

COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f")
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;background:#fafafa}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.8rem 1rem;margin:.8rem 0}
table{border-collapse:collapse}
td,th{padding:.2rem .6rem;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.big{font-size:1.6rem;font-weight:600}
.kpis{display:flex;gap:2rem}.bad{color:#b00}.ok{color:#070}
"""


def _table(headers: list[str], rows: list[list[Any]], table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{v}</td>'
            if isinstance(v, int | float)
            else f"<td>{escape(str(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    empty = "" if rows else f'<tr><td colspan="{len(headers)}">none</td></tr>'
    return f'<table id="{table_id}"><tr>{head}</tr>{body}{empty}</table>'


def stacked_bars(per_day: dict[str, dict[str, int]], chart_id: str) -> str:
    """An SVG stacked bar chart: one bar per day, one colour per channel, with a legend."""
    channels = sorted({c for counts in per_day.values() for c in counts})
    width, height, left, bottom = 720, 240, 40, 40
    days = list(per_day)
    peak = max((sum(c.values()) for c in per_day.values()), default=0) or 1
    step = (width - left) / max(len(days), 1)
    parts = [
        f'<svg id="{chart_id}" role="img" aria-label="outbound contacts per day by channel" '
        f'width="{width}" height="{height + 20 * ((len(channels) + 5) // 6)}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="10">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        'stroke="#999"/>',
        f'<text x="0" y="12">{peak}</text>',
    ]
    for number, day in enumerate(days):
        x = left + number * step + 2
        y: float = height - bottom
        for index, channel in enumerate(channels):
            n = per_day[day].get(channel, 0)
            if not n:
                continue
            h = (height - bottom - 20) * n / peak
            y -= h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{step - 4:.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[index % len(COLOURS)]}">'
                f"<title>{escape(day)} {escape(channel)}: {n}</title></rect>"
            )
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 14}">{escape(day[5:])}</text>')
    for index, channel in enumerate(channels):
        x, y = left + (index % 6) * 110, height + 4 + 20 * (index // 6)
        parts.append(
            f'<rect x="{x}" y="{y - 9}" width="10" height="10" '
            f'fill="{COLOURS[index % len(COLOURS)]}"/><text x="{x + 14}" y="{y}">'
            f"{escape(channel)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def bars(rows: list[tuple[str, int]], chart_id: str, label: str) -> str:
    """An SVG horizontal bar chart of (name, count)."""
    peak = max((n for _, n in rows), default=0) or 1
    line = 22
    parts = [
        f'<svg id="{chart_id}" role="img" aria-label="{escape(label)}" width="620" '
        f'height="{max(len(rows), 1) * line + 4}" xmlns="http://www.w3.org/2000/svg" '
        'font-size="11">'
    ]
    for number, (name, n) in enumerate(rows):
        y = number * line + 2
        parts.append(
            f'<text x="0" y="{y + 14}">{escape(name)}</text>'
            f'<rect class="bar" x="300" y="{y}" width="{260 * n / peak:.1f}" height="16" '
            f'fill="{COLOURS[0]}"/><text x="{306 + 260 * n / peak:.1f}" y="{y + 13}">{n}</text>'
        )
    if not rows:
        parts.append('<text x="0" y="14">none</text>')
    parts.append("</svg>")
    return "".join(parts)


def _lookup(settings: Settings, customer: str, personal: bool, now: datetime) -> str:
    try:
        answer = customer_profile(
            settings, customer, at=None, until=None, recorded_by=None, fresh=None
        ).to_dict()
    except LedgerError as exc:
        return f'<p id="lookup-error">{escape(str(exc))}</p>'
    if not personal:
        answer = without_personal_profile(answer)
    details = [[k, v["value"]] for k, v in answer["details"].items()]
    summary = [
        ["status", answer["status"]],
        ["at risk", "yes" if answer["at_risk"] else "no"],
        ["purchases", answer["purchases"]],
        ["net spend", ", ".join(f"{v} {c}" for c, v in answer["net_spend"].items()) or "-"],
        ["open complaints", len(answer["open_complaints"])],
        *details,
    ]
    lengths = {w: parse_duration(w) for w in ("24h", "7d", "30d")}
    counts = customer_contacts(
        settings, customer, lengths, at=None, until=None, recorded_by=None, fresh=None
    ).to_dict()["contacts"]
    contact_rows = [
        [c["channel"], c["direction"], c["purpose"], c["24h"], c["7d"], c["30d"]] for c in counts
    ]
    checks = []
    for channel in ("email", "sms", "phone"):
        decision = decisions.may_contact(
            settings,
            customer,
            channel,
            "marketing",
            now,
            policy_file=None,
            record=False,
            requested_by=None,
        )
        reasons = "; ".join(r.message for r in decision.reasons) or "-"
        checks.append(
            [
                channel,
                "ALLOWED" if decision.allowed else "DENIED",
                reasons,
                decision.earliest.isoformat() if decision.earliest else "-",
            ]
        )
    return (
        f'<h3 id="lookup-customer">{escape(customer)}</h3>'
        + _table(["", ""], summary, "lookup-profile")
        + "<h4>Contacts</h4>"
        + _table(
            ["channel", "direction", "purpose", "24h", "7d", "30d"], contact_rows, "lookup-contacts"
        )
        + "<h4>May we contact for marketing now?</h4>"
        + _table(["channel", "decision", "reasons", "earliest"], checks, "lookup-may-contact")
    )


def render(board: Dashboard, lookup: str, customer: str, key: str | None) -> str:
    report = board.status.to_dict()
    partitions = report["partitions"]
    lag = sum(p["lag_events"] for p in partitions)
    parked = report["rows"].get("dead_letters", 0)
    part_rows = [
        [
            p["partition"],
            p["position"],
            p["end"],
            p["lag_events"],
            "-" if p["lag_seconds"] is None else f"{p['lag_seconds']:.0f}s",
            p["committed_at"] or "-",
        ]
        for p in partitions
    ]
    hidden = f'<input type="hidden" name="key" value="{escape(key)}">' if key else ""
    refresh = "/dashboard?" + urlencode({"key": key} if key else {})
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>touchpoint-ledger dashboard</title><style>{STYLE}</style></head><body>
<h1>touchpoint-ledger</h1><p>as of {board.at:%Y-%m-%d %H:%M:%S %Z} ·
<a href="{escape(refresh)}">refresh</a></p>
<section class="kpis">
<div>lag<div class="big {"bad" if lag else "ok"}" id="kpi-lag">{lag}</div>records</div>
<div>parked<div class="big {"bad" if parked else "ok"}" id="kpi-parked">{parked}</div>records</div>
<div>profiles<div class="big" id="kpi-profiles">{report["rows"].get("profiles", 0)}</div></div>
<div>violations (30d)<div class="big" id="kpi-violations">
{sum(n for _, n in board.violations_by_rule)}</div></div>
</section>
<section><h2>Projectors</h2>
{
        _table(
            ["partition", "position", "end", "lag", "lag (event time)", "committed"],
            part_rows,
            "partitions",
        )
    }</section>
<section><h2>Outbound contacts per day by channel</h2>{stacked_bars(board.per_day, "per-day")}
</section>
<section><h2>Most contacted customers (7 days)</h2>
{_table(["customer", "contacts"], [list(r) for r in board.top], "top")}</section>
<section><h2>Customers over the caps (30 days)</h2>
{bars(board.over_caps, "over-caps", "customers over each cap")}</section>
<section><h2>Policy violations by rule (30 days)</h2>
{bars(board.violations_by_rule, "violations", "violations by rule")}</section>
<section><h2>Customer lookup</h2>
<form id="lookup" method="get" action="/dashboard">{hidden}
<input name="customer" id="customer" value="{escape(customer)}" placeholder="C0000042">
<button type="submit">Look up</button></form>{lookup}</section>
</body></html>"""


@router.get("/dashboard", response_class=HTMLResponse)
async def page(
    request: Request,
    caller: Annotated[Caller, Depends(require("read"))],
    customer: str = "",
    key: str | None = None,
) -> HTMLResponse:
    """The operators' page (``customer``: also look this customer up)."""
    settings = state_of(request).settings
    now = datetime.now(UTC)
    board = await run_in_threadpool(dashboard, settings, now)
    personal = may_see_personal(caller, state_of(request))
    lookup = (
        await run_in_threadpool(_lookup, settings, customer.strip(), personal, now)
        if customer.strip()
        else ""
    )
    return HTMLResponse(render(board, lookup, customer, key))
