"""The route-policy table against the routes that exist, and every route × every role × an own and a foreign object.

The expectations come from the capability table of PRODUCT.md's roles (``accounts.roles.CAPABILITIES``) and the
region tree, not from the views: a role without the capability gets 403, a role with it gets 404 for an object of
another region (or, for budget units and banks, another requester), and no answer to any role ever carries the
text of an object outside its scope.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from caiwei.accounts.models import ApiToken
from caiwei.accounts.roles import CAPABILITIES, FINANCE_ROLES, OPS_ROLES, TRI_ADMIN_ROLES, Role
from caiwei.api import api
from caiwei.checks.models import CheckRun, CheckSchedule, RuleResult, Target, TargetDatabase
from caiwei.desk import services as desk
from caiwei.desk.models import Complaint, SlaPolicy, TicketAttachment
from caiwei.jobs.models import Job
from caiwei.web import policy
from caiwei.web.admin_site import CapabilityAdmin

OWN, FOREIGN = "152501000", "152502000"
MARK = "外区标记"  # every foreign object carries it; no answer to a user of OWN may contain it
SIBLING_MARK = "他人标记"  # another requester's ticket in OWN: units and banks must not see it
TICKET = {
    "system": "国库集中支付",
    "ticket_type": "故障",
    "severity": "一般",
    "description": "凭证状态一直为“发送中”",
    "requester_name": "演练联系人",
}


def walk(patterns, prefix="", namespace=None):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, prefix + str(p.pattern), p.namespace or namespace)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), namespace, p.name


def page_routes():
    """(route, view name) of every page; the admin answers to its own table (CapabilityAdmin)."""
    for route, namespace, name in walk(get_resolver().url_patterns):
        if namespace in ("admin", "api") and not (namespace == "api" and name.startswith("openapi")):
            continue
        yield route, f"{namespace}:{name}" if namespace else name


def api_operations():
    schema = api.get_openapi_schema()
    for path, methods in schema["paths"].items():
        for method in methods:
            yield method.upper(), path


def test_every_page_declares_a_policy():
    missing = [name for _, name in page_routes() if name not in policy.PAGES]
    assert missing == [], f"未声明访问权限的页面：{missing}"
    stale = set(policy.PAGES) - {name for _, name in page_routes()}
    assert stale == set(), f"权限表中已不存在的页面：{stale}"


def test_every_api_operation_declares_a_policy():
    operations = set(api_operations())
    assert operations, "OpenAPI 文档为空"
    assert sorted(operations - set(policy.API)) == [], "未声明访问权限的接口"
    assert sorted(set(policy.API) - operations) == [], "权限表中已不存在的接口"


def test_every_admin_screen_declares_capability_and_scope():
    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, CapabilityAdmin), model
        assert model_admin.capability or model_admin.view_capability, model
        assert model_admin.region_field is not CapabilityAdmin.region_field, f"{model} 未声明区划范围"


def test_undeclared_route_is_refused(users, client_for, monkeypatch):
    monkeypatch.delitem(policy.PAGES, "regions:list")
    assert client_for(users["sysadmin"]).get("/regions/").status_code == 403
    monkeypatch.delitem(policy.API, ("GET", "/api/regions"))
    assert client_for(users["sysadmin"]).get("/api/regions").status_code == 403


def test_api_docs_need_a_login(client):
    assert client.get("/api/openapi.json").status_code in (302, 401)
    assert client.get("/api/docs").status_code in (302, 401)


# --- the matrix ---------------------------------------------------------------------------------------------------


@pytest.fixture
def world(regions, make_user, tmp_path, settings):
    """One account per role in county OWN, and objects in OWN and in the sibling county FOREIGN."""
    settings.MEDIA_ROOT = str(tmp_path)
    # Nobody signs in with a password here; a cheap hasher keeps the 90-odd worlds of the matrix quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    people = {}
    for role in Role:
        scope = () if role in TRI_ADMIN_ROLES else (OWN,)
        people[role] = make_user(f"m_{role}", role, regions=scope)
    outsider = make_user("m_outsider", Role.AGENT, Role.PROJECT_MANAGER, Role.ENGINEER, regions=(FOREIGN,))
    other_unit = make_user("m_other_unit", Role.UNIT_USER, regions=(OWN,))

    def ticket(user, region, title):
        return desk.create_ticket(user, region=regions[region], title=title, **TICKET)

    objs = {
        "ticket": {
            "own": ticket(people[Role.UNIT_USER], OWN, "本区工单"),
            "bank": ticket(people[Role.BANK_USER], OWN, "本区银行工单"),
            "sibling": ticket(other_unit, OWN, f"同区工单{SIBLING_MARK}"),
            "foreign": ticket(outsider, FOREIGN, f"工单{MARK}"),
        }
    }
    for t in objs["ticket"].values():
        TicketAttachment.objects.create(
            ticket=t, name="a.txt", size=1, file=SimpleUploadedFile("a.txt", b"x")
        )
    objs["call"] = {
        "own": desk.log_call(people[Role.AGENT], region=regions[OWN], answered=True, caller_number="000"),
        "foreign": desk.log_call(
            outsider, region=regions[FOREIGN], answered=True, caller_number="000", caller_name=f"来电人{MARK}"
        ),
    }
    objs["complaint"] = {
        "own": Complaint.objects.create(region=regions[OWN], complainant="本区投诉人", description="慢"),
        "foreign": Complaint.objects.create(
            region=regions[FOREIGN], complainant=f"投诉人{MARK}", description="慢"
        ),
    }
    objs["policy"] = {}
    for key, code in (("own", OWN), ("foreign", FOREIGN)):
        sla_policy = SlaPolicy.objects.create(code=f"m-{key}", name=f"策略{MARK if key == 'foreign' else ''}")
        sla_policy.regions.set([regions[code]])
        sla_policy.rules.create(clock="first_response", minutes=120)
        objs["policy"][key] = sla_policy
    targets, databases, runs, results, schedules = {}, {}, {}, {}, {}
    for key, code in (("own", OWN), ("foreign", FOREIGN)):
        mark = MARK if key == "foreign" else ""
        targets[key] = Target.objects.create(name=f"对象{mark}", system="国库集中支付", region=regions[code])
        databases[key] = TargetDatabase.objects.create(
            target=targets[key],
            name=f"库{mark}",
            dialect="sqlite",
            database=str(tmp_path / f"{key}.sqlite3"),
            as_of=date(2026, 12, 31),
        )
        runs[key] = CheckRun.objects.create(database=databases[key], packs="all", as_of=date(2026, 12, 31))
        results[key] = RuleResult.objects.create(
            run=runs[key],
            rule_id="QUO-001",
            pack="quota",
            title=f"规则{mark}",
            severity="一般",
            module="额度",
        )
        schedules[key] = CheckSchedule.objects.create(database=databases[key], cron="0 2 * * *", packs="all")
    objs.update(target=targets, database=databases, run=runs, result=results, schedule=schedules)
    from caiwei.checks.custom_models import LocalRule

    objs["local_rule"] = {}
    for key, code in (("own", OWN), ("foreign", FOREIGN)):
        mark = MARK if key == "foreign" else ""
        local = LocalRule.objects.create(rule_id=f"L-M-{key}", region=regions[code])
        text = f"id: L-M-{key}\ntitle: 规则{mark}\nseverity: 一般\nmodule: 额度\nkey: [bgt_id]\nsql: SELECT bgt_id FROM ba_bgt_info\n"
        local.versions.create(number=1, text=text, sha256="0" * 64, note="新建")
        objs["local_rule"][key] = local
    from caiwei.recon.models import ReconBreak, ReconRun, ReconSignoff

    # Reconciliation: a run (January, signed-off by nobody yet), a break and a sign-off in each county; the bank user's
    # account names the bank of the own break and sign-off.
    people[Role.BANK_USER].bank_code = "B102"
    people[Role.BANK_USER].save(update_fields=["bank_code"])
    objs["recon_run"], objs["recon_break"], objs["signoff"] = {}, {}, {}
    for key, code in (("own", OWN), ("foreign", FOREIGN)):
        run = ReconRun.objects.create(
            region=regions[code],
            database=databases[key],
            period_start=date(2026, 1, 1),
            period_end=date(2026, 1, 31),
            as_of=date(2026, 1, 31),
            status=ReconRun.Status.DONE,
            message=MARK if key == "foreign" else "",
        )
        objs["recon_run"][key] = run
        objs["recon_break"][key] = ReconBreak.objects.create(
            region=regions[code],
            database=databases[key],
            fingerprint=key,
            bank_code="B102",
            kind="bank_only",
            note=f"差异{MARK}" if key == "foreign" else "本区差异",
            first_run=run,
            last_run=run,
        )
        objs["signoff"][key] = ReconSignoff.objects.create(
            region=regions[code], bank_code="B102", month=date(2026, 1, 1), run=run
        )
    # Bank file sources: a watched folder (empty, under the watch root of this test) in each county.
    from caiwei.recon.formats import LAYOUT_DIR
    from caiwei.recon.models import BankFileSource, BankFormat

    settings.CAIWEI_RECON_WATCH_DIR = str(tmp_path / "recon-watch")
    settings.CAIWEI_RECON_INBOX_DIR = str(tmp_path / "recon-inbox")
    fmt = BankFormat.objects.create(
        code="m-csv", name="格式", definition=(LAYOUT_DIR / "csv-gbk.yaml").read_text(encoding="utf-8")
    )
    objs["recon_source"] = {}
    for key, code in (("own", OWN), ("foreign", FOREIGN)):
        (tmp_path / "recon-watch" / key).mkdir(parents=True)
        objs["recon_source"][key] = BankFileSource.objects.create(
            region=regions[code],
            name=f"来源{MARK}" if key == "foreign" else "本区来源",
            bank_code="B102",
            bank_format=fmt,
            kind=BankFileSource.Kind.FOLDER,
            directory=key,
        )
    # 查询台: a grant, a logged query and a pending export request on each county's database.
    # Monitoring: an item (a TCP port nobody listens on: a probe is refused at once), a rule, a maintenance window
    # and a group robot in each county.
    from datetime import timedelta

    from django.utils import timezone

    from caiwei.dataops.models_console import QueryExport, QueryGrant, QueryLog

    objs["query_grant"], objs["query_log"], objs["query_export"] = {}, {}, {}
    for key in ("own", "foreign"):
        mark = MARK if key == "foreign" else ""
        who = people[Role.ENGINEER] if key == "own" else outsider
        objs["query_grant"][key] = QueryGrant.objects.create(
            user=who,
            database=databases[key],
            tables=["pay_voucher"],
            valid_until=timezone.now() + timedelta(days=1),
            reason=f"授权{mark}",
        )
        log = QueryLog.objects.create(user=who, database=databases[key], sql=f"SELECT '{mark}' AS x")
        objs["query_log"][key] = log
        objs["query_export"][key] = QueryExport.objects.create(
            log=log, requested_by=who, reason=f"导出{mark}"
        )
    # 数据运维 · 备份: a backup (with a range restore and a drill) and a backup schedule in each county.
    from caiwei.dataops.models_backups import Backup, BackupSchedule, DrillRecord, RangeRestore

    for name in ("backup", "backup_schedule", "restore", "drill"):
        objs[name] = {}
    for key in ("own", "foreign"):
        mark = MARK if key == "foreign" else ""
        item = Backup.objects.create(
            database=databases[key], dialect="sqlite", status=Backup.Status.DONE, counts={f"t{mark}": 1}
        )
        objs["backup"][key] = item
        objs["backup_schedule"][key] = BackupSchedule.objects.create(
            database=databases[key], cron="0 2 * * *"
        )
        objs["restore"][key] = RangeRestore.objects.create(backup=item, table=f"t{mark}")
        objs["drill"][key] = DrillRecord.objects.create(database=databases[key], backup=item, error=mark)
    from caiwei.monitor.models import AlertRule, Item, MaintenanceWindow, Webhook

    for kind in ("monitor_item", "monitor_rule", "monitor_window", "monitor_webhook"):
        objs[kind] = {}
    for key, code in (("own", OWN), ("foreign", FOREIGN)):
        mark = MARK if key == "foreign" else ""
        objs["monitor_item"][key] = Item.objects.create(
            region=regions[code],
            system="国库集中支付",
            name=f"监控项{mark}",
            kind="tcp",
            config={"host": "127.0.0.1", "port": 9},
            timeout_s=2,
        )
        objs["monitor_rule"][key] = AlertRule.objects.create(
            name=f"规则{mark}", region=regions[code], metric="up", op="=", threshold=0
        )
        window = MaintenanceWindow.objects.create(
            region=regions[code],
            reason=f"维护{mark}",
            starts_at=timezone.now() + timedelta(days=1),
            ends_at=timezone.now() + timedelta(days=1, hours=2),
        )
        objs["monitor_window"][key] = window
        hook = Webhook(region=regions[code], name=f"机器人{mark}", kind="wecom")
        hook.set_url("http://127.0.0.1:9/robot")
        hook.save()
        objs["monitor_webhook"][key] = hook
    # 巡检: a plan with one manual item and an open run of it in each county.
    from caiwei.inspections.models import Plan, PlanItem, Run, RunItem

    objs["inspect_plan"], objs["inspect_run"] = {}, {}
    for key, code in (("own", OWN), ("foreign", FOREIGN)):
        mark = MARK if key == "foreign" else ""
        plan = Plan.objects.create(
            region=regions[code], system="国库集中支付", name=f"巡检计划{mark}", valid_from=date(2026, 1, 1)
        )
        PlanItem.objects.create(plan=plan, name=f"模拟支付{mark}", kind="manual", times="09:00")
        objs["inspect_plan"][key] = plan
        slot = timezone.now() - timedelta(days=30)
        run = Run.objects.create(plan=plan, slot=slot, deadline=slot + timedelta(hours=2))
        RunItem.objects.create(run=run, name=f"模拟支付{mark}", kind="manual")
        objs["inspect_run"][key] = run
    # 数据变更: a draft change on a PostgreSQL database (never connected to here) in each county.
    from caiwei.dataops.models_changes import ChangeRequest

    objs["data_change"] = {}
    for key in ("own", "foreign"):
        mark = MARK if key == "foreign" else ""
        writable = TargetDatabase.objects.create(
            target=targets[key], name=f"写库{mark}", dialect="postgresql", host="127.0.0.1", database="none"
        )
        objs["data_change"][key] = ChangeRequest.objects.create(
            database=writable,
            title=f"变更{mark}",
            reason="修正",
            sql="UPDATE t SET a = 1 WHERE id = 1",
            author=people[Role.ENGINEER] if key == "own" else outsider,
        )
    objs["job"] = {
        "foreign": Job.objects.create(
            kind="t", title=f"任务{MARK}", created_by=outsider, region=regions[FOREIGN]
        ),
    }
    return {"people": people, "objs": objs, "outsider": outsider, "regions": regions, "mine": {}}


OPS_AND_FINANCE = tuple(OPS_ROLES | FINANCE_ROLES)
KIND_BY_QUERYSET = {
    "caiwei.desk.views.visible_tickets": "ticket",
    "caiwei.web.policy.own_tickets": "ticket",
    "caiwei.web.policy.visible_calls": "call",
    "caiwei.web.policy.visible_complaints": "complaint",
    "caiwei.desk.manage_views.visible_policies": "policy",
    "caiwei.jobs.views.visible_jobs": "job",
    "caiwei.web.policy.own_tokens": "token",
    "caiwei.checks.services.visible_runs": "run",
    "caiwei.checks.services.visible_results": "result",
    "caiwei.checks.services.visible_targets": "target",
    "caiwei.checks.services.visible_databases": "database",
    "caiwei.checks.services.visible_schedules": "schedule",
    "caiwei.checks.custom_services.visible_local_rules": "local_rule",
    "caiwei.recon.services.visible_runs": "recon_run",
    "caiwei.recon.services.visible_breaks": "recon_break",
    "caiwei.recon.services.statement_runs": "recon_run",
    "caiwei.recon.services.visible_signoffs": "signoff",
    "caiwei.recon.services.visible_sources": "recon_source",
    "caiwei.dataops.services_console.visible_grants": "query_grant",
    "caiwei.dataops.services_console.visible_logs": "query_log",
    "caiwei.dataops.services_console.visible_exports": "query_export",
    "caiwei.dataops.services_backups.visible_backups": "backup",
    "caiwei.dataops.services_backups.visible_schedules": "backup_schedule",
    "caiwei.dataops.services_backups.visible_restores": "restore",
    "caiwei.dataops.services_backups.visible_drills": "drill",
    "caiwei.monitor.services.visible_items": "monitor_item",
    "caiwei.monitor.services.visible_rules": "monitor_rule",
    "caiwei.monitor.services.visible_windows": "monitor_window",
    "caiwei.monitor.services.visible_webhooks": "monitor_webhook",
    "caiwei.dataops.changes_services.visible_changes": "data_change",
    "caiwei.inspections.services.visible_plans": "inspect_plan",
    "caiwei.inspections.services.visible_runs": "inspect_run",
}
UNBOUND = 987654321
FIXED = {"username": "m_engineer", "code": "workday", "name": "none.csv"}


def own_key(kind: str, role: str) -> str:
    if kind == "ticket" and role == Role.BANK_USER:
        return "bank"
    return "own"


def object_value(world, kind, which, user):
    """The object a URL names: the user's own (a ticket they raised, a job they started, their token), or
    another region's, or another requester's in their region."""
    if kind == "token":
        owner = user if which == "own" else world["outsider"]
        return ApiToken.issue(owner, "matrix")[0].pk
    if which in ("own", "bank") and kind in ("ticket", "job"):
        key = (kind, user.pk)
        if key not in world["mine"]:
            if kind == "job":
                world["mine"][key] = Job.objects.create(kind="t", title="本人任务", created_by=user).pk
            elif user.can("desk.create") and user.has_role(*OPS_AND_FINANCE):
                mine = desk.create_ticket(
                    user, region=world["regions"][OWN], title="本人登记的工单", **TICKET
                )
                type(mine).objects.filter(pk=mine.pk).update(requester=user)  # raised for themselves
                TicketAttachment.objects.create(
                    ticket=mine, name="a.txt", size=1, file=SimpleUploadedFile("a.txt", b"x")
                )
                world["mine"][key] = mine.number
            else:
                world["mine"][key] = world["objs"]["ticket"][which].number
        return world["mine"][key]
    obj = world["objs"][kind][which]
    return obj.number if kind == "ticket" else obj.pk


def fill(route: str, rule: policy.Policy, world, which: str, role: str, user) -> str | None:
    """The route with its keywords filled: declared objects from ``which``, the rest from FIXED."""
    values = {}
    for obj in rule.objs:
        kind = KIND_BY_QUERYSET[obj.queryset]
        values[obj.kwarg] = object_value(world, kind, own_key(kind, role) if which == "own" else which, user)
    names = re.findall(r"[<{](?:[^>:}]+:)?([^>}]+)[>}]", route)
    for name in names:
        if name in values:
            continue
        if name == "pk" and "attachment" in route or "files/<int:pk>" in route:
            number = values.get("number")
            values[name] = TicketAttachment.objects.filter(ticket__number=number).values_list(
                "pk", flat=True
            )[0]
        elif name == "pk" and "grant" in route:
            values[name] = world["people"][Role.ENGINEER].pk
        elif name in FIXED:
            values[name] = FIXED[name]
        else:
            # An id of a global object (no region to scope by): a missing one still shows the capability check.
            values[name] = UNBOUND
    if which == "foreign" and not rule.objs:
        return None
    url = re.sub(r"[<{](?:[^>:}]+:)?([^>}]+)[>}]", lambda m: str(values[m.group(1)]), route)
    return url if url.startswith("/") else "/" + url


def call(client: Client, method: str, url: str):
    if method == "GET":
        response = client.get(url)
        if response.status_code == 405:
            response = client.post(url, {})
        return response
    return client.generic(method, url, json.dumps({}), content_type="application/json")


def expected_denial(rule: policy.Policy, role: str) -> bool:
    # The sandbox is the league's: the county accounts of this world may not see it whatever their role.
    return not rule.allows_role_set({role}) or bool(rule.gate)


def cells():
    for route, name in sorted(page_routes()):
        rule = policy.PAGES[name]
        if rule.access == policy.PUBLIC:
            continue
        yield "GET", route, rule
    for method, path in sorted(api_operations()):
        rule = policy.API[(method, path)]
        if rule.access == policy.PUBLIC:
            continue
        yield method, path, rule


def test_route_role_matrix(world, client_for):
    """Every declared route × every role × (own object, another region's, another requester's): one world, so
    the thousands of cells run in about a minute; every hole is listed, not just the first."""
    holes, count = [], 0
    clients = {role: client_for(world["people"][role]) for role in Role}
    for method, route, rule in cells():
        for role in Role:
            user = world["people"][role]
            client = clients[role]
            whiches = ("own", "foreign") + (
                ("sibling",) if any(o.kwarg == "number" for o in rule.objs) else ()
            )
            for which in whiches:
                url = fill(route, rule, world, which, role, user)
                if url is None:
                    continue
                count += 1
                response = call(client, method, url)
                status = response.status_code
                body = "" if response.streaming else response.content.decode("utf-8", "replace")
                if status >= 500:
                    holes.append(f"{role} {which} {method} {url}: {status}")
                elif expected_denial(rule, role):
                    if status != 403:
                        holes.append(f"{role} {which} {method} {url}: 应为 403，得 {status}")
                elif which == "foreign" or (which == "sibling" and role not in _sees_siblings("sibling")):
                    if status not in (403, 404):
                        holes.append(f"{role} {which} {method} {url}: 应为 404，得 {status}")
                elif (
                    which == "own"
                    and status in (401, 403, 404)
                    and not (status == 404 and str(UNBOUND) in url)
                ):
                    holes.append(f"{role} own {method} {url}: 应可访问，得 {status}")
                if rule.scope != "全局" and MARK in body:
                    holes.append(f"{role} {which} {method} {url}: 回应含外区对象")
                if rule.scope != "全局" and SIBLING_MARK in body and role not in _sees_siblings("sibling"):
                    holes.append(f"{role} {which} {method} {url}: 回应含他人提出的工单")
    print(f"路由 {len(list(cells()))} 个，矩阵单元 {count} 个，漏洞 {len(holes)} 个")
    assert count > 1000
    assert holes == []


def _sees_siblings(which: str) -> frozenset[str]:
    """Those who may open another requester's ticket in their own region: everybody but units and banks."""
    if which == "sibling":
        return frozenset(CAPABILITIES["desk.view"])
    return frozenset()


