"""The query console for the platform: grants, column classification, running a query (logged, audited, masked) and
exports approved by another person. Pages (views_console.py), the API (api_console.py) and the command
(cli_console.py) are thin adapters over these functions."""

from __future__ import annotations

import io
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from caiwei.accounts.roles import Capability
from caiwei.audit.log import record
from caiwei.audit.models import AuditAction
from caiwei.checks.models import TargetDatabase
from caiwei.checks.services import visible_databases

from . import console
from .models_console import KIND_CHOICES, ColumnClass, QueryExport, QueryGrant, QueryLog

MAX_ROWS = 5000
MAX_TIMEOUT_S = 300
MAX_GRANT_DAYS = 366
KINDS = dict(KIND_CHOICES)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- who sees what ----------------------------------------------------------------------------------------------


def schema() -> dict[str, list[str]]:
    return console.logical_schema()


def grantable_databases(user):
    """Databases the user may grant on, or classify: those of the targets in their regions."""
    return visible_databases(user).exclude(dialect__in=["oracle", "dm"])


def visible_grants(user):
    """A grant holder sees grants on the databases of their regions; everybody sees their own."""
    qs = QueryGrant.objects.select_related("user", "database", "database__target", "granted_by")
    if user.can(Capability.DATA_GRANT):
        return qs.filter(database__in=visible_databases(user))
    return qs.filter(user=user, database__in=visible_databases(user))


def visible_logs(user):
    """The query log of the databases in the user's regions (others' statements are shown with number-shaped
    literals masked, see shown_sql)."""
    qs = QueryLog.objects.select_related("user", "database", "database__target", "ticket")
    return qs.filter(database__in=visible_databases(user))


def shown_sql(log: QueryLog, user) -> str:
    """A logged statement as shown to ``user``: another person's has its ID-, mobile- and account-shaped literals
    masked (a lookup by a known number is that person's business)."""
    if user is not None and log.user_id == user.pk:
        return log.sql
    return console.mask_shape(log.sql)[0]


def may_decide_exports(user) -> bool:
    return user.can(Capability.DATA_GRANT) or user.can(Capability.DATA_APPROVE)


def visible_exports(user):
    """Export requests on the databases of the user's regions."""
    qs = QueryExport.objects.select_related(
        "log", "log__database", "log__database__target", "requested_by", "decided_by"
    )
    return qs.filter(log__database__in=visible_databases(user))


def active_grant(user, database) -> QueryGrant | None:
    return (
        QueryGrant.objects.filter(
            user=user, database=database, revoked_at__isnull=True, valid_until__gt=timezone.now()
        )
        .order_by("-created_at", "-pk")
        .first()
    )


def query_databases(user):
    """The databases the user may query now: in their regions, with an active grant."""
    if not user.can(Capability.DATA_QUERY):
        return TargetDatabase.objects.none()
    granted = QueryGrant.objects.filter(
        user=user, revoked_at__isnull=True, valid_until__gt=timezone.now()
    ).values("database")
    return visible_databases(user).filter(pk__in=granted)


# --- classification ---------------------------------------------------------------------------------------------


def ensure_classification(database) -> None:
    """A database's classification starts from the column names of the logical schema (once)."""
    if ColumnClass.objects.filter(database=database).exists():
        return
    rows = [
        ColumnClass(database=database, table=t, column=c, kind=k)
        for t, cols in console.default_classification(schema()).items()
        for c, k in cols.items()
    ]
    ColumnClass.objects.bulk_create(rows, ignore_conflicts=True)


def classification(database) -> dict[str, dict[str, str]]:
    ensure_classification(database)
    out: dict[str, dict[str, str]] = {}
    for row in ColumnClass.objects.filter(database=database).exclude(kind="none"):
        out.setdefault(row.table, {})[row.column] = row.kind
    return out


def set_column_class(user, database, table: str, column: str, kind: str) -> ColumnClass:
    if not user.can(Capability.DATA_GRANT):
        raise PermissionDenied("只有持有“授予查询权限”能力的人员可以修改列分级")
    if not grantable_databases(user).filter(pk=database.pk).exists():
        raise PermissionDenied("该数据库不在您的授权区划内")
    table, column, kind = (table or "").strip().lower(), (column or "").strip().lower(), (kind or "").strip()
    known = schema()
    if table not in known:
        raise ValidationError({"table": f"逻辑表 {table or '（空）'} 不存在"})
    if column not in known[table]:
        raise ValidationError({"column": f"逻辑表 {table} 没有列 {column or '（空）'}"})
    if kind not in KINDS:
        raise ValidationError({"kind": f"分级 {kind or '（空）'} 应为 {'、'.join(KINDS)} 之一"})
    ensure_classification(database)
    with transaction.atomic():
        row = (
            ColumnClass.objects.select_for_update()
            .filter(database=database, table=table, column=column)
            .first()
        )
        before = row.kind if row else None
        if row is None:
            row = ColumnClass(database=database, table=table, column=column)
        row.kind, row.updated_by, row.updated_at = kind, user, timezone.now()
        row.save()
        record(
            AuditAction.UPDATE,
            obj=row,
            before={"kind": before},
            after={"kind": kind},
            detail={"database": database.pk, "column": f"{table}.{column}"},
        )
    return row


