"""路由权限表: every URL and every API operation declares who may call it and which objects it reaches.

One table, enforced in one place (``PolicyMiddleware``), before any view runs:

- ``access`` is ``PUBLIC`` (no login), ``LOGIN`` (any signed-in account) or a tuple of capabilities (any of them).
- ``obj`` names the URL keyword that points at an object and the function that lists the objects the user may
  reach (region scoping, "only my own", ...). A keyword naming an object outside that set answers 404, the
  same as an object that does not exist, so ids of other regions cannot be probed.
- ``scope`` says in words how the answer is narrowed (shown in docs and used by the route × role matrix test).

A route that is not in the table is refused (deny by default) and the test over the resolver and the OpenAPI
document fails, so a new page or operation cannot ship without a declared policy. The views keep their own
checks as a second lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string

from caiwei.accounts.roles import Capability as C

PUBLIC = "public"
LOGIN = "login"


@dataclass(frozen=True)
class Obj:
    """The URL keyword ``kwarg`` must name an object in ``queryset(user)`` (looked up by ``lookup``)."""

    kwarg: str
    queryset: str  # dotted path of a function user -> QuerySet
    lookup: str = "pk"

    def reachable(self, user, value) -> bool:
        qs = import_string(self.queryset)(user)
        try:
            return qs.filter(**{self.lookup: value}).exists()
        except (ValueError, TypeError, ValidationError, OverflowError):
            return False


@dataclass(frozen=True)
class Policy:
    access: str | tuple[str, ...]
    scope: str = "全局"
    objs: tuple[Obj, ...] = field(default_factory=tuple)
    gate: str = ""  # dotted path of a function user -> bool for routes over one whole object (the sandbox)

    @property
    def capabilities(self) -> tuple[str, ...]:
        return () if isinstance(self.access, str) else self.access

    def allows_role_set(self, roles: set[str]) -> bool:
        """Whether an account holding ``roles`` passes the capability part (objects aside)."""
        from caiwei.accounts.roles import CAPABILITIES

        if self.access in (PUBLIC, LOGIN):
            return True
        return any(roles & CAPABILITIES[c] for c in self.capabilities)


def P(*capabilities: str, scope: str = "全局", objs: tuple[Obj, ...] = (), gate: str = "") -> Policy:
    return Policy(tuple(capabilities), scope, objs, gate)


SANDBOX = "演练库所属盟市（授权须含该盟市）"
SANDBOX_GATE = "caiwei.sandbox.service.can_see"


# Object sets, by the function that lists what a user may reach.
def visible_calls(user):
    from caiwei.desk.models import HotlineCall

    return HotlineCall.objects.visible_to(user)


def own_tickets(user):
    """Tickets the user raised (confirming a solution and rating are the requester's)."""
    from caiwei.desk.views import visible_tickets

    return visible_tickets(user).filter(requester=user)


def visible_complaints(user):
    from caiwei.desk.models import Complaint

    return Complaint.objects.visible_to(user)


def own_tokens(user):
    return user.api_tokens.all()


TICKET = Obj("number", "caiwei.desk.views.visible_tickets", "number")
OWN_TICKET = Obj("number", "caiwei.web.policy.own_tickets", "number")
CALL = Obj("pk", "caiwei.web.policy.visible_calls")
JOB = Obj("pk", "caiwei.jobs.views.visible_jobs")
OWN_TOKEN = Obj("pk", "caiwei.web.policy.own_tokens")
RUN = Obj("pk", "caiwei.checks.services.visible_runs")
RESULT = Obj("pk", "caiwei.checks.services.visible_results")
TARGET = Obj("target_pk", "caiwei.checks.services.visible_targets")
DATABASE = Obj("pk", "caiwei.checks.services.visible_databases")
SCHEDULE = Obj("pk", "caiwei.checks.services.visible_schedules")
LOCAL_RULE = Obj("pk", "caiwei.checks.custom_services.visible_local_rules")
LOCAL_DECIDE = (
    "按授权区划；批准、驳回限该区划的项目经理，且不是该版本的编写人（checks.custom_services.decide）"
)
REGION = "按授权区划（含下级）"
RECON_RUN = Obj("pk", "caiwei.recon.services.visible_runs")
RECON_BREAK = Obj("pk", "caiwei.recon.services.visible_breaks")
RECON_SOURCE = Obj("pk", "caiwei.recon.services.visible_sources")
RECON_SCOPE = "按授权区划（含下级）；银行用户只见本行（账号的代理银行编码）的差异与文件"
COMPLAINT = Obj("pk", "caiwei.web.policy.visible_complaints")
SLA_POLICY = Obj("pk", "caiwei.desk.manage_views.visible_policies")
POLICY_SCOPE = "适用区划全在授权内的策略；未指定区划的全辖策略只读，授权覆盖全辖者可改"
OWN = "本人"
STATEMENT_RUN = Obj("pk", "caiwei.recon.services.statement_runs")
SIGNOFF = Obj("signoff_id", "caiwei.recon.services.visible_signoffs")
STATEMENTS = "按授权区划；银行用户只见本人账号所属银行的对账单与签认"
SIGNING = "按授权区划；银行用户只签本人账号所属银行，财政用户须有该区划授权，同一人不能签两方"
QUERY_GRANT = Obj("pk", "caiwei.dataops.services_console.visible_grants")
QUERY_LOG = Obj("pk", "caiwei.dataops.services_console.visible_logs")
QUERY_EXPORT = Obj("pk", "caiwei.dataops.services_console.visible_exports")
QUERY_SCOPE = "本人有有效查询授权、且在授权区划内的库"
QUERY_DECIDE = "按授权区划；申请人以外的项目经理或财政审批人"
BACKUP = Obj("pk", "caiwei.dataops.services_backups.visible_backups")
BACKUP_SCHEDULE = Obj("pk", "caiwei.dataops.services_backups.visible_schedules")
RESTORE = Obj("pk", "caiwei.dataops.services_backups.visible_restores")
DRILL = Obj("pk", "caiwei.dataops.services_backups.visible_drills")
DATA_SCOPE = "按授权区划（目标数据库所属运维对象的区划）"
MONITOR_ITEM = Obj("pk", "caiwei.monitor.services.visible_items")
MONITOR_RULE = Obj("pk", "caiwei.monitor.services.visible_rules")
MONITOR_WINDOW = Obj("pk", "caiwei.monitor.services.visible_windows")
MONITOR_WEBHOOK = Obj("pk", "caiwei.monitor.services.visible_webhooks")
INSPECT_PLAN = Obj("pk", "caiwei.inspections.services.visible_plans")
INSPECT_RUN = Obj("pk", "caiwei.inspections.services.visible_runs")
MONITOR_RULES = "授权区划的规则与全辖规则；全辖规则只有授权覆盖全辖者可改"
DATA_CHANGE_OBJ = Obj("pk", "caiwei.dataops.changes_services.visible_changes")
DATA_CHANGE_DECIDE = "按授权区划；提出人以外的财政审批人（dataops.changes_services.decide）"

# Pages, by URL name (namespace:name).
PAGES: dict[str, Policy] = {
    "home": Policy(LOGIN, "按授权区划"),
    "login": Policy(PUBLIC),
    "logout": Policy(PUBLIC),
    "healthz": Policy(PUBLIC),
    "favicon": Policy(PUBLIC),
    "accounts:profile": Policy(LOGIN, OWN),
    "accounts:revoke_token": Policy(LOGIN, OWN, (OWN_TOKEN,)),
    "accounts:grants": P(C.GRANT),
    "accounts:grant_edit": P(C.GRANT),
    # The second sign-in step runs before the session is logged in: its own pending state is the check.
    "accounts:login_code": Policy(PUBLIC, "密码已通过、尚待动态口令的本会话"),
    "accounts:login_enrol": Policy(PUBLIC, "密码已通过、尚待绑定动态口令的本会话"),
    "accounts:otp": Policy(LOGIN, OWN),
    "accounts:requests": P(C.APPROVE_CHANGES),
    "accounts:request_decide": P(
        C.APPROVE_CHANGES, scope="提出人与对象以外、另一职责的三员（accounts.services.may_decide）"
    ),
    "audit:events": P(C.READ_AUDIT),
    "audit:export": P(C.READ_AUDIT),
    "audit:verify": P(C.READ_AUDIT),
    "audit:seals": P(C.READ_AUDIT),
    "regions:list": P(C.VIEW_REGIONS, scope=REGION),
    "bizcalendar:index": P(C.VIEW_CALENDAR),
    "bizcalendar:calculate": P(C.VIEW_CALENDAR),
    "bizcalendar:notice": P(C.MANAGE_CALENDAR),
    "jobs:list": P(C.VIEW_JOBS, scope="本人发起的，项目经理另见授权区划内的"),
    "jobs:detail": P(C.VIEW_JOBS, scope="本人发起的，项目经理另见授权区划内的", objs=(JOB,)),
    "sandbox:index": P(C.VIEW_SANDBOX, scope=SANDBOX, gate=SANDBOX_GATE),
    "sandbox:generate": P(C.MANAGE_SANDBOX, scope=SANDBOX, gate=SANDBOX_GATE),
    "sandbox:manifest": P(C.VIEW_SANDBOX, scope=SANDBOX, gate=SANDBOX_GATE),
    "sandbox:bank_file": P(C.VIEW_SANDBOX, scope=SANDBOX, gate=SANDBOX_GATE),
    "desk:queue": P(C.DESK_VIEW, scope=REGION),
    "desk:new": P(C.DESK_CREATE, scope=REGION),
    "desk:calls": P(C.DESK_WORK, scope=REGION),
    "desk:mail": P(C.DESK_WORK, scope=REGION),
    "desk:mine": P(C.DESK_CREATE, scope=OWN),
    "desk:dashboard": P(C.DESK_VIEW, scope=REGION),
    "desk:report": P(C.DESK_VIEW, scope=REGION),
    "desk:report_pdf": P(C.DESK_VIEW, scope=REGION),
    "desk:manage_policies": P(C.DESK_DECIDE, scope=POLICY_SCOPE),
    "desk:manage_policy_new": P(C.DESK_DECIDE, scope=POLICY_SCOPE),
    "desk:manage_policy_edit": P(C.DESK_DECIDE, scope=POLICY_SCOPE, objs=(SLA_POLICY,)),
    "desk:manage_complaints": P(C.DESK_DECIDE, scope=REGION),
    "desk:manage_complaint": P(C.DESK_DECIDE, scope=REGION, objs=(COMPLAINT,)),
    "desk:manage_report_settings": P(C.DESK_DECIDE, scope=REGION),
    "desk:call_back": P(C.DESK_WORK, scope=REGION, objs=(CALL,)),
    "desk:detail": P(C.DESK_CREATE, scope="按授权区划；预算单位与银行只见本人提出的", objs=(TICKET,)),
    "desk:act": P(C.DESK_WORK, scope=REGION, objs=(TICKET,)),
    "desk:confirm": P(C.DESK_CREATE, scope="本人提出的", objs=(OWN_TICKET,)),
    "desk:reply": P(C.DESK_CREATE, scope="本人提出的", objs=(OWN_TICKET,)),
    "desk:attachment": P(C.DESK_CREATE, scope="按授权区划；预算单位与银行只见本人提出的", objs=(TICKET,)),
    "checks:index": P(C.CHECKS_VIEW, scope=REGION),
    "checks:start": P(C.CHECKS_RUN, scope=REGION),
    "checks:rules": P(C.CHECKS_VIEW),
    "checks:run": P(C.CHECKS_VIEW, scope=REGION, objs=(RUN,)),
    "checks:run_export": P(C.CHECKS_VIEW, scope=REGION, objs=(RUN,)),
    "checks:result": P(C.CHECKS_VIEW, scope=REGION, objs=(RESULT,)),
    "checks:result_ticket": P(C.CHECKS_RUN, scope=REGION, objs=(RESULT,)),
    "checks:target_new": P(C.MANAGE_TARGETS, scope=REGION),
    "checks:database_new": P(C.MANAGE_TARGETS, scope=REGION, objs=(TARGET,)),
    "checks:database_edit": P(C.MANAGE_TARGETS, scope=REGION, objs=(DATABASE,)),
    "checks:database_test": P(C.MANAGE_TARGETS, scope=REGION, objs=(DATABASE,)),
    "checks:schedule_new": P(C.MANAGE_TARGETS, scope=REGION, objs=(DATABASE,)),
    "checks:schedule_change": P(C.MANAGE_TARGETS, scope=REGION, objs=(SCHEDULE,)),
    "checks:local_rules": P(C.CHECKS_VIEW, scope=REGION),
    "checks:local_rule_new": P(C.MANAGE_TARGETS, scope=REGION),
    "checks:local_rule_validate": P(C.MANAGE_TARGETS),
    "checks:local_rule_import": P(C.MANAGE_TARGETS, scope=REGION),
    "checks:local_rule": P(
        C.CHECKS_VIEW, scope="按授权区划；保存新版本需登记运维对象的权限", objs=(LOCAL_RULE,)
    ),
    "checks:local_rule_action": P(C.MANAGE_TARGETS, scope=REGION, objs=(LOCAL_RULE,)),
    "checks:local_rule_decide": P(C.MANAGE_TARGETS, scope=LOCAL_DECIDE, objs=(LOCAL_RULE,)),
    "dataops:index": P(C.DATA_VIEW, scope="按授权区划"),
    "dataops:query": P(C.DATA_QUERY, scope=QUERY_SCOPE),
    "dataops:query_run": P(C.DATA_QUERY, scope=QUERY_SCOPE),
    "dataops:query_history": P(C.DATA_QUERY, scope=REGION),
    "dataops:query_grants": P(C.DATA_GRANT, scope=REGION),
    "dataops:query_grant_revoke": P(C.DATA_GRANT, scope=REGION, objs=(QUERY_GRANT,)),
    "dataops:query_classes_index": P(C.DATA_QUERY, scope=REGION),
    "dataops:query_classes": P(
        C.DATA_QUERY, scope="按授权区划；修改须有授予查询权限的能力", objs=(DATABASE,)
    ),
    "dataops:query_export_new": P(C.DATA_QUERY, scope="本人的查询", objs=(QUERY_LOG,)),
    "dataops:query_exports": P(C.DATA_QUERY, C.DATA_GRANT, C.DATA_APPROVE, scope=REGION),
    "dataops:query_export_decide": P(C.DATA_GRANT, C.DATA_APPROVE, scope=QUERY_DECIDE, objs=(QUERY_EXPORT,)),
    "dataops:query_export_download": P(C.DATA_QUERY, scope="本人提出、已批准的申请", objs=(QUERY_EXPORT,)),
    "checks:local_rule_export": P(C.CHECKS_VIEW, scope=REGION, objs=(LOCAL_RULE,)),
    "recon:index": P(C.RECON_VIEW, scope=RECON_SCOPE),
    "recon:start": P(C.RECON_RUN, scope=REGION),
    "recon:run": P(C.RECON_VIEW, scope=RECON_SCOPE, objs=(RECON_RUN,)),
    "recon:breaks": P(C.RECON_VIEW, scope=RECON_SCOPE),
    "recon:break": P(C.RECON_VIEW, scope=RECON_SCOPE, objs=(RECON_BREAK,)),
    "recon:break_action": P(C.RECON_RUN, scope=REGION, objs=(RECON_BREAK,)),
    "recon:break_comment": P(C.RECON_VIEW, scope=RECON_SCOPE, objs=(RECON_BREAK,)),
    "recon:formats": P(C.RECON_FORMATS),
    "recon:format_new": P(C.RECON_FORMATS),
    "recon:format": P(C.RECON_FORMATS),
    "recon:sources": P(C.RECON_FORMATS, scope=REGION),
    "recon:source_new": P(C.RECON_FORMATS, scope=REGION),
    "recon:source": P(C.RECON_FORMATS, scope=REGION, objs=(RECON_SOURCE,)),
    "recon:source_pull": P(C.RECON_FORMATS, scope=REGION, objs=(RECON_SOURCE,)),
    "recon_statements:index": P(C.RECON_VIEW, scope=STATEMENTS),
    "recon_statements:run": P(C.RECON_VIEW, scope=STATEMENTS, objs=(STATEMENT_RUN,)),
    "recon_statements:download": P(C.RECON_VIEW, scope=STATEMENTS, objs=(STATEMENT_RUN,)),
    "recon_statements:sign": P(C.RECON_SIGN, scope=SIGNING, objs=(STATEMENT_RUN,)),
    "dataops:backups": P(C.DATA_VIEW, scope=DATA_SCOPE),
    "dataops:backup_run": P(C.DATA_BACKUP, scope=DATA_SCOPE),
    "dataops:backup": P(C.DATA_VIEW, scope=DATA_SCOPE, objs=(BACKUP,)),
    "dataops:backup_verify": P(C.DATA_BACKUP, scope=DATA_SCOPE, objs=(BACKUP,)),
    "dataops:restore_start": P(C.DATA_BACKUP, scope=DATA_SCOPE, objs=(BACKUP,)),
    "dataops:backup_schedule_new": P(C.DATA_BACKUP, scope=DATA_SCOPE),
    "dataops:backup_schedule": P(C.DATA_BACKUP, scope=DATA_SCOPE, objs=(BACKUP_SCHEDULE,)),
    "dataops:restore": P(C.DATA_VIEW, scope=DATA_SCOPE, objs=(RESTORE,)),
    "dataops:restore_change": P(C.DATA_CHANGE, scope=DATA_SCOPE, objs=(RESTORE,)),
    "dataops:restore_close": P(C.DATA_BACKUP, scope=DATA_SCOPE, objs=(RESTORE,)),
    "dataops:drills": P(C.DATA_VIEW, scope=DATA_SCOPE),
    "dataops:drill_start": P(C.DATA_BACKUP, scope=DATA_SCOPE),
    "dataops:drill": P(C.DATA_VIEW, scope=DATA_SCOPE, objs=(DRILL,)),
    "dataops:drill_report": P(C.DATA_VIEW, scope=DATA_SCOPE, objs=(DRILL,)),
    "monitor:board": P(C.MONITOR_VIEW, scope=REGION),
    "monitor:wall": P(C.MONITOR_VIEW, scope=REGION),
    "monitor:alerts": P(C.MONITOR_VIEW, scope=REGION),
    "monitor:items": P(C.MONITOR_VIEW, scope=REGION),
    "monitor:item_new": P(C.MONITOR_MANAGE, scope=REGION),
    "monitor:item": P(C.MONITOR_VIEW, scope=REGION, objs=(MONITOR_ITEM,)),
    "monitor:item_edit": P(C.MONITOR_MANAGE, scope=REGION, objs=(MONITOR_ITEM,)),
    "monitor:item_run": P(C.MONITOR_MANAGE, scope=REGION, objs=(MONITOR_ITEM,)),
    "monitor:item_token": P(C.MONITOR_MANAGE, scope=REGION, objs=(MONITOR_ITEM,)),
    "monitor:item_delete": P(C.MONITOR_MANAGE, scope=REGION, objs=(MONITOR_ITEM,)),
    "monitor:rules": P(C.MONITOR_VIEW, scope=MONITOR_RULES),
    "monitor:rule_new": P(C.MONITOR_MANAGE, scope=MONITOR_RULES),
    "monitor:rule": P(C.MONITOR_MANAGE, scope=MONITOR_RULES, objs=(MONITOR_RULE,)),
    "monitor:windows": P(C.MONITOR_VIEW, scope=REGION),
    "monitor:window_new": P(C.MONITOR_MANAGE, scope=REGION),
    "monitor:window": P(C.MONITOR_MANAGE, scope=REGION, objs=(MONITOR_WINDOW,)),
    "monitor:window_delete": P(C.MONITOR_MANAGE, scope=REGION, objs=(MONITOR_WINDOW,)),
    "monitor:webhooks": P(C.MONITOR_MANAGE, scope=REGION),
    "monitor:webhook_new": P(C.MONITOR_MANAGE, scope=REGION),
    "monitor:webhook": P(C.MONITOR_MANAGE, scope=REGION, objs=(MONITOR_WEBHOOK,)),
    # A finance job's dead man's switch: no login (the token is the secret), the same answer for every token.
    "monitor:heartbeat": Policy(PUBLIC, "持有心跳令牌的后台任务；令牌存在与否回应相同"),
    "inspections:calendar": P(C.INSPECT_VIEW, scope=REGION),
    "inspections:tick": P(C.INSPECT_RUN, scope=REGION),
    "inspections:plans": P(C.INSPECT_VIEW, scope=REGION),
    "inspections:plan_new": P(C.INSPECT_PLAN, scope=REGION),
    "inspections:plan": P(C.INSPECT_VIEW, scope=REGION, objs=(INSPECT_PLAN,)),
    "inspections:plan_item": P(C.INSPECT_PLAN, scope=REGION, objs=(INSPECT_PLAN,)),
    "inspections:runs": P(C.INSPECT_VIEW, scope=REGION),
    "inspections:run": P(C.INSPECT_VIEW, scope=REGION, objs=(INSPECT_RUN,)),
    "inspections:run_record": P(C.INSPECT_RUN, scope=REGION, objs=(INSPECT_RUN,)),
    "inspections:run_rerun": P(C.INSPECT_RUN, scope=REGION, objs=(INSPECT_RUN,)),
    "inspections:run_finish": P(C.INSPECT_RUN, scope=REGION, objs=(INSPECT_RUN,)),
    "inspections:run_ticket": P(C.INSPECT_RUN, scope=REGION, objs=(INSPECT_RUN,)),
    "inspections:run_report": P(C.INSPECT_VIEW, scope=REGION, objs=(INSPECT_RUN,)),
    "inspections:run_shot": P(C.INSPECT_VIEW, scope=REGION, objs=(INSPECT_RUN,)),
    "dataops:changes": P(C.DATA_VIEW, scope=REGION),
    "dataops:change_new": P(C.DATA_CHANGE, scope=REGION),
    "dataops:change_review": P(C.DATA_CHANGE, scope=REGION),
    "dataops:change": P(C.DATA_VIEW, scope=REGION, objs=(DATA_CHANGE_OBJ,)),
    "dataops:change_edit": P(C.DATA_CHANGE, scope=REGION, objs=(DATA_CHANGE_OBJ,)),
    "dataops:change_submit": P(C.DATA_CHANGE, scope=REGION, objs=(DATA_CHANGE_OBJ,)),
    "dataops:change_decide": P(C.DATA_APPROVE, scope=DATA_CHANGE_DECIDE, objs=(DATA_CHANGE_OBJ,)),
    "dataops:change_execute": P(C.DATA_CHANGE, scope=REGION, objs=(DATA_CHANGE_OBJ,)),
    "dataops:change_rollback": P(C.DATA_CHANGE, scope=REGION, objs=(DATA_CHANGE_OBJ,)),
    # The OpenAPI document and its viewer: behind login, like everything else that describes the system.
    "api:openapi-json": Policy(LOGIN),
    "api:openapi-view": Policy(LOGIN),
}


def admits(rule: Policy, user) -> bool:
    """Whether ``user`` passes ``rule`` before any object is named (for links: a link it fails is not shown)."""
    if rule.access == PUBLIC:
        return True
    if not user.is_authenticated:
        return False
    if rule.capabilities and not any(user.can(c) for c in rule.capabilities):
        return False
    return not rule.gate or import_string(rule.gate)(user)


def _api(kwarg: str, obj: Obj) -> Obj:
    return Obj(kwarg, obj.queryset, obj.lookup)


# API operations, by (method, OpenAPI path).
API: dict[tuple[str, str], Policy] = {
    ("POST", "/api/auth/token"): Policy(PUBLIC),
    ("GET", "/api/accounts/me"): Policy(LOGIN, OWN),
    ("GET", "/api/accounts/users"): P(C.MANAGE_ACCOUNTS, C.GRANT),
    ("POST", "/api/accounts/users"): P(C.MANAGE_ACCOUNTS),
    ("PUT", "/api/accounts/users/{username}/roles"): P(C.GRANT),
    ("PUT", "/api/accounts/users/{username}/regions"): P(C.GRANT),
    ("POST", "/api/accounts/users/{username}/unlock"): P(C.MANAGE_ACCOUNTS),
    ("POST", "/api/accounts/users/{username}/status"): P(C.MANAGE_ACCOUNTS),
    ("POST", "/api/accounts/users/{username}/password"): P(C.MANAGE_ACCOUNTS),
    ("GET", "/api/accounts/requests"): P(C.APPROVE_CHANGES),
    ("POST", "/api/accounts/requests/{request_id}/decision"): P(
        C.APPROVE_CHANGES, scope="批准、驳回：提出人与对象以外、另一职责的三员；撤回：提出人"
    ),
    ("GET", "/api/regions"): P(C.VIEW_REGIONS, scope=REGION),
    ("GET", "/api/audit/events"): P(C.READ_AUDIT),
    ("GET", "/api/audit/export"): P(C.READ_AUDIT),
    ("POST", "/api/audit/verify"): P(C.READ_AUDIT),
    ("GET", "/api/audit/seals"): P(C.READ_AUDIT),
    ("GET", "/api/jobs"): P(C.VIEW_JOBS, scope="本人发起的，项目经理另见授权区划内的"),
    ("GET", "/api/jobs/{job_id}"): P(
        C.VIEW_JOBS, scope="本人发起的，项目经理另见授权区划内的", objs=(_api("job_id", JOB),)
    ),
    ("GET", "/api/calendar"): P(C.VIEW_CALENDAR),
    ("GET", "/api/calendar/{code}/due"): P(C.VIEW_CALENDAR),
    ("GET", "/api/calendar/{code}/between"): P(C.VIEW_CALENDAR),
    ("POST", "/api/calendar/notices"): P(C.MANAGE_CALENDAR),
    ("GET", "/api/sandbox"): P(C.VIEW_SANDBOX, scope=SANDBOX, gate=SANDBOX_GATE),
    ("POST", "/api/sandbox/generate"): P(C.MANAGE_SANDBOX, scope=SANDBOX, gate=SANDBOX_GATE),
    ("GET", "/api/desk/tickets"): P(C.DESK_CREATE, scope="按授权区划；预算单位与银行只见本人提出的"),
    ("POST", "/api/desk/tickets"): P(C.DESK_CREATE, scope=REGION),
    ("GET", "/api/desk/tickets/{number}"): P(
        C.DESK_CREATE, scope="按授权区划；预算单位与银行只见本人提出的", objs=(TICKET,)
    ),
    ("POST", "/api/desk/tickets/{number}/status"): P(
        C.DESK_CREATE, scope="按授权区划；预算单位与银行只见本人提出的", objs=(TICKET,)
    ),
    ("POST", "/api/desk/tickets/{number}/rating"): P(C.DESK_CREATE, scope="本人提出的", objs=(OWN_TICKET,)),
    ("POST", "/api/desk/tickets/{number}/replies"): P(C.DESK_CREATE, scope="本人提出的", objs=(OWN_TICKET,)),
    ("POST", "/api/desk/tickets/{number}/comments"): P(
        C.DESK_CREATE, scope="按授权区划；预算单位与银行只见本人提出的", objs=(TICKET,)
    ),
    ("GET", "/api/desk/tickets/{number}/comments"): P(
        C.DESK_CREATE, scope="按授权区划；预算单位与银行只见本人提出的，且只见回复", objs=(TICKET,)
    ),
    ("POST", "/api/desk/tickets/{number}/attachments"): P(
        C.DESK_CREATE, scope="按授权区划；预算单位与银行只见本人提出的", objs=(TICKET,)
    ),
    ("POST", "/api/desk/tickets/{number}/assign"): P(C.DESK_WORK, scope=REGION, objs=(TICKET,)),
    ("POST", "/api/desk/tickets/{number}/vendor-orders"): P(C.DESK_WORK, scope=REGION, objs=(TICKET,)),
    ("POST", "/api/desk/calls"): P(C.DESK_WORK, scope=REGION),
    ("GET", "/api/desk/calls"): P(C.DESK_WORK, scope=REGION),
    ("POST", "/api/desk/calls/{call_id}/callback"): P(
        C.DESK_WORK, scope=REGION, objs=(_api("call_id", CALL),)
    ),
    ("GET", "/api/desk/kpis"): P(C.DESK_VIEW, scope=REGION),
    ("POST", "/api/desk/complaints"): P(C.DESK_WORK, scope=REGION),
    ("POST", "/api/desk/complaints/{complaint_id}/decision"): P(
        C.DESK_DECIDE, scope=REGION, objs=(Obj("complaint_id", "caiwei.web.policy.visible_complaints"),)
    ),
    ("GET", "/api/desk/report"): P(C.DESK_VIEW, scope=REGION),
    ("GET", "/api/desk/complaints"): P(C.DESK_DECIDE, scope=REGION),
    ("GET", "/api/desk/policies"): P(C.DESK_DECIDE, scope=POLICY_SCOPE),
    ("POST", "/api/desk/policies"): P(C.DESK_DECIDE, scope=POLICY_SCOPE),
    ("PUT", "/api/desk/policies/{policy_id}"): P(
        C.DESK_DECIDE, scope=POLICY_SCOPE, objs=(_api("policy_id", SLA_POLICY),)
    ),
    ("GET", "/api/checks/packs"): P(C.CHECKS_VIEW),
    ("GET", "/api/checks/targets"): P(C.CHECKS_VIEW, scope=REGION),
    ("POST", "/api/checks/targets"): P(C.MANAGE_TARGETS, scope=REGION),
    ("POST", "/api/checks/targets/{target_id}/databases"): P(
        C.MANAGE_TARGETS, scope=REGION, objs=(_api("target_id", TARGET),)
    ),
    ("PATCH", "/api/checks/databases/{database_id}"): P(
        C.MANAGE_TARGETS, scope=REGION, objs=(_api("database_id", DATABASE),)
    ),
    ("POST", "/api/checks/databases/{database_id}/test"): P(
        C.MANAGE_TARGETS, scope=REGION, objs=(_api("database_id", DATABASE),)
    ),
    ("POST", "/api/checks/databases/{database_id}/schedules"): P(
        C.MANAGE_TARGETS, scope=REGION, objs=(_api("database_id", DATABASE),)
    ),
    ("POST", "/api/checks/schedules/{schedule_id}"): P(
        C.MANAGE_TARGETS, scope=REGION, objs=(_api("schedule_id", SCHEDULE),)
    ),
    ("POST", "/api/checks/runs"): P(C.CHECKS_RUN, scope=REGION),
    ("GET", "/api/checks/runs"): P(C.CHECKS_VIEW, scope=REGION),
    ("GET", "/api/checks/runs/{run_id}"): P(C.CHECKS_VIEW, scope=REGION, objs=(_api("run_id", RUN),)),
    ("GET", "/api/checks/results/{result_id}"): P(
        C.CHECKS_VIEW, scope=REGION, objs=(_api("result_id", RESULT),)
    ),
    ("POST", "/api/checks/results/{result_id}/ticket"): P(
        C.CHECKS_RUN, scope=REGION, objs=(_api("result_id", RESULT),)
    ),
    ("GET", "/api/checks/local-rules"): P(C.CHECKS_VIEW, scope=REGION),
    ("POST", "/api/checks/local-rules"): P(C.MANAGE_TARGETS, scope=REGION),
    ("POST", "/api/checks/local-rules/copy"): P(C.MANAGE_TARGETS, scope=REGION),
    ("POST", "/api/checks/local-rules/validate"): P(C.MANAGE_TARGETS),
    ("POST", "/api/checks/local-rules/import"): P(C.MANAGE_TARGETS, scope=REGION),
    ("GET", "/api/checks/local-rules/{rule_id}"): P(
        C.CHECKS_VIEW, scope=REGION, objs=(_api("rule_id", LOCAL_RULE),)
    ),
    ("POST", "/api/checks/local-rules/{rule_id}/versions"): P(
        C.MANAGE_TARGETS, scope=REGION, objs=(_api("rule_id", LOCAL_RULE),)
    ),
    ("POST", "/api/checks/local-rules/{rule_id}/rollback"): P(
        C.MANAGE_TARGETS, scope=REGION, objs=(_api("rule_id", LOCAL_RULE),)
    ),
    ("POST", "/api/checks/local-rules/{rule_id}/submit"): P(
        C.MANAGE_TARGETS, scope=REGION, objs=(_api("rule_id", LOCAL_RULE),)
    ),
    ("POST", "/api/checks/local-rules/{rule_id}/decision"): P(
        C.MANAGE_TARGETS, scope=LOCAL_DECIDE, objs=(_api("rule_id", LOCAL_RULE),)
    ),
    ("GET", "/api/checks/local-rules/{rule_id}/diff"): P(
        C.CHECKS_VIEW, scope=REGION, objs=(_api("rule_id", LOCAL_RULE),)
    ),
    ("GET", "/api/checks/local-rules/{rule_id}/export"): P(
        C.CHECKS_VIEW, scope=REGION, objs=(_api("rule_id", LOCAL_RULE),)
    ),
    ("GET", "/api/recon/runs"): P(C.RECON_VIEW, scope=RECON_SCOPE),
    ("POST", "/api/recon/runs"): P(C.RECON_RUN, scope=REGION),
    ("GET", "/api/recon/runs/{run_id}"): P(
        C.RECON_VIEW, scope=RECON_SCOPE, objs=(_api("run_id", RECON_RUN),)
    ),
    ("GET", "/api/recon/breaks"): P(C.RECON_VIEW, scope=RECON_SCOPE),
    ("GET", "/api/recon/breaks/{break_id}"): P(
        C.RECON_VIEW, scope=RECON_SCOPE, objs=(_api("break_id", RECON_BREAK),)
    ),
    ("PATCH", "/api/recon/breaks/{break_id}"): P(
        C.RECON_RUN, scope=REGION, objs=(_api("break_id", RECON_BREAK),)
    ),
    ("POST", "/api/recon/breaks/{break_id}/comments"): P(
        C.RECON_VIEW, scope=RECON_SCOPE, objs=(_api("break_id", RECON_BREAK),)
    ),
    ("POST", "/api/recon/breaks/{break_id}/resolve"): P(
        C.RECON_RUN, scope=REGION, objs=(_api("break_id", RECON_BREAK),)
    ),
    ("POST", "/api/recon/breaks/{break_id}/ticket"): P(
        C.RECON_RUN, scope=REGION, objs=(_api("break_id", RECON_BREAK),)
    ),
    ("GET", "/api/recon/formats"): P(C.RECON_FORMATS),
    ("GET", "/api/recon/formats/{format_id}"): P(C.RECON_FORMATS),
    ("PUT", "/api/recon/formats/{format_id}"): P(C.RECON_FORMATS),
    ("POST", "/api/recon/formats/{format_id}/preview"): P(C.RECON_FORMATS),
    ("GET", "/api/recon/sources"): P(C.RECON_FORMATS, scope=REGION),
    ("POST", "/api/recon/sources"): P(C.RECON_FORMATS, scope=REGION),
    ("GET", "/api/recon/sources/{source_id}"): P(
        C.RECON_FORMATS, scope=REGION, objs=(_api("source_id", RECON_SOURCE),)
    ),
    ("PUT", "/api/recon/sources/{source_id}"): P(
        C.RECON_FORMATS, scope=REGION, objs=(_api("source_id", RECON_SOURCE),)
    ),
    ("POST", "/api/recon/sources/{source_id}/pull"): P(
        C.RECON_FORMATS, scope=REGION, objs=(_api("source_id", RECON_SOURCE),)
    ),
    ("GET", "/api/recon/statements/{run_id}"): P(
        C.RECON_VIEW, scope=STATEMENTS, objs=(_api("run_id", STATEMENT_RUN),)
    ),
    ("GET", "/api/recon/statements/{run_id}/statement"): P(
        C.RECON_VIEW, scope=STATEMENTS, objs=(_api("run_id", STATEMENT_RUN),)
    ),
    ("GET", "/api/recon/statements/{run_id}/file"): P(
        C.RECON_VIEW, scope=STATEMENTS, objs=(_api("run_id", STATEMENT_RUN),)
    ),
    ("GET", "/api/recon/signoffs"): P(C.RECON_VIEW, scope=STATEMENTS),
    ("POST", "/api/recon/signoffs"): P(C.RECON_SIGN, scope=SIGNING),
    ("GET", "/api/recon/signoffs/{signoff_id}"): P(C.RECON_VIEW, scope=STATEMENTS, objs=(SIGNOFF,)),
    ("POST", "/api/data/query/run"): P(C.DATA_QUERY, scope=QUERY_SCOPE),
    ("GET", "/api/data/query/history"): P(C.DATA_QUERY, scope=REGION),
    ("GET", "/api/data/query/grants"): P(C.DATA_GRANT, scope=REGION),
    ("POST", "/api/data/query/grants"): P(C.DATA_GRANT, scope=REGION),
    ("POST", "/api/data/query/grants/{grant_id}/revoke"): P(
        C.DATA_GRANT, scope=REGION, objs=(_api("grant_id", QUERY_GRANT),)
    ),
    ("GET", "/api/data/query/classifications/{database_id}"): P(
        C.DATA_QUERY, scope=REGION, objs=(_api("database_id", DATABASE),)
    ),
    ("PUT", "/api/data/query/classifications/{database_id}"): P(
        C.DATA_GRANT, scope=REGION, objs=(_api("database_id", DATABASE),)
    ),
    ("GET", "/api/data/query/exports"): P(C.DATA_QUERY, C.DATA_GRANT, C.DATA_APPROVE, scope=REGION),
    ("POST", "/api/data/query/exports"): P(C.DATA_QUERY, scope="本人的查询"),
    ("POST", "/api/data/query/exports/{export_id}/decide"): P(
        C.DATA_GRANT, C.DATA_APPROVE, scope=QUERY_DECIDE, objs=(_api("export_id", QUERY_EXPORT),)
    ),
    ("GET", "/api/data/query/exports/{export_id}/file"): P(
        C.DATA_QUERY, scope="本人提出、已批准的申请", objs=(_api("export_id", QUERY_EXPORT),)
    ),
    ("GET", "/api/data/backups"): P(C.DATA_VIEW, scope=DATA_SCOPE),
    ("POST", "/api/data/backups"): P(C.DATA_BACKUP, scope=DATA_SCOPE),
    ("GET", "/api/data/backups/schedules"): P(C.DATA_VIEW, scope=DATA_SCOPE),
    ("POST", "/api/data/backups/schedules"): P(C.DATA_BACKUP, scope=DATA_SCOPE),
    ("POST", "/api/data/backups/schedules/{schedule_id}"): P(
        C.DATA_BACKUP, scope=DATA_SCOPE, objs=(_api("schedule_id", BACKUP_SCHEDULE),)
    ),
    ("POST", "/api/data/backups/prune"): P(C.DATA_BACKUP, scope=DATA_SCOPE),
    ("GET", "/api/data/backups/{backup_id}"): P(
        C.DATA_VIEW, scope=DATA_SCOPE, objs=(_api("backup_id", BACKUP),)
    ),
    ("POST", "/api/data/backups/{backup_id}/verify"): P(
        C.DATA_BACKUP, scope=DATA_SCOPE, objs=(_api("backup_id", BACKUP),)
    ),
    ("POST", "/api/data/backups/{backup_id}/restores"): P(
        C.DATA_BACKUP, scope=DATA_SCOPE, objs=(_api("backup_id", BACKUP),)
    ),
    ("GET", "/api/data/backups/restores/{restore_id}"): P(
        C.DATA_VIEW, scope=DATA_SCOPE, objs=(_api("restore_id", RESTORE),)
    ),
    ("POST", "/api/data/backups/restores/{restore_id}/change"): P(
        C.DATA_CHANGE, scope=DATA_SCOPE, objs=(_api("restore_id", RESTORE),)
    ),
    ("POST", "/api/data/backups/restores/{restore_id}/close"): P(
        C.DATA_BACKUP, scope=DATA_SCOPE, objs=(_api("restore_id", RESTORE),)
    ),
    ("GET", "/api/data/backups/drills"): P(C.DATA_VIEW, scope=DATA_SCOPE),
    ("POST", "/api/data/backups/drills"): P(C.DATA_BACKUP, scope=DATA_SCOPE),
    ("GET", "/api/data/backups/drills/{drill_id}"): P(
        C.DATA_VIEW, scope=DATA_SCOPE, objs=(_api("drill_id", DRILL),)
    ),
    ("GET", "/api/data/backups/drills/{drill_id}/report"): P(
        C.DATA_VIEW, scope=DATA_SCOPE, objs=(_api("drill_id", DRILL),)
    ),
    ("GET", "/api/monitor/items"): P(C.MONITOR_VIEW, scope=REGION),
    ("POST", "/api/monitor/items"): P(C.MONITOR_MANAGE, scope=REGION),
    ("GET", "/api/monitor/items/{item_id}"): P(
        C.MONITOR_VIEW, scope=REGION, objs=(_api("item_id", MONITOR_ITEM),)
    ),
    ("PUT", "/api/monitor/items/{item_id}"): P(
        C.MONITOR_MANAGE, scope=REGION, objs=(_api("item_id", MONITOR_ITEM),)
    ),
    ("POST", "/api/monitor/items/{item_id}/run"): P(
        C.MONITOR_MANAGE, scope=REGION, objs=(_api("item_id", MONITOR_ITEM),)
    ),
    ("GET", "/api/monitor/items/{item_id}/results"): P(
        C.MONITOR_VIEW, scope=REGION, objs=(_api("item_id", MONITOR_ITEM),)
    ),
    ("GET", "/api/monitor/alerts"): P(C.MONITOR_VIEW, scope=REGION),
    ("GET", "/api/monitor/rules"): P(C.MONITOR_VIEW, scope=MONITOR_RULES),
    ("POST", "/api/monitor/rules"): P(C.MONITOR_MANAGE, scope=MONITOR_RULES),
    ("GET", "/api/monitor/windows"): P(C.MONITOR_VIEW, scope=REGION),
    ("POST", "/api/monitor/windows"): P(C.MONITOR_MANAGE, scope=REGION),
    ("GET", "/api/monitor/board"): P(C.MONITOR_VIEW, scope=REGION),
    # Prometheus scrapes with a bearer token of an account holding monitor.view (or a signed-in session).
    ("GET", "/api/monitor/metrics"): P(C.MONITOR_VIEW, scope=REGION),
    ("GET", "/api/inspections/plans"): P(C.INSPECT_VIEW, scope=REGION),
    ("POST", "/api/inspections/plans"): P(C.INSPECT_PLAN, scope=REGION),
    ("GET", "/api/inspections/plans/{plan_id}"): P(
        C.INSPECT_VIEW, scope=REGION, objs=(_api("plan_id", INSPECT_PLAN),)
    ),
    ("POST", "/api/inspections/plans/{plan_id}/items"): P(
        C.INSPECT_PLAN, scope=REGION, objs=(_api("plan_id", INSPECT_PLAN),)
    ),
    ("GET", "/api/inspections/calendar"): P(C.INSPECT_VIEW, scope=REGION),
    ("POST", "/api/inspections/tick"): P(C.INSPECT_RUN, scope=REGION),
    ("GET", "/api/inspections/runs"): P(C.INSPECT_VIEW, scope=REGION),
    ("GET", "/api/inspections/runs/{run_id}"): P(
        C.INSPECT_VIEW, scope=REGION, objs=(_api("run_id", INSPECT_RUN),)
    ),
    ("POST", "/api/inspections/runs/{run_id}/items/{item_id}"): P(
        C.INSPECT_RUN, scope=REGION, objs=(_api("run_id", INSPECT_RUN),)
    ),
    ("POST", "/api/inspections/runs/{run_id}/finish"): P(
        C.INSPECT_RUN, scope=REGION, objs=(_api("run_id", INSPECT_RUN),)
    ),
    ("GET", "/api/inspections/runs/{run_id}/report"): P(
        C.INSPECT_VIEW, scope=REGION, objs=(_api("run_id", INSPECT_RUN),)
    ),
    ("GET", "/api/data/changes"): P(C.DATA_VIEW, scope=REGION),
    ("POST", "/api/data/changes"): P(C.DATA_CHANGE, scope=REGION),
    ("POST", "/api/data/changes/review"): P(C.DATA_CHANGE, scope=REGION),
    ("GET", "/api/data/changes/{change_id}"): P(
        C.DATA_VIEW, scope=REGION, objs=(_api("change_id", DATA_CHANGE_OBJ),)
    ),
    ("POST", "/api/data/changes/{change_id}/submit"): P(
        C.DATA_CHANGE, scope=REGION, objs=(_api("change_id", DATA_CHANGE_OBJ),)
    ),
    ("POST", "/api/data/changes/{change_id}/decision"): P(
        C.DATA_APPROVE, scope=DATA_CHANGE_DECIDE, objs=(_api("change_id", DATA_CHANGE_OBJ),)
    ),
    ("POST", "/api/data/changes/{change_id}/execute"): P(
        C.DATA_CHANGE, scope=REGION, objs=(_api("change_id", DATA_CHANGE_OBJ),)
    ),
    ("POST", "/api/data/changes/{change_id}/rollback"): P(
        C.DATA_CHANGE, scope=REGION, objs=(_api("change_id", DATA_CHANGE_OBJ),)
    ),
}

_PARAM = re.compile(r"<(?:[^>:]+:)?([^>]+)>")


def api_path(route: str) -> str:
    """A Django route of the API (``api/desk/tickets/<number>``) as its OpenAPI path (``/api/desk/tickets/{number}``)."""
    return "/" + _PARAM.sub(r"{\1}", route)


ADMIN = Policy(LOGIN, "由各配置页面的能力与区划范围决定（web.admin_site.CapabilityAdmin）")


def policy_for(match, method: str) -> Policy | None:
    """The declared policy of a resolved request, or None when the route declares none."""
    if match.namespace == "admin" or match.app_name == "admin":
        return ADMIN
    if match.namespace == "api" and match.url_name not in ("openapi-json", "openapi-view"):
        return API.get((method.upper(), api_path(match.route)))
    return PAGES.get(match.view_name)
