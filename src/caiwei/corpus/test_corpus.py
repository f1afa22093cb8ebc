"""The bad-input corpus: every entry point fed garbage answers 4xx or a form error, in Chinese, naming the row or
field, and writes nothing (row counts of the watched tables, the audit log included, and the fixture rows' values
are compared before and after).

Cases live in ``cases/`` as data: ``api.yaml`` (API bodies and query parameters), ``forms.yaml`` (page forms),
``imports.yaml`` with the files under ``cases/imports/`` (ticket imports), ``uploads.yaml`` (ticket attachments) and
``cases/mail/*.eml``. Strings may hold placeholders for what YAML cannot carry well (see ``SPECIAL``).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.test import Client

CASES = Path(__file__).resolve().parent / "cases"
CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_LEAKS = ("Input should", "Field required", "Not Found", "Cannot parse", "value is not", "Traceback")

SPECIAL = {
    "{NUL}": "\x00",
    "{BEL}": "\x07",
    "{ESC}": "\x1b",
    "{DEL}": "\x7f",
    "{C1}": "\x85",
    "{SURR}": "\ud800",
    "{LOWSURR}": "\udfff",
    "{RLO}": "\u202e",
    "{LRI}": "\u2066",
    "{ZWSP}": "\u200b",
    "{BOM}": "\ufeff",
    "{COMBINING}": "a" + "\u0301" * 200,
    "{EMOJI}": "🧾💥",
    "{LONG61}": "名" * 61,
    "{LONG81}": "厂" * 81,
    "{LONG121}": "长" * 121,
    "{LONG151}": "u" * 151,
    "{LONG201}": "d" * 201,
    "{LONG256}": "p" * 256,
    "{LONG301}": "备" * 301,
    "{LONG501}": "评" * 501,
    "{HUGE}": "巨" * 200_001,
}


def expand(value):
    """Replace the placeholders in every string of a case (recursively)."""
    if isinstance(value, str):
        for token, text in SPECIAL.items():
            if token in value:
                value = value.replace(token, text)
        return value
    if isinstance(value, list):
        return [expand(v) for v in value]
    if isinstance(value, dict):
        return {expand(k): expand(v) for k, v in value.items()}
    return value


class CaseLoader(yaml.SafeLoader):
    """YAML without implicit dates: "2026-13-45" stays the text the case sends."""


CaseLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load(name: str) -> list[dict]:
    return yaml.load((CASES / name).read_text(encoding="utf-8"), Loader=CaseLoader) or []  # noqa: S506


def params(name: str) -> list:
    """One pytest param per case; a case carrying ``owner`` fails today and is marked xfail(strict) for them."""
    out = []
    for case in load(name):
        marks = []
        if case.get("owner"):
            marks.append(pytest.mark.xfail(strict=True, reason=f"unfixed, owned by {case['owner']}"))
        out.append(pytest.param(case, id=case["id"], marks=marks))
    ids = [p.id for p in out]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, f"{name}: duplicate case ids {duplicates}"
    return out


# --- the world every case runs against, and what "nothing written" means ----------------------------------------


def watched_models():
    from caiwei.accounts.models import ApiToken, User, UserRole
    from caiwei.audit.models import AuditEvent
    from caiwei.checks.models import CheckRun, CheckSchedule, RuleResult, Target, TargetDatabase
    from caiwei.desk.models import (
        Complaint,
        HotlineCall,
        Notification,
        Survey,
        Ticket,
        TicketAttachment,
        TicketChange,
        TicketComment,
        VendorFollowUp,
        VendorOrder,
    )
    from caiwei.jobs.models import Job

    return [
        AuditEvent,
        User,
        UserRole,
        ApiToken,
        Ticket,
        TicketChange,
        TicketComment,
        TicketAttachment,
        HotlineCall,
        Complaint,
        Survey,
        Notification,
        VendorOrder,
        VendorFollowUp,
        Target,
        TargetDatabase,
        CheckSchedule,
        CheckRun,
        RuleResult,
        Job,
    ]


def snapshot(world: dict) -> dict:
    """Row counts of every watched table, and the stored values of the rows the cases aim at."""
    state = {m._meta.label: m._default_manager.count() for m in watched_models()}
    for name, obj in world["objects"].items():
        row = type(obj)._default_manager.filter(pk=obj.pk).values().first()
        state[f"row:{name}"] = {
            k: v for k, v in (row or {}).items() if k not in ("last_used_at", "last_login")
        }
    state["user:regions"] = sorted(
        (u.username, r) for u in world["users"].values() for r in u.regions.values_list("code", flat=True)
    )
    return state


def changed(before: dict, after: dict) -> dict:
    return {
        k: (before.get(k), after.get(k))
        for k in before.keys() | after.keys()
        if before.get(k) != after.get(k)
    }


@pytest.fixture
def world(users, regions, tmp_path, settings, monkeypatch):
    from django.utils import timezone

    from caiwei.checks.models import CheckSchedule, Target, TargetDatabase
    from caiwei.desk import services
    from caiwei.desk.models import Ticket, VendorOrder

    # A case that is wrongly accepted must not run a job (a sandbox generation, a check run): the job row it
    # leaves is enough to fail the case.
    monkeypatch.setattr("caiwei.jobs.tasks.run_job_task", lambda pk: None)
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CAIWEI_ATTACHMENT_MAX_MB = 1
    league, county = regions["152500000"], regions["152502000"]
    ticket = services.create_ticket(
        users["agent"],
        region=league,
        system="工资统发",
        ticket_type="咨询",
        title="语料工单",
        description="用于坏输入语料",
        requester_name="甲",
    )
    own = services.create_ticket(
        users["unit"],
        region=county,
        system="国库集中支付",
        ticket_type="故障",
        title="单位提出的工单",
        description="已解决待评价",
        requester_name="乙",
    )
    Ticket.objects.filter(pk=own.pk).update(status="resolved", resolved_at=timezone.now())
    call = services.log_call(users["agent"], region=league, answered=False, caller_number="13800000000")
    complaint = services.register_complaint(users["pm"], region=league, complainant="丙", description="态度")
    order = VendorOrder.objects.create(
        ticket=ticket,
        vendor="省级开发团队",
        reference="V-0001",
        due=timezone.localdate(),
        created_by=users["pm"],
    )
    target = Target.objects.create(name="语料对象", system="国库集中支付", region=league)
    database = TargetDatabase.objects.create(
        target=target, name="业务库", dialect="sqlite", database=str(tmp_path / "target.sqlite3")
    )
    schedule = CheckSchedule.objects.create(database=database, cron="0 2 * * *")
    objects = {
        "ticket": ticket,
        "own_ticket": own,
        "call": call,
        "complaint": complaint,
        "order": order,
        "target": target,
        "database": database,
        "schedule": schedule,
        **{f"user_{k}": v for k, v in users.items()},
    }
    ids = {
        "{ticket}": ticket.number,
        "{own_ticket}": own.number,
        "{call}": str(call.pk),
        "{complaint}": str(complaint.pk),
        "{order}": str(order.pk),
        "{target}": str(target.pk),
        "{database}": str(database.pk),
        "{schedule}": str(schedule.pk),
        "{unit_user}": str(users["unit"].pk),
        "{agent_user}": str(users["agent"].pk),
        "{region_league}": str(league.pk),
        "{soon}": (timezone.localdate() + timedelta(days=30)).isoformat(),
        "{var_db}": str(Path(settings.VAR_DIR) / "caiwei.sqlite3"),
    }
    return {"users": users, "objects": objects, "ids": ids, "tmp": tmp_path}


def fill(value, world):
    """Put the world's ids into a case's paths and bodies."""
    if isinstance(value, str):
        for token, text in world["ids"].items():
            value = value.replace(token, text)
        return value
    if isinstance(value, list):
        return [fill(v, world) for v in value]
    if isinstance(value, dict):
        return {fill(k, world): fill(v, world) for k, v in value.items()}
    return value


def assert_chinese(message: str, case: dict) -> None:
    assert CJK.search(message), f"not Chinese: {message!r}"
    for leak in ENGLISH_LEAKS:
        assert leak not in message, f"English text leaked: {message!r}"
    for fragment in case.get("expect", []):
        assert fragment in message, f"{fragment!r} not named in {message[:500]!r}"
    if case.get("any"):  # e.g. the field, or the route policy's "对象不存在" for an id no one can reach
        assert any(f in message for f in case["any"]), f"none of {case['any']} in {message[:500]!r}"


# --- API --------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("case", params("api.yaml"))
def test_api(case, world, token_for):
    user = world["users"][case.get("role", "pm")]
    auth = token_for(user)
    path = fill(case["path"], world)
    method = case.get("method", "get").lower()
    client = Client()
    before = snapshot(world)
    if "raw" in case:
        body = fill(expand(case["raw"]), world)
    elif "body" in case:
        body = json.dumps(fill(expand(case["body"]), world))
    else:
        body = None
    query = fill(expand(case.get("query", {})), world)
    if method == "get":
        response = client.get(path, query, **auth)
    else:
        if query:
            from urllib.parse import urlencode

            path = f"{path}?{urlencode(query, doseq=True)}"
        response = getattr(client, method)(path, body or "", content_type="application/json", **auth)
    status = response.status_code
    assert 400 <= status < 500 and status not in (401, 403), f"{status}: {response.content[:500]!r}"
    if case.get("status"):
        assert status == case["status"], response.content[:300]
    assert_chinese(response.json().get("detail", ""), case)
    assert not changed(before, snapshot(world))


# --- page forms ---------------------------------------------------------------------------------------------------


def page_errors(response) -> list[str]:
    """What a page told the user went wrong: form errors, error messages, or an htmx partial's error."""
    from django.test.utils import ContextList

    found = []
    contexts = response.context if isinstance(response.context, ContextList) else [response.context]
    for context in contexts:
        for key, value in context.flatten().items() if hasattr(context, "flatten") else []:
            if hasattr(value, "errors") and hasattr(value, "is_bound") and value.is_bound:
                for field, errors in value.errors.items():
                    label = value.fields[field].label if field in value.fields else ""
                    found += [f"{label}（{field}）：{e}" for e in errors]
            if key == "error" and isinstance(value, str) and value:
                found.append(value)
    found += [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "error"]
    return found