# --- grants -----------------------------------------------------------------------------------------------------


def grant(
    granter,
    *,
    user,
    database,
    tables: list[str],
    valid_until,
    row_limit: int = 200,
    timeout_s: int = 30,
    reason: str = "",
) -> QueryGrant:
    if not granter.can(Capability.DATA_GRANT):
        raise PermissionDenied("只有持有“授予查询权限”能力的人员可以授权")
    if database is None or not grantable_databases(granter).filter(pk=database.pk).exists():
        raise ValidationError({"database": "数据库不存在或不在您的授权区划内"})
    problems = {}
    if user is None or not user.is_active:
        problems["user"] = "被授权人不存在或已停用"
    elif user.pk == granter.pk:
        problems["user"] = "不能给自己授权，请由另一位项目经理授予"
    elif not user.can(Capability.DATA_QUERY):
        problems["user"] = f"{user} 的角色不能使用查询台（需二线工程师、项目经理或财政业务人员）"
    known = schema()
    tables = [str(t).strip().lower() for t in (tables or []) if str(t).strip()]
    unknown = [t for t in tables if t not in known]
    if not tables:
        problems["tables"] = "请至少选择一张逻辑表"
    elif unknown:
        problems["tables"] = f"未知的逻辑表 {'、'.join(unknown)}"
    if not isinstance(row_limit, int) or not 1 <= row_limit <= MAX_ROWS:
        problems["row_limit"] = f"返回行数上限应为 1 至 {MAX_ROWS}"
    if not isinstance(timeout_s, int) or not 1 <= timeout_s <= MAX_TIMEOUT_S:
        problems["timeout_s"] = f"语句超时应为 1 至 {MAX_TIMEOUT_S} 秒"
    now = timezone.now()
    if valid_until is not None and timezone.is_naive(valid_until):
        valid_until = timezone.make_aware(valid_until)
    if valid_until is None or valid_until <= now:
        problems["valid_until"] = "有效期应晚于当前时间"
    elif valid_until > now + timedelta(days=MAX_GRANT_DAYS):
        problems["valid_until"] = f"有效期不能超过 {MAX_GRANT_DAYS} 天"
    if len(reason or "") > 200:
        problems["reason"] = "授权事由不能超过 200 字"
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        g = QueryGrant.objects.create(
            user=user,
            database=database,
            tables=sorted(set(tables)),
            row_limit=row_limit,
            timeout_s=timeout_s,
            valid_until=valid_until,
            reason=reason or "",
            granted_by=granter,
        )
        record(AuditAction.CREATE, obj=g, detail={"user": user.username, "tables": g.tables})
    return g


def revoke(user, g: QueryGrant) -> QueryGrant:
    if not user.can(Capability.DATA_GRANT):
        raise PermissionDenied("只有持有“授予查询权限”能力的人员可以收回授权")
    if g.revoked_at is not None:
        raise ValidationError("该授权已收回")
    with transaction.atomic():
        g.revoked_at, g.revoked_by = timezone.now(), user
        g.save(update_fields=["revoked_at", "revoked_by"])
        record(AuditAction.UPDATE, obj=g, detail={"revoked": True})
    return g


# --- running ----------------------------------------------------------------------------------------------------


def _review(database, g: QueryGrant, sql: str):
    return console.review(
        sql,
        database.dialect,
        schema(),
        classification(database),
        tables=g.tables,
        mapping=database.get_mapping(),
        limit=g.row_limit,
    )


