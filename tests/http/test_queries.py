"""Every query over real HTTP answers exactly what the CLI's --json prints (one demo ledger,
never written to here), and access control: 401, 403 naming the scope, personal fields."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.http.conftest import AT, Server, ledger, ledger_env, new_key

MASKED = re.compile(r"^(committed_at|records_per_second|lag_seconds|.*age_seconds)$")


def mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<t>" if MASKED.match(k) else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


@dataclass
class Demo:
    env: dict[str, str]
    server: Server
    admin: str
    reader: str
    checker: str
    auditor: str
    publisher: str
    personal_reader: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    env = ledger_env(tmp_path_factory.mktemp("demo"))
    ledger(env, "demo", "--customers", "300", "--days", "180", "--seed", "7", "--json")
    keys = {
        "admin": new_key(env, "ops", "admin"),
        "reader": new_key(env, "screen", "read"),
        "checker": new_key(env, "campaigns", "contact-check"),
        "auditor": new_key(env, "dpo", "audit"),
        "publisher": new_key(env, "crm", "publish"),
        "personal_reader": new_key(env, "agent", "read", "personal"),
    }
    server = Server(env)
    try:
        yield Demo(env, server, **keys)
    finally:
        server.stop()


# (name, CLI arguments, HTTP path, the CLI prints JSON Lines)
QUERIES: list[tuple[str, list[str], str, bool]] = [
    ("profile", ["profile", "C0000042"], "/v1/customers/C0000042/profile", False),
    (
        "profile-at",
        ["profile", "C0000042", "--at", AT],
        f"/v1/customers/C0000042/profile?at={AT}",
        False,
    ),
    (
        "profile-as-of",
        ["profile", "C0000042", "--as-of", "2025-04-01"],
        "/v1/customers/C0000042/profile?as_of=2025-04-01",
        False,
    ),
    (
        "profile-no-fresh",
        ["profile", "C0000007", "--no-fresh"],
        "/v1/customers/C0000007/profile?fresh=false",
        False,
    ),
    (
        "contacts",
        ["contacts", "C0000042", "--at", AT],
        f"/v1/customers/C0000042/contacts?at={AT}",
        False,
    ),
    (
        "contacts-window",
        ["contacts", "C0000042", "--window", "7d", "--at", AT],
        f"/v1/customers/C0000042/contacts?window=7d&at={AT}",
        False,
    ),
    (
        "contacts-top",
        ["contacts", "top", "--window", "30d", "--at", AT],
        f"/v1/contacts/top?window=30d&at={AT}",
        False,
    ),
    (
        "contacts-top-sms",
        [
            "contacts",
            "top",
            "--channel",
            "sms",
            "--direction",
            "outbound",
            "--limit",
            "5",
            "--at",
            AT,
        ],
        f"/v1/contacts/top?channel=sms&direction=outbound&limit=5&at={AT}",
        False,
    ),
    (
        "customers-active",
        ["customers", "--status", "active", "--at", AT],
        f"/v1/customers?status=active&at={AT}",
        False,
    ),
    (
        "customers-risk",
        ["customers", "--risk", "--at", AT],
        f"/v1/customers?risk=true&at={AT}",
        False,
    ),
    ("history", ["history", "C0000042"], "/v1/customers/C0000042/history", True),
    (
        "history-until",
        ["history", "C0000042", "--until", "2025-03-01"],
        "/v1/customers/C0000042/history?until=2025-03-01",
        True,
    ),
    (
        "may-contact",
        ["may-contact", "C0000042", "--channel", "sms", "--purpose", "marketing", "--at", AT],
        f"/v1/may-contact?customer=C0000042&channel=sms&purpose=marketing&at={AT}",
        False,
    ),
    (
        "may-contact-email",
        ["may-contact", "C0000011", "--channel", "email", "--purpose", "service", "--at", AT],
        f"/v1/may-contact?customer=C0000011&channel=email&purpose=service&at={AT}",
        False,
    ),
    ("violations", ["violations"], "/v1/violations", True),
    (
        "violations-sms",
        ["violations", "--channel", "sms", "--since", "2025-03-01"],
        "/v1/violations?channel=sms&since=2025-03-01",
        True,
    ),
    (
        "pressure",
        ["pressure", "--window", "30d", "--at", AT],
        f"/v1/pressure?window=30d&at={AT}",
        False,
    ),
    ("policy", ["policy", "show"], "/v1/policy", False),
    ("project-status", ["project", "status"], "/v1/project/status", False),
]


@pytest.mark.parametrize(("name", "args", "path", "jsonl"), QUERIES, ids=[q[0] for q in QUERIES])
def test_http_answers_what_the_cli_prints(
    demo: Demo, name: str, args: list[str], path: str, jsonl: bool
) -> None:
    done = __import__("subprocess").run(
        [str(Path(__import__("sys").executable).parent / "ledger"), *args, "--json"],
        env=demo.env,
        capture_output=True,
        check=False,
    )
    assert done.returncode in (0, 5), done.stderr  # 5: may-contact denied
    with demo.server.client(demo.admin) as http:
        answer = http.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    if jsonl:
        cli = [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]
        assert answer.json() == cli
        assert answer.content == orjson.dumps(cli)
        if name.startswith("violations"):
            assert cli, "the demo has violations: the comparison must compare something"
    elif name == "project-status":
        assert mask(answer.json()) == mask(orjson.loads(done.stdout))
    else:
        assert answer.content == done.stdout.rstrip(b"\n")  # byte for byte


def test_a_batch_of_decisions_is_the_cli_batch(demo: Demo) -> None:
    body = b"customer,channel,purpose\nC0000042,sms,marketing\nC0000011,email,service\nbad,line\n"
    cli = ledger(demo.env, "may-contact", "--batch", "-", "--at", AT, input=body, codes=(3,))
    with demo.server.client(demo.checker) as http:
        answer = http.post(f"/v1/may-contact/batch?at={AT}", content=body)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["decisions"] == [orjson.loads(x) for x in cli.splitlines()]
    assert len(found["decisions"]) == 2
    assert found["unreadable"] == [
        {
            "line": 4,
            "reason": "channel: 'line' is not one of chat, email, phone, post, sms, "
            "social, store, web",
        }
    ]


def test_no_key_bad_key_and_a_missing_scope(demo: Demo) -> None:
    with demo.server.client() as http:
        none = http.get("/v1/customers/C0000042/profile")
    assert none.status_code == 401
    assert none.json()["required_scope"] == "read"
    assert none.headers["www-authenticate"].startswith("Bearer")
    with demo.server.client(demo.admin[:-2] + "xx") as http:
        bad = http.get("/v1/customers/C0000042/profile")
    assert bad.status_code == 401
    with demo.server.client(demo.reader) as http:
        denied = http.get("/v1/may-contact?customer=C0000042&channel=sms&purpose=marketing")
        audit = http.get("/v1/violations")
        publish = http.post(
            "/v1/events",
            content=b"[]",
            headers={"content-type": "application/cloudevents-batch+json"},
        )
    assert denied.status_code == 403
    assert denied.json()["required_scope"] == "contact-check"
    assert "contact-check" in denied.json()["error"]
    assert audit.status_code == 403
    assert audit.json()["required_scope"] == "audit"
    assert publish.status_code == 403
    assert publish.json()["required_scope"] == "publish"
    with demo.server.client(demo.checker) as http:
        recording = http.get(
            "/v1/may-contact?customer=C0000042&channel=sms&purpose=marketing&record=true"
        )
        reading = http.get("/v1/customers/C0000042/profile")
    assert recording.status_code == 403
    assert recording.json()["required_scope"] == "publish"
    assert reading.status_code == 403
    assert reading.json()["required_scope"] == "read"
    with demo.server.client(demo.auditor) as http:
        assert http.get(f"/v1/pressure?at={AT}").status_code == 200


def test_a_revoked_key_stops_working_at_once(demo: Demo) -> None:
    token = new_key(demo.env, "temp", "read")
    with demo.server.client(token) as http:
        assert http.get("/v1/customers?limit=1").status_code == 200
        key_id = token.removeprefix("tpl_").split("_")[0]
        ledger(demo.env, "api-keys", "revoke", key_id)
        assert http.get("/v1/customers?limit=1").status_code == 401
    listed = orjson.loads(ledger(demo.env, "api-keys", "list", "--json"))
    assert any(k["id"] == key_id and k["revoked_at"] for k in listed)
    stored = (Path(demo.env["LEDGER_DATA_DIR"]) / "api-keys.json").read_text()
    assert token.split("_", 2)[2] not in stored  # only digests are kept


def test_personal_fields_only_for_the_personal_scope(demo: Demo) -> None:
    with demo.server.client(demo.reader) as http:
        hidden = http.get("/v1/customers/C0000042/profile").json()
        hidden_history = http.get("/v1/customers/C0000042/history").json()
    with demo.server.client(demo.personal_reader) as http:
        shown = http.get("/v1/customers/C0000042/profile").json()
        shown_history = http.get("/v1/customers/C0000042/history").json()
    assert shown["details"]["email"]["value"].endswith("@example.com")
    assert hidden["details"]["email"]["value"] == "[personal]"
    assert hidden["details"]["name"]["value"] == "[personal]"
    assert hidden["details"]["country"] == shown["details"]["country"]  # not personal
    details = [r for r in shown_history if r["event"]["type"] == "customer.details"]
    assert details
    assert details[0]["event"]["data"]["personal"]["name"]
    hidden_details = [r for r in hidden_history if r["event"]["type"] == "customer.details"]
    assert hidden_details[0]["event"]["data"]["personal"] == "[personal]"
    assert b"@example.com" not in orjson.dumps(hidden_history)


def test_bad_questions_get_clear_answers(demo: Demo) -> None:
    with demo.server.client(demo.admin) as http:
        unknown = http.get("/v1/customers/NOBODY/profile")
        unknown_as_of = http.get("/v1/customers/NOBODY/profile?as_of=2025-04-01")
        bad_date = http.get("/v1/customers/C0000042/profile?at=2025-13-45")
        no_zone = http.get("/v1/customers/C0000042/profile?at=2025-06-30T12:00:00")
        bad_window = http.get("/v1/contacts/top?window=7 days")
        bad_status = http.get("/v1/customers?status=sleepy")
        bad_channel = http.get("/v1/may-contact?customer=C1&channel=pigeon&purpose=marketing")
        missing = http.get("/v1/may-contact?customer=C1")
    assert unknown.status_code == 404
    assert "NOBODY" in unknown.json()["error"]
    assert unknown_as_of.status_code == 404
    assert bad_date.status_code == 422
    assert bad_date.json()["parameter"] == "at"
    assert no_zone.status_code == 422
    assert bad_window.status_code == 422
    assert bad_window.json()["parameter"] == "window"
    assert bad_status.status_code == 422
    assert "status" in bad_status.json()["error"]
    assert bad_channel.status_code == 422
    assert "pigeon" in bad_channel.json()["error"]
    assert missing.status_code == 422
    assert "channel" in missing.json()["error"]


def test_openapi_document_is_served(demo: Demo) -> None:
    with demo.server.client() as http:
        document = http.get("/openapi.json").json()
        health = http.get("/healthz")
        ready = http.get("/readyz")
    assert "/v1/events" in document["paths"]
    assert "/v1/customers/{customer}/profile" in document["paths"]
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


# The fast path (faces/http/fast.py) answers profiles and single decisions in front of
# FastAPI's router: every answer, errors included, must be the router's own. A second server
# on the same ledger runs without it (--no-fast-path) and both are asked the same questions.
PROFILE = "/v1/customers/C0000042/profile"
CHECK = f"/v1/may-contact?customer=C0000042&channel=sms&purpose=marketing&at={AT}"
# (key, path, extra headers)
SAME_QUESTIONS: list[tuple[str | None, str, dict[str, str]]] = [
    ("admin", PROFILE, {}),
    ("reader", PROFILE, {}),  # personal values hidden
    ("personal_reader", PROFILE, {}),  # shown
    ("checker", PROFILE, {}),  # 403, read missing
    (None, PROFILE, {}),  # 401
    ("bad", PROFILE, {}),  # 401, unknown key
    ("reader-header", PROFILE, {}),  # X-API-Key
    ("reader-query", PROFILE, {}),  # ?key=
    ("admin", f"{PROFILE}?at={AT}", {}),
    ("admin", f"{PROFILE}?as_of=2025-04-01", {}),
    ("admin", f"{PROFILE}?as_of=2025-04-01&as_recorded_by=2025-05-01", {}),
    ("admin", "/v1/customers/C0000007/profile?fresh=false", {}),
    ("admin", "/v1/customers/C0000007/profile?fresh=TRUE", {}),
    ("admin", "/v1/customers/C0000007/profile?fresh=maybe", {}),  # 422 from FastAPI
    ("admin", "/v1/customers/C0000007/profile?fresh=", {}),
    ("admin", f"{PROFILE}?at=2025-13-45", {}),  # 422, parameter at
    ("admin", f"{PROFILE}?at=2025-06-30T12:00:00", {}),  # no zone
    ("admin", f"{PROFILE}?at=", {}),
    ("admin", f"{PROFILE}?as_recorded_by=yesterday", {}),
    ("admin", f"{PROFILE}?at=2025-01-01&at={AT}", {}),  # the last one counts
    ("admin", "/v1/customers/NOBODY/profile", {}),  # 404
    ("admin", "/v1/customers/NOBODY/profile?as_of=2025-04-01", {}),
    ("admin", "/v1/customers/C%C3%A9/profile", {}),
    ("admin", f"{PROFILE}/", {}),  # not the route
    ("checker", CHECK, {}),
    ("admin", CHECK, {}),
    ("checker", f"/v1/may-contact?customer=C0000011&channel=email&purpose=service&at={AT}", {}),
    ("checker", f"/v1/may-contact?customer=NOBODY&channel=email&purpose=service&at={AT}", {}),
    ("reader", CHECK, {}),  # 403, contact-check missing
    (None, CHECK, {}),
    ("bad", CHECK, {}),
    ("checker", f"{CHECK}&record=true", {}),  # 403, publish missing
    ("checker", f"{CHECK}&record=0", {}),
    ("checker", f"{CHECK}&record=perhaps", {}),
    ("checker", f"{CHECK}&requested_by=someone", {}),
    ("checker", "/v1/may-contact?customer=C1&channel=pigeon&purpose=marketing", {}),
    ("checker", f"/v1/may-contact?customer=C1&channel=sms&purpose=gossip&at={AT}", {}),
    ("checker", "/v1/may-contact?customer=C1&channel=sms&purpose=marketing&at=soon", {}),
    ("checker", "/v1/may-contact?customer=C1", {}),  # 422 from FastAPI: channel missing
    (None, "/v1/may-contact?customer=C1", {}),  # 401 before the missing parameters
]


@pytest.fixture(scope="module")
def reference(demo: Demo) -> Iterator[Server]:
    server = Server(demo.env, "--no-fast-path")
    try:
        yield server
    finally:
        server.stop()


def _ask(server: Server, demo: Demo, who: str | None, path: str) -> Any:
    tokens = {
        "admin": demo.admin,
        "reader": demo.reader,
        "personal_reader": demo.personal_reader,
        "checker": demo.checker,
        "bad": demo.admin[:-2] + "xx",
    }
    headers: dict[str, str] = {}
    if who == "reader-header":
        headers["X-API-Key"] = demo.reader
    elif who == "reader-query":
        path += ("&" if "?" in path else "?") + f"key={demo.reader}"
    elif who is not None:
        headers["Authorization"] = f"Bearer {tokens[who]}"
    with server.client() as http:
        return http.get(path, headers=headers)


@pytest.mark.parametrize(
    ("who", "path", "headers"), SAME_QUESTIONS, ids=[f"{q[0]}:{q[1]}" for q in SAME_QUESTIONS]
)
def test_the_fast_path_answers_what_the_router_answers(
    demo: Demo, reference: Server, who: str | None, path: str, headers: dict[str, str]
) -> None:
    fast = _ask(demo.server, demo, who, path)
    routed = _ask(reference, demo, who, path)
    assert (fast.status_code, fast.content) == (routed.status_code, routed.content)
    for header in ("content-type", "content-length", "www-authenticate", "retry-after"):
        assert fast.headers.get(header) == routed.headers.get(header), header


def test_the_fast_path_keeps_the_rules(demo: Demo) -> None:
    """What the comparison above holds, stated: scopes, personal values, bad input."""
    hidden = _ask(demo.server, demo, "reader", PROFILE)
    shown = _ask(demo.server, demo, "personal_reader", PROFILE)
    assert hidden.json()["details"]["email"]["value"] == "[personal]"
    assert shown.json()["details"]["email"]["value"].endswith("@example.com")
    assert b"@example.com" not in hidden.content
    missing = _ask(demo.server, demo, "checker", PROFILE)
    assert missing.status_code == 403
    assert missing.json()["required_scope"] == "read"
    assert missing.json()["key_scopes"] == ["contact-check"]
    anonymous = _ask(demo.server, demo, None, CHECK)
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "error": "an API key is required",
        "required_scope": "contact-check",
    }
    assert _ask(demo.server, demo, "admin", "/v1/customers/NOBODY/profile").status_code == 404
    bad_date = _ask(demo.server, demo, "admin", f"{PROFILE}?at=2025-13-45")
    assert bad_date.status_code == 422
    assert bad_date.json()["parameter"] == "at"


def test_a_revoked_key_is_refused_by_the_fast_path_on_its_next_request(demo: Demo) -> None:
    """The key file is checked for changes (its mtime and size) on every request: a revoked
    key's next lookup is refused, no cache lifetime to wait for."""
    token = new_key(demo.env, "lookups", "read", "contact-check")
    with demo.server.client(token) as http:
        assert http.get(PROFILE).status_code == 200
        assert http.get(CHECK).status_code == 200
        ledger(demo.env, "api-keys", "revoke", token.removeprefix("tpl_").split("_")[0])
        profile, check = http.get(PROFILE), http.get(CHECK)
    assert profile.status_code == 401
    assert profile.json()["error"] == "unknown or revoked API key"
    assert check.status_code == 401


def test_fast_lookups_are_counted_under_their_routes(demo: Demo) -> None:
    def counted(text: str, route: str, status: str) -> float:
        pattern = (
            rf'^ledger_http_requests_total\{{method="GET",route="{re.escape(route)}",'
            rf'status="{status}"\}} (\S+)$'
        )
        found = re.search(pattern, text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    with demo.server.client(demo.admin) as http:
        before = http.get("/metrics").text
        for customer in ("C0000001", "C0000002", "C0000003"):
            assert http.get(f"/v1/customers/{customer}/profile").status_code == 200
        assert http.get(CHECK).status_code == 200
        assert http.get("/v1/customers/NOBODY/profile").status_code == 404
        after = http.get("/metrics").text
    route = "/v1/customers/{customer}/profile"
    assert counted(after, route, "200") - counted(before, route, "200") == 3
    assert counted(after, route, "404") - counted(before, route, "404") == 1
    assert counted(after, "/v1/may-contact", "200") - counted(before, "/v1/may-contact", "200") == 1
    assert "C0000001" not in after  # no label per customer
    assert (
        'ledger_http_request_duration_seconds_count{method="GET",route="/v1/may-contact"}' in after
    )