def test_list_answers_never_leak_foreign_objects(world, client_for):
    """Every list page and list operation, for every role that may call it: no object of another region."""
    leaks = []
    for role in Role:
        client = client_for(world["people"][role])
        for route, name in page_routes():
            rule = policy.PAGES[name]
            if rule.objs or "<" in route or rule.scope == "全局" or not rule.allows_role_set({role}):
                continue
            response = client.get("/" + route)
            body = "" if response.streaming else response.content.decode("utf-8", "replace")
            if response.status_code < 400 and (
                MARK in body or (SIBLING_MARK in body and role not in _sees_siblings("sibling"))
            ):
                leaks.append(f"{role} /{route}")
    assert leaks == []


# --- the admin ----------------------------------------------------------------------------------------------------


def test_admin_matrix(world, client_for):
    """Each registered screen × role: entry only with its capability; another region's objects neither listed nor
    opened; a role with no screen gets a Chinese 403, not a loop back to the login."""
    holes = []
    objs = world["objs"]
    foreign_by_model = {
        Complaint: objs["complaint"]["foreign"],
        Target: objs["target"]["foreign"],
        CheckSchedule: objs["schedule"]["foreign"],
    }
    for role in Role:
        user = world["people"][role]
        client = client_for(user)
        index = client.get("/admin/")
        any_screen = any(
            ma.has_module_permission(type("R", (), {"user": user})()) for ma in admin.site._registry.values()
        )
        if not any_screen and index.status_code != 403:
            holes.append(f"{role} /admin/: 应为 403，得 {index.status_code}")
        for model, model_admin in admin.site._registry.items():
            info = model._meta.app_label, model._meta.model_name
            changelist = client.get(reverse("admin:{}_{}_changelist".format(*info)))
            allowed = model_admin.has_module_permission(type("R", (), {"user": user})())
            if not allowed and changelist.status_code not in (403, 302):
                holes.append(f"{role} {model.__name__} 列表：应拒绝，得 {changelist.status_code}")
            if allowed and model_admin.region_field and MARK in changelist.content.decode():
                holes.append(f"{role} {model.__name__} 列表含外区对象")
            foreign = foreign_by_model.get(model)
            if foreign is not None:
                page = client.get(reverse("admin:{}_{}_change".format(*info), args=[foreign.pk]))
                if page.status_code == 200:
                    holes.append(f"{role} {model.__name__} 外区对象可打开")
    assert holes == []