def run_query(user, database, sql: str, ticket=None):
    """Review and run ``sql`` for ``user`` on ``database`` under their active grant; log and audit it, refused
    or not. Returns (log, result or None, refusal text)."""
    if not user.can(Capability.DATA_QUERY):
        raise PermissionDenied("您的角色不能使用查询台")
    if database is None or not visible_databases(user).filter(pk=database.pk).exists():
        raise ValidationError({"database": "数据库不存在或不在您的授权区划内"})
    g = active_grant(user, database)
    if g is None:
        raise ValidationError({"database": f"您对 {database} 没有有效的查询授权，请联系项目经理授权"})
    sql = sql or ""
    if not sql.strip():
        raise ValidationError({"sql": "请填写 SQL"})
    if len(sql) > console.MAX_SQL:
        raise ValidationError({"sql": f"SQL 过长（超过 {console.MAX_SQL // 1000} K 字符）"})
    plan = _review(database, g, sql)
    result = None
    refusal = "" if plan.ok else plan.reason
    if plan.ok:
        try:
            engine = database.engine()
        except Exception as exc:  # noqa: BLE001 — a target that cannot be opened is an answer, not a 500
            text = console.mask_shape(str(exc)[:300])[0]
            result = console.Result(plan.columns, [], [], [], False, 0, f"无法连接数据库：{text}")
        else:
            try:
                result = console.execute(engine, plan, limit=g.row_limit, timeout_s=g.timeout_s)
            finally:
                engine.dispose()
    with transaction.atomic():
        log = QueryLog.objects.create(
            user=user,
            database=database,
            sql=sql,
            ticket=ticket,
            rows=len(result.rows) if result else 0,
            truncated=bool(result and result.truncated),
            duration_ms=result.ms if result else 0,
            masked_columns=plan.masked_columns if plan.ok else [],
            refusal=refusal,
            error=result.error if result else "",
        )
        record(
            AuditAction.CREATE,
            obj=log,
            detail={
                "database": database.pk,
                "ticket": ticket.number if ticket else None,
                "rows": log.rows,
                "refused": bool(refusal),
                "masked": log.masked_columns,
            },
        )
    return log, result, refusal


# --- exports ----------------------------------------------------------------------------------------------------


def request_export(user, log: QueryLog, reason: str) -> QueryExport:
    if log.user_id != user.pk:
        raise PermissionDenied("只能申请导出本人的查询结果")
    if log.refusal or log.error:
        raise ValidationError("被拒绝或执行出错的查询不能导出")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "请填写导出事由"})
    if len(reason) > 200:
        raise ValidationError({"reason": "导出事由不能超过 200 字"})
    with transaction.atomic():
        export = QueryExport.objects.create(log=log, requested_by=user, reason=reason)
        record(AuditAction.CREATE, obj=export, detail={"log": log.pk})
    return export


def decide_export(user, export: QueryExport, approve: bool, note: str = "") -> QueryExport:
    if not may_decide_exports(user):
        raise PermissionDenied("只有项目经理（查询授权人）或财政审批人可以审批导出")
    if export.requested_by_id == user.pk:
        raise ValidationError("不能审批本人提出的导出申请")
    if export.status != QueryExport.Status.PENDING:
        raise ValidationError(f"该申请已{export.get_status_display()}，不能再审批")
    if len(note or "") > 200:
        raise ValidationError({"note": "审批意见不能超过 200 字"})
    with transaction.atomic():
        export.status = QueryExport.Status.APPROVED if approve else QueryExport.Status.REJECTED
        export.decided_by, export.decided_at, export.note = user, timezone.now(), note or ""
        export.save(update_fields=["status", "decided_by", "decided_at", "note"])
        record(AuditAction.UPDATE, obj=export, detail={"status": export.status})
    return export


class NotReady(Exception):
    """The export cannot be downloaded now (not approved): answered 409."""


def escape_cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def export_workbook(user, export: QueryExport) -> tuple[str, bytes]:
    """The approved export as .xlsx: the query is reviewed and run again under the requester's grant (masked)."""
    from openpyxl import Workbook

    if export.status != QueryExport.Status.APPROVED:
        raise NotReady(f"该导出申请{export.get_status_display()}，批准后才能下载")
    if export.requested_by_id != user.pk:
        raise PermissionDenied("只有申请人可以下载")
    log = export.log
    g = active_grant(user, log.database)
    if g is None:
        raise ValidationError("您对该库的查询授权已失效，不能导出")
    plan = _review(log.database, g, log.sql)
    if not plan.ok:
        raise ValidationError(f"按当前的授权与列分级，该查询已不能执行：{plan.reason}")
    try:
        engine = log.database.engine()
    except Exception as exc:  # noqa: BLE001
        raise ValidationError(f"无法连接数据库：{console.mask_shape(str(exc)[:300])[0]}") from exc
    try:
        result = console.execute(engine, plan, limit=g.row_limit, timeout_s=g.timeout_s)
    finally:
        engine.dispose()
    if result.error:
        raise ValidationError(result.error)
    book = Workbook()
    sheet = book.active
    sheet.title = "查询结果"
    sheet.append([escape_cell(c) for c in result.columns])
    for row in result.rows:
        sheet.append([escape_cell(v) for v in row])
    if result.truncated:
        sheet.append([f"结果已截断：仅导出前 {g.row_limit} 行"])
    buffer = io.BytesIO()
    book.save(buffer)
    with transaction.atomic():
        QueryExport.objects.filter(pk=export.pk).update(downloads=export.downloads + 1)
        record(
            AuditAction.EXPORT,
            obj=export,
            detail={"log": log.pk, "rows": len(result.rows), "masked": plan.masked_columns},
        )
    return f"query-{log.pk}.xlsx", buffer.getvalue()