@pytest.mark.django_db
@pytest.mark.parametrize("case", params("forms.yaml"))
def test_form(case, world, client_for):
    client = client_for(world["users"][case.get("role", "pm")])
    path = fill(case["path"], world)
    data = fill(expand(case.get("data", {})), world)
    before = snapshot(world)
    send = client.get if case.get("method", "post") == "get" else client.post
    response = send(path, data)
    assert response.status_code < 500
    if 400 <= response.status_code < 500:
        assert response.status_code != 403, response.content[:300]
        errors = [response.content.decode(errors="replace")]
    else:
        errors = page_errors(response)
        shown = response.content[-300:].decode(errors="replace")
        assert errors, f"no error shown ({response.status_code}): {shown}"
    assert_chinese("；".join(errors), case)
    assert not changed(before, snapshot(world))


# --- ticket imports -----------------------------------------------------------------------------------------------

IMPORT_HEADER = "区划代码,受理时间,渠道,系统,类型,严重程度,标题,问题描述,联系人,单位,电话,状态"
GOOD_ROW = (
    "152502000,2026-03-02 09:15,热线,工资统发,咨询,一般,工资表导入失败,,某县教育局经办人,某县教育局,,已关闭"
)


def build_import(case: dict, folder: Path) -> Path:
    """The file of an import case: a file under cases/imports/, or text built from the case (rows, encoding)."""
    if "file" in case:
        return CASES / "imports" / case["file"]
    path = folder / case.get("name", f"{case['id']}.csv")
    if "bytes" in case:
        path.write_bytes(bytes.fromhex(case["bytes"]))
        return path
    if "sheets" in case:
        from openpyxl import Workbook

        book = Workbook()
        book.remove(book.active)
        for title, rows in case["sheets"].items():
            sheet = book.create_sheet(title)
            for row in rows:
                sheet.append([expand(c) if isinstance(c, str) else c for c in row])
        book.save(path)
        return path
    lines = [case.get("header", IMPORT_HEADER)] if case.get("header", IMPORT_HEADER) is not None else []
    lines += [GOOD_ROW if r == "GOOD" else expand(r) for r in case.get("rows", [])]
    text = "\n".join(lines) + ("\n" if lines else "")
    data = case.get("prefix", "").encode() + text.encode(case.get("encoding", "utf-8"))
    path.write_bytes(data + b"," * case.get("pad", 0))
    return path