def test_county_staff_cannot_reach_league_rows_in_the_admin(world, client_for, regions):
    """Finding 4 as reported: a county 项目经理 read and edited league complaints; a county engineer saw league
    database paths and added schedules on them."""
    league = regions["152500000"]
    complaint = Complaint.objects.create(region=league, complainant="盟本级投诉人", description="慢")
    target = Target.objects.create(name="盟本级对象", system="国库集中支付", region=league)
    database = TargetDatabase.objects.create(
        target=target,
        name="盟本级库",
        dialect="sqlite",
        database="/srv/league/finance.sqlite3",
        as_of=date(2026, 12, 31),
    )
    pm = client_for(world["people"][Role.PROJECT_MANAGER])
    assert "盟本级投诉人" not in pm.get(reverse("admin:desk_complaint_changelist")).content.decode()
    change = reverse("admin:desk_complaint_change", args=[complaint.pk])
    assert pm.get(change).status_code != 200
    pm.post(change, {"region": league.pk, "complainant": "改", "description": "改", "valid": "true"})
    complaint.refresh_from_db()
    assert complaint.complainant == "盟本级投诉人" and complaint.valid is None
    engineer = client_for(world["people"][Role.ENGINEER])
    listing = engineer.get(reverse("admin:checks_target_changelist")).content.decode()
    assert "/srv/league/" not in listing and "盟本级对象" not in listing
    assert engineer.get(reverse("admin:checks_target_change", args=[target.pk])).status_code != 200
    added = engineer.post(
        reverse("admin:checks_checkschedule_add"),
        {"database": database.pk, "cron": "0 2 * * *", "packs": "all"},
    )
    assert added.status_code == 200  # the form comes back with an error: that database is not a choice
    assert not CheckSchedule.objects.filter(database=database).exists()


