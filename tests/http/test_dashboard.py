"""The operators' dashboard in a real browser: Debian's Chromium, headless, loads the page
from a running ``ledger serve`` and the test reads what a person sees (the numbers, the
drawn charts, the customer lookup submitted as the form would submit it) and keeps a
screenshot in the test's folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.http.conftest import StartServer, ledger, ledger_env, new_key


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = (
            "chromium is not installed (apt-get install chromium): the browser test did not run"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def browse(url: str, out: Path, *, screenshot: bool = False) -> str:
    """The DOM Chromium built from ``url`` (and a screenshot of it in ``out``)."""
    base = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={out / 'profile'}",
        "--window-size=1200,2600",
    ]
    if screenshot:
        done = subprocess.run(
            [*base, f"--screenshot={out / 'dashboard.png'}", url],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    done = subprocess.run([*base, "--dump-dom", url], capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done.stdout.decode()


VOID = {"input", "br", "meta", "img", "hr", "link", "rect", "line"}


class Page(HTMLParser):
    """What a person reads: the text of each element with an id, the bars drawn, the form."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.bars: dict[str, int] = {}
        self.form: dict[str, str] = {}
        self.action = ""
        self.method = ""
        self._open: list[tuple[str, str | None]] = []
        self._svg: str | None = None
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for _, element in self._open:  # cells and lines read apart, as on the screen
            if element is not None:
                self.text[element] += " "
        if tag not in VOID:
            self._open.append((tag, a.get("id")))
        if "id" in a:
            self.text.setdefault(a["id"], "")
        if tag == "svg":
            self._svg = a.get("id")
        drawn = float(a.get("height", "0")) > 0 and float(a.get("width", "0")) > 0
        if tag == "rect" and a.get("class") == "bar" and self._svg and drawn:
            self.bars[self._svg] = self.bars.get(self._svg, 0) + 1
        if tag == "form":
            self.action, self.method = a.get("action", ""), a.get("method", "")
        if tag == "input" and "name" in a:
            self.form[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break
        if tag == "svg":
            self._svg = None

    def handle_data(self, data: str) -> None:
        for _, element in self._open:
            if element is not None:
                self.text[element] += data


def test_the_dashboard_in_a_real_browser(tmp_path: Path, start_server: StartServer) -> None:
    env = ledger_env(tmp_path / "data")
    start = (datetime.now(UTC) - timedelta(days=20)).date().isoformat()
    ledger(env, "generate", "--customers", "120", "--days", "21", "--seed", "3", "--start", start)
    ledger(env, "project", "run")
    status = __import__("orjson").loads(ledger(env, "project", "status", "--json"))
    token = new_key(env, "ops", "read", "contact-check")
    server = start_server(env)
    url = f"{server.url}/dashboard?{urlencode({'key': token})}"

    page = Page(browse(url, tmp_path, screenshot=True))
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    assert page.text["kpi-profiles"].strip() == "120"
    assert page.text["kpi-lag"].strip() == "0"
    assert page.text["kpi-parked"].strip() == "0"
    end = str(status["partitions"][0]["end"])
    assert re.search(rf"\b{end}\b", page.text["partitions"]), page.text["partitions"]
    assert page.bars.get("per-day", 0) >= 10  # a bar per day and channel, drawn
    top = page.text["top"]
    assert re.search(r"C\d{7}\s*\d+", top), top  # the most-contacted customers, with counts
    assert "lookup-customer" not in page.text

    # The lookup, submitted as the form submits it: GET its action with its fields.
    assert page.method.lower() == "get"
    customer = re.search(r"C\d{7}", top)
    assert customer is not None
    fields = {**page.form, "customer": customer.group()}
    assert fields["key"] == token
    looked_up = Page(browse(f"{server.url}{page.action}?{urlencode(fields)}", tmp_path / "lookup"))
    assert looked_up.text["lookup-customer"].strip() == customer.group()
    assert "status" in looked_up.text["lookup-profile"]
    assert "[personal]" in looked_up.text["lookup-profile"]  # this key may not see names
    decisions = looked_up.text["lookup-may-contact"]
    assert decisions.count("ALLOWED") + decisions.count("DENIED") == 3
    assert "outbound" in looked_up.text["lookup-contacts"]

    unknown = Page(
        browse(
            f"{server.url}/dashboard?{urlencode({**fields, 'customer': 'NOBODY'})}",
            tmp_path / "unknown",
        )
    )
    assert "no profile for customer 'NOBODY'" in unknown.text["lookup-error"]