@pytest.mark.django_db
@pytest.mark.parametrize("case", params("imports.yaml"))
def test_import(case, world):
    from caiwei.desk.importer import import_tickets

    if case.get("existing"):  # a ticket already imported once: the same row again is a duplicate
        first = build_import({"id": "first", "rows": ["GOOD"]}, world["tmp"])
        import_tickets(world["users"]["agent"], first)
    path = build_import(case, world["tmp"])
    before = snapshot(world)
    with pytest.raises(ValidationError) as info:
        import_tickets(world["users"][case.get("role", "agent")], path)
    message = "\n".join(info.value.messages)
    assert path.name in message, f"file not named: {message[:300]!r}"
    assert_chinese(message, case)
    assert not changed(before, snapshot(world))


# --- attachments ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("case", params("uploads.yaml"))
def test_upload(case, world, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for(world["users"][case.get("role", "agent")])
    size = case.get("size")
    content = (b"%PDF-1.4\n" if case.get("pdf") else b"") + (
        bytes.fromhex(case["hex"]) if "hex" in case else b"x" * (size if size is not None else 100)
    )
    upload = SimpleUploadedFile(
        expand(case["name"]), content, content_type=case.get("type", "application/pdf")
    )
    before = snapshot(world)
    response = client.post(
        fill("/desk/{ticket}/act/", world),
        {"action": "comment", "body": "见附件", "files": [upload]},
    )
    assert response.status_code < 500
    errors = page_errors(response)
    assert errors, "no error shown"
    assert_chinese("；".join(errors), case)
    assert not changed(before, snapshot(world))


# --- mail -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("case", params("mail.yaml"))
def test_mail(case, world, settings):
    from caiwei.desk import mail

    settings.CAIWEI_MAIL_MAX_MB = 1
    raw = (CASES / "mail" / case["file"]).read_bytes()
    raw += b"x" * case.get("pad", 0)
    box = mail.Mailbox("corpus", [world["objects"]["ticket"].region], world["users"]["agent"])
    before = snapshot(world)
    outcome = mail.process(raw, box, source=case["file"])
    assert outcome.status == "quarantined", outcome
    assert_chinese(outcome.reason, case)
    after = snapshot(world)
    assert after.pop("audit.AuditEvent") == before.pop("audit.AuditEvent") + 1  # the quarantine, recorded
    assert not changed(before, after)


def test_corpus_size():
    """At least 220 bad inputs across the entry points."""
    total = sum(len(load(n)) for n in ("api.yaml", "forms.yaml", "imports.yaml", "uploads.yaml", "mail.yaml"))
    assert total >= 220, total