def test_admin_foreign_keys_offer_only_visible_objects(world, client_for):
    pm = world["people"][Role.PROJECT_MANAGER]
    page = client_for(pm).get(reverse("admin:desk_complaint_add"))
    assert page.status_code == 200
    assert "锡林浩特市" not in page.content.decode()  # FOREIGN's name is not offered as a region


def test_error_pages_are_chinese_with_navigation(users, client_for):
    client = client_for(users["unit"])
    denied = client.get("/audit/")
    assert denied.status_code == 403
    page = denied.content.decode()
    assert "无权访问" in page and 'href="/"' in page and "我的工单" in page  # the navigation of the role
    missing = client.get("/desk/GD000000000000/")
    assert missing.status_code == 404 and "不存在" in missing.content.decode()
    admin_loop = client.get("/admin/")
    assert admin_loop.status_code == 403 and "配置管理中没有您可用的页面" in admin_loop.content.decode()


def test_links_a_role_cannot_follow_are_not_shown(users, client_for):
    page = client_for(users["agent"]).get("/regions/").content.decode()
    assert "/admin/regions/region/" not in page
    page = client_for(users["sysadmin"]).get("/regions/").content.decode()
    assert "/admin/regions/region/" in page


def test_api_answers_are_not_cached(users, client_for):
    response = client_for(users["agent"]).get("/api/desk/tickets")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
