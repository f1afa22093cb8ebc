"""数据变更 for the platform: create and review (rules of changes.py against the target), submit, approve by a
财政审批人 who is not the author, execute in the window (worker job or command), roll back from the images, and
recover attempts a crash left running. Pages, API, command and jobs all come through here."""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.audit.log import record
from caiwei.audit.models import AuditAction
from caiwei.checks import mask
from caiwei.checks.models import TargetDatabase
from caiwei.checks.services import visible_databases

from . import changes as engine
from .models_changes import ChangeAttempt, ChangeJournal, ChangeRequest, ImageChunk

log = logging.getLogger(__name__)
S = ChangeRequest.Status
WRITABLE_DIALECTS = ("postgresql", "mysql")
IMAGE_ROWS_SHOWN = 50
STEP_LABELS = {
    "created": "创建",
    "edited": "修改",
    "submitted": "提交审批",
    "approved": "批准",
    "rejected": "驳回",
    "attempt": "登记（令牌已保存）",
    "begin": "开始",
    "connect": "连接目标库、开启事务",
    "image": "读取并保存前镜像（锁定行）",
    "statement": "执行语句",
    "images": "前后镜像已保存",
    "check": "检查冲突（锁定行）",
    "restore": "按前镜像恢复",
    "commit": "写入标记并提交",
    "committed": "目标库已提交",
    "verified": "验证",
    "reverted": "影响行数不符，已回退",
    "failed": "出错，已回滚",
    "fenced": "被恢复程序判定未提交",
    "refused": "有冲突，未回滚",
    "recovered": "崩溃后恢复",
}


def visible_changes(user):
    return ChangeRequest.objects.filter(database__in=visible_databases(user)).select_related(
        "database", "database__target", "author", "approver", "ticket"
    )


def change_databases(user):
    """The databases a change may target: visible to the user, on a server the engine can write to."""
    return visible_databases(user).filter(dialect__in=WRITABLE_DIALECTS)


def rules() -> engine.Rules:
    return engine.Rules(
        forbidden=tuple(getattr(settings, "CAIWEI_CHANGE_FORBIDDEN_TABLES", engine.DEFAULT_FORBIDDEN)),
        max_rows=int(getattr(settings, "CAIWEI_CHANGE_MAX_ROWS", engine.DEFAULT_MAX_ROWS)),
    )


def _dialect(database: TargetDatabase) -> str:
    if database.dialect not in WRITABLE_DIALECTS:
        raise ValidationError(
            {
                "database": f"{database} 是 {database.get_dialect_display()} 数据库，平台只在 PostgreSQL 与 MySQL / MariaDB 上执行数据变更"
            }
        )
    return engine.SQLGLOT_DIALECT[database.dialect]


def run_review(database: TargetDatabase, sql: str, declares_ddl: bool = False) -> engine.Review:
    d = _dialect(database)
    try:
        target = database.engine()
    except Exception as exc:  # a sealed password that does not open, a refused file
        review = engine.analyse(sql, d, rules=rules(), declared_ddl=declares_ddl)
        review.findings.append(engine.Finding("error", f"无法连接目标库：{exc}"))
        return review
    try:
        return engine.review(
            sql, target, dialect=d, rules=rules(), declared_ddl=declares_ddl, timeout_s=database.timeout_s
        )
    finally:
        target.dispose()


def _own(user, database: TargetDatabase) -> None:
    if not change_databases(user).filter(pk=database.pk).exists():
        raise PermissionDenied("无权在该数据库上提出数据变更")


def fix_sql(database: TargetDatabase, fix: dict) -> str:
    """The SQL of a guided fix {table, column, value, key_columns, keys}."""
    try:
        return engine.guided_fix_sql(
            str(fix.get("table") or "").strip(),
            str(fix.get("column") or "").strip(),
            fix.get("value"),
            [str(c).strip() for c in fix.get("key_columns") or [] if str(c).strip()],
            [list(k) for k in fix.get("keys") or []],
            _dialect(database),
        )
    except engine.ChangeError as exc:
        raise ValidationError({"fix": str(exc)}) from exc


def _apply_review(change: ChangeRequest) -> engine.Review:
    review = run_review(change.database, change.sql, change.declares_ddl)
    change.findings = [f.as_dict() for f in review.findings]
    change.plan = review.plan()
    change.estimated_rows = review.estimated_rows
    if not review.ok:
        raise ValidationError({"sql": review.errors})
    return review


def _journal(change: ChangeRequest, step: str, detail: dict | None = None, by=None, attempt=None) -> None:
    # bulk_create: the journal is its own record (the change's actions are audited explicitly), no per-row audit
    ChangeJournal.objects.bulk_create(
        [ChangeJournal(change=change, attempt=attempt, step=step, detail=detail or {}, by=by)]
    )


def _audit(change: ChangeRequest, what: str, **after) -> None:
    record(
        AuditAction.UPDATE if what != "create" else AuditAction.CREATE,
        object_type="dataops.changerequest",
        object_id=str(change.pk),
        object_repr=f"{change.number} {change.title}"[:200],
        after={"action": what, "status": change.status, **after},
    )


def create_change(
    *, database, author, title, sql, reason, ticket=None, origin="", origin_ref=""
) -> ChangeRequest:
    """A draft change after the review rules (public: the backups part calls it). ValidationError (Chinese) when
    the rules refuse it; nothing is saved then."""
    if not (
        author.can(Capability.DATA_CHANGE) or (origin == "backup" and author.can(Capability.DATA_BACKUP))
    ):
        ensure(author, Capability.DATA_CHANGE, "dataops.change")
    return save_change(
        author,
        ChangeRequest(database=database, author=author, ticket=ticket, origin=origin, origin_ref=origin_ref),
        title=title,
        sql=sql,
        reason=reason,
    )


EDITABLE = (
    "database",
    "title",
    "reason",
    "sql",
    "fix",
    "declares_ddl",
    "emergency_plan",
    "rollback_plan",
    "window_start",
    "window_end",
)


def save_change(user, change: ChangeRequest, **fields) -> ChangeRequest:
    """Create or edit (草稿、待审批、已批准、执行失败): the SQL (or the guided fix's) is reviewed again; an edit of an
    approved or submitted change returns it to 待审批 with the approval cleared."""
    if change.pk is None:
        if not (
            user.can(Capability.DATA_CHANGE)
            or (change.origin == "backup" and user.can(Capability.DATA_BACKUP))
        ):
            ensure(user, Capability.DATA_CHANGE, "dataops.change")
    else:
        ensure(user, Capability.DATA_CHANGE, "dataops.change")
        change = ChangeRequest.objects.get(pk=change.pk)
        if not change.is_editable:
            raise ValidationError(f"变更处于“{change.get_status_display()}”状态，不能修改")
    for name, value in fields.items():
        if name not in EDITABLE:
            raise ValidationError({name: "不能修改该字段"})
        setattr(change, name, value)
    _own(user, change.database)
    if change.fix and not (change.sql or "").strip():
        change.sql = fix_sql(change.database, change.fix)
    change.title = (change.title or "").strip()
    if not change.title:
        raise ValidationError({"title": "请填写标题"})
    if not (change.reason or "").strip():
        raise ValidationError({"reason": "请填写变更原因"})
    if change.window_start and change.window_end and change.window_end <= change.window_start:
        raise ValidationError({"window_end": "执行窗口的结束时间应晚于开始时间"})
    _apply_review(change)
    was = change.status
    if change.pk and was in (S.APPROVED, S.PENDING, S.FAILED):
        change.status = S.PENDING if was in (S.APPROVED, S.PENDING) else S.DRAFT
        change.approver, change.approved_at = None, None
    change.updated_at = timezone.now()
    change.full_clean(exclude=["author", "approver"])
    creating = change.pk is None
    with transaction.atomic():
        change.save()
        _journal(change, "created" if creating else "edited", {"estimated_rows": change.estimated_rows}, user)
        _audit(change, "create" if creating else "edit", estimated_rows=change.estimated_rows, sql=change.sql)
    return change


def _submit_problems(change: ChangeRequest) -> list[str]:
    problems = []
    if change.database.read_only:
        problems.append("目标数据库登记为只读通道（只读账号或只读备库），不能执行数据变更；请登记写通道")
    if not change.window_start or not change.window_end:
        problems.append("请填写执行窗口")
    elif change.window_end <= timezone.now():
        problems.append("执行窗口已过，请重新填写")
    if not change.emergency_plan.strip():
        problems.append("请填写应急方案")
    if not change.rollback_plan.strip():
        problems.append("请填写回退方案")
    return problems


def submit(user, change: ChangeRequest) -> ChangeRequest:
    ensure(user, Capability.DATA_CHANGE, "dataops.change.submit")
    _own(user, change.database)
    if change.status != S.DRAFT:
        raise ValidationError(f"只有草稿可以提交审批，当前为“{change.get_status_display()}”")
    if problems := _submit_problems(change):
        raise ValidationError(problems)
    _apply_review(change)
    with transaction.atomic():
        updated = ChangeRequest.objects.filter(pk=change.pk, status=S.DRAFT).update(
            status=S.PENDING,
            submitted_at=timezone.now(),
            plan=change.plan,
            findings=change.findings,
            estimated_rows=change.estimated_rows,
        )
        if not updated:
            raise ValidationError("变更状态已被他人改变，请刷新")
        change.refresh_from_db()
        _journal(change, "submitted", {"estimated_rows": change.estimated_rows}, user)
        _audit(change, "submit")
    return change


def decide(user, change: ChangeRequest, *, approve: bool, note: str = "") -> ChangeRequest:
    """批准或驳回 by a 财政审批人 of the database's region who is not the author. Approval reviews the SQL again:
    the rows counted must still be the rows submitted."""
    ensure(user, Capability.DATA_APPROVE, "dataops.change.decide")
    if not visible_databases(user).filter(pk=change.database_id).exists():
        raise PermissionDenied("无权审批该数据库的变更")
    if change.author_id == user.pk:
        raise ValidationError("提出人不能审批自己的变更")
    if change.status != S.PENDING:
        raise ValidationError(f"只有待审批的变更可以审批，当前为“{change.get_status_display()}”")
    note = (note or "").strip()[:500]
    if approve:
        submitted = change.estimated_rows
        _apply_review(change)
        if change.estimated_rows != submitted:
            raise ValidationError(
                f"提交时估计影响 {submitted} 行，现在为 {change.estimated_rows} 行：数据已变化，请退回提出人重新核对"
            )
    elif not note:
        raise ValidationError({"note": "驳回须写明意见"})
    with transaction.atomic():
        fields = {"decision_note": note}
        if approve:
            fields.update(status=S.APPROVED, approver=user, approved_at=timezone.now(), plan=change.plan)
        else:
            fields.update(status=S.DRAFT, approver=None, approved_at=None)
        if not ChangeRequest.objects.filter(pk=change.pk, status=S.PENDING).update(**fields):
            raise ValidationError("变更状态已被他人改变，请刷新")
        change.refresh_from_db()
        _journal(change, "approved" if approve else "rejected", {"note": note}, user)
        _audit(change, "approve" if approve else "reject", note=note)
    return change


# --- execution --------------------------------------------------------------------------------------------------


class DjangoStore:
    """The journal and the image chunks of one attempt in the platform database. Each journal step is committed at
    once. The chunks are written by a writer thread on its own platform connection while the engine goes on reading
    the target (each chunk committed there); ``images_durable`` waits until all are written, and the engine calls
    it before the target commits. Inside a caller's transaction (an atomic block: the tests) the writer thread
    could not see the attempt, so the chunks are kept and written in one transaction by ``images_durable``."""

    def __init__(self, attempt: ChangeAttempt, by=None):
        self.attempt, self.by = attempt, by
        self.pending: list[ImageChunk] = []
        self.inline = transaction.get_connection().in_atomic_block
        self.writer = None
        self.writes: list = []

    def journal(self, step: str, detail: dict) -> None:
        ChangeJournal.objects.bulk_create(
            [
                ChangeJournal(
                    change_id=self.attempt.change_id,
                    attempt=self.attempt,
                    step=step,
                    detail=detail,
                    by=self.by,
                )
            ]
        )

    def add_chunk(self, statement: int, kind: str, seq: int, rows: int, data: bytes, digest: str) -> None:
        chunk = ImageChunk(
            attempt=self.attempt, statement=statement, kind=kind, seq=seq, rows=rows, data=data, sha256=digest
        )
        if self.inline:
            self.pending.append(chunk)
            return
        if self.writer is None:
            from concurrent.futures import ThreadPoolExecutor

            self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="caiwei-images")
        # bulk_create: image rows are data, not events (no audit snapshot of the bytes)
        self.writes.append(self.writer.submit(ImageChunk.objects.bulk_create, [chunk]))

    def images_durable(self) -> None:
        if self.pending:
            with transaction.atomic():
                ImageChunk.objects.bulk_create(self.pending, batch_size=64)
            self.pending = []
        writes, self.writes = self.writes, []
        for write in writes:
            write.result()  # each is committed when it returns; the first failure is raised here

    def close(self) -> None:
        """End the writer thread and its platform connection (after success or failure alike)."""
        if self.writer is not None:
            self.writer.submit(_close_thread_connection).result()
            self.writer.shutdown(wait=True)
            self.writer = None


def _close_thread_connection() -> None:
    from django.db import connection

    connection.close()  # looked up in the writer thread: that thread's own connection


def chunk_source(attempt: ChangeAttempt) -> engine.ChunkSource:
    def source(statement: int, kind: str):
        for data, digest in (
            ImageChunk.objects.filter(attempt=attempt, statement=statement, kind=kind)
            .order_by("seq")
            .values_list("data", "sha256")
            .iterator()
        ):
            yield bytes(data), digest

    return source


def applied_execution(change: ChangeRequest) -> ChangeAttempt | None:
    return change.attempts.filter(kind=ChangeAttempt.Kind.EXECUTE, state=ChangeAttempt.State.APPLIED).last()


def plan_of(change: ChangeRequest) -> list[engine.Statement]:
    return [engine.Statement.from_dict(s) for s in change.plan]


def check_executable(user, change: ChangeRequest, now: datetime | None = None) -> None:
    ensure(user, Capability.DATA_CHANGE, "dataops.change.execute")
    _own(user, change.database)
    if change.status not in (S.APPROVED, S.FAILED) or change.approver_id is None:
        raise ValidationError(f"只有已批准的变更可以执行，当前为“{change.get_status_display()}”")
    if change.database.read_only:
        raise ValidationError("目标数据库登记为只读通道，不能执行数据变更")
    if not change.in_window(now):
        start = (
            timezone.localtime(change.window_start).strftime("%Y-%m-%d %H:%M") if change.window_start else "—"
        )
        end = timezone.localtime(change.window_end).strftime("%Y-%m-%d %H:%M") if change.window_end else "—"
        raise ValidationError(f"不在执行窗口内（{start} 至 {end}），不能执行")


def start_execute(user, change: ChangeRequest):
    """Queue the execution in the worker (checked now and again when it runs)."""
    from caiwei.jobs import runner

    check_executable(user, change)
    return runner.start(
        "dataops.change_execute",
        user=user,
        title=f"执行数据变更 {change.number}",
        params={"change": change.pk},
        region=change.database.target.region,
    )


def _begin_attempt(
    change: ChangeRequest, user, kind: str, allowed: tuple, running: str, **extra
) -> ChangeAttempt:
    token = engine.new_token()
    with transaction.atomic():
        if not ChangeRequest.objects.filter(pk=change.pk, status__in=allowed).update(status=running):
            change.refresh_from_db()
            raise ValidationError(
                f"变更当前为“{change.get_status_display()}”，不能{'执行' if kind == 'execute' else '回滚'}"
            )
        attempt = ChangeAttempt.objects.create(change=change, kind=kind, token=token, by=user, **extra)
        _journal(
            change,
            "attempt",
            {"token": token, "host": socket.gethostname(), "pid": os.getpid()},
            user,
            attempt,
        )
    return attempt


def execute(user, change: ChangeRequest) -> ChangeAttempt:
    """Execute now, in this process (the worker's job and ``caiwei data change execute``)."""
    check_executable(user, change)
    plan = plan_of(change)
    attempt = _begin_attempt(change, user, ChangeAttempt.Kind.EXECUTE, (S.APPROVED, S.FAILED), S.RUNNING)
    expected = [s.estimated for s in plan]
    target = change.database.engine()
    store = DjangoStore(attempt, user)
    try:
        outcome = engine.execute(
            target,
            plan,
            store,
            token=attempt.token,
            change_ref=change.number,
            expected=expected,
        )
        if outcome.state == "unknown":
            _try_recover(attempt, target)
        elif outcome.state == "applied":
            _finish_applied(change, attempt, outcome.rows, target)
        else:
            _finish_not_applied(
                change,
                attempt,
                outcome,
                ChangeAttempt.State.REVERTED
                if outcome.state == "reverted"
                else ChangeAttempt.State.NOT_APPLIED,
            )
    except Exception as exc:
        # The target could not be reached or the process lost its way: recovery decides from the marker.
        log.exception("change %s execution", change.pk)
        _try_recover(attempt, target)
        attempt.refresh_from_db()
        if attempt.state == ChangeAttempt.State.RUNNING:
            raise ValidationError(f"执行中断：{engine.db_message(exc)}；已登记，恢复程序将判定结果") from exc
    finally:
        store.close()
        target.dispose()
    attempt.refresh_from_db()
    return attempt


def _finish_applied(
    change: ChangeRequest, attempt: ChangeAttempt, rows: int, target, recovered: bool = False
) -> None:
    try:
        verification = engine.verify(target, plan_of(change), chunk_source(attempt))
    except Exception as exc:  # verification never undoes a committed change
        verification = {"error": engine.db_message(exc)}
    rows = (
        rows
        or sum(c.rows for c in attempt.chunks.filter(kind="before"))
        or sum(c.rows for c in attempt.chunks.filter(kind="after"))
    )
    with transaction.atomic():
        ChangeAttempt.objects.filter(pk=attempt.pk, state=ChangeAttempt.State.RUNNING).update(
            state=ChangeAttempt.State.APPLIED,
            rows=rows,
            verification=verification,
            finished_at=timezone.now(),
            message="崩溃后经标记确认已提交" if recovered else "",
        )
        ChangeRequest.objects.filter(pk=change.pk).update(
            status=S.DONE, status_note=f"已执行，影响 {rows} 行" + ("（崩溃后恢复确认）" if recovered else "")
        )
        _journal(change, "verified", verification, attempt.by, attempt)
        change.refresh_from_db()
        _audit(change, "execute", rows=rows, attempt=attempt.pk, recovered=recovered)


def _finish_not_applied(change: ChangeRequest, attempt: ChangeAttempt, outcome, state: str) -> None:
    with transaction.atomic():
        ChangeAttempt.objects.filter(pk=attempt.pk, state=ChangeAttempt.State.RUNNING).update(
            state=state, message=outcome.message, finished_at=timezone.now()
        )
        ChangeRequest.objects.filter(pk=change.pk).update(status=S.FAILED, status_note=outcome.message[:500])
        change.refresh_from_db()
        _audit(change, "execute_failed", reason=outcome.message, attempt=attempt.pk)


# --- rollback ---------------------------------------------------------------------------------------------------


def check_rollback(user, change: ChangeRequest) -> ChangeAttempt:
    ensure(user, Capability.DATA_CHANGE, "dataops.change.rollback")
    _own(user, change.database)
    if change.status != S.DONE:
        raise ValidationError(f"只有已执行的变更可以回滚，当前为“{change.get_status_display()}”")
    if any(s.kind == "ddl" for s in plan_of(change)):
        raise ValidationError("含 DDL 的变更没有镜像，不能一键回滚，请按回退方案人工处理")
    attempt = applied_execution(change)
    if attempt is None:
        raise ValidationError("找不到已生效的执行记录，不能回滚")
    return attempt


def rollback_preview(user, change: ChangeRequest) -> list[dict]:
    execution = check_rollback(user, change)
    target = change.database.engine()
    try:
        conflicts = engine.preview_rollback(target, plan_of(change), chunk_source(execution))
    except engine.ChangeError as exc:
        raise ValidationError(str(exc)) from exc
    finally:
        target.dispose()
    return masked_conflicts(change, conflicts)


def rollback(user, change: ChangeRequest, *, skip_conflicts: bool = False) -> ChangeAttempt:
    """One-click rollback from the before-images (conflicting rows are never overwritten; with conflicts it is refused
    unless ``skip_conflicts`` was chosen explicitly)."""
    execution = check_rollback(user, change)
    attempt = _begin_attempt(
        change, user, ChangeAttempt.Kind.ROLLBACK, (S.DONE,), S.RUNNING, skip_conflicts=skip_conflicts
    )
    target = change.database.engine()
    try:
        outcome = engine.rollback(
            target,
            plan_of(change),
            chunk_source(execution),
            DjangoStore(attempt, user),
            token=attempt.token,
            change_ref=change.number,
            skip_conflicts=skip_conflicts,
        )
        conflicts = masked_conflicts(change, outcome.conflicts)
        if outcome.state == "unknown":
            _try_recover(attempt, target)
        elif outcome.state == "applied":
            _finish_rollback(change, attempt, outcome.rows, conflicts)
        else:
            state = (
                ChangeAttempt.State.REFUSED if outcome.state == "refused" else ChangeAttempt.State.NOT_APPLIED
            )
            with transaction.atomic():
                ChangeAttempt.objects.filter(pk=attempt.pk).update(
                    state=state, message=outcome.message, conflicts=conflicts, finished_at=timezone.now()
                )
                ChangeRequest.objects.filter(pk=change.pk).update(status=S.DONE)
                _audit(change, "rollback_refused", reason=outcome.message, conflicts=len(conflicts))
    except Exception as exc:
        log.exception("change %s rollback", change.pk)
        _try_recover(attempt, target)
        attempt.refresh_from_db()
        if attempt.state == ChangeAttempt.State.RUNNING:
            raise ValidationError(f"回滚中断：{engine.db_message(exc)}；已登记，恢复程序将判定结果") from exc
    finally:
        target.dispose()
    attempt.refresh_from_db()
    change.refresh_from_db()
    return attempt


def _finish_rollback(change, attempt, rows: int, conflicts: list, recovered: bool = False) -> None:
    note = f"已回滚 {rows} 行" + (f"，{len(conflicts)} 行冲突未回滚" if conflicts else "")
    with transaction.atomic():
        ChangeAttempt.objects.filter(pk=attempt.pk, state=ChangeAttempt.State.RUNNING).update(
            state=ChangeAttempt.State.APPLIED,
            rows=rows,
            conflicts=conflicts,
            finished_at=timezone.now(),
            message="崩溃后经标记确认已提交" if recovered else "",
        )
        ChangeRequest.objects.filter(pk=change.pk).update(status=S.ROLLED_BACK, status_note=note)
        change.refresh_from_db()
        _audit(change, "rollback", rows=rows, conflicts=len(conflicts), recovered=recovered)


def masked_conflicts(change: ChangeRequest, conflicts: list[dict]) -> list[dict]:
    aliases = mask.aliases_of(change.database.get_mapping())
    pks = {s.index: s.pk for s in plan_of(change)}
    out = []
    for c in conflicts:
        names = pks.get(c["statement"]) or []
        shown = [
            {
                "column": col,
                "expected": mask.plain(mask.mask_value(col, v["expected"], aliases)),
                "current": mask.plain(mask.mask_value(col, v["current"], aliases)),
            }
            for col, v in c["diff"].items()
        ]
        key = [
            mask.plain(mask.mask_key(names[n] if n < len(names) else "", k, aliases))
            for n, k in enumerate(c["key"])
        ]
        out.append({**c, "key": key, "diff": shown})
    return out


# --- recovery ---------------------------------------------------------------------------------------------------


def _alive(attempt: ChangeAttempt) -> bool:
    """Whether the process that began ``attempt`` is still running on this host (then it is not recovered)."""
    begin = (
        attempt.journal.filter(step="attempt").order_by("pk").values_list("detail", flat=True).first() or {}
    )
    if begin.get("host") != socket.gethostname() or not begin.get("pid") or begin["pid"] == os.getpid():
        return False
    try:
        os.kill(int(begin["pid"]), 0)
    except (ProcessLookupError, PermissionError, ValueError):
        return False
    try:  # a zombie child is dead
        with open(f"/proc/{int(begin['pid'])}/stat") as fh:
            return fh.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def _try_recover(attempt: ChangeAttempt, target) -> None:
    try:
        _recover_attempt(attempt, target)
    except (
        Exception
    ):  # the target is unreachable: the attempt stays running until recovery can ask the marker
        log.exception("recovery of attempt %s", attempt.pk)


def _recover_attempt(attempt: ChangeAttempt, target=None) -> str:
    change = attempt.change
    own = target is None
    target = target or change.database.engine()
    try:
        decision = engine.fence(target, attempt.token, change.number, attempt.kind)
        if decision == "in_flight":
            return decision
        _journal(change, "recovered", {"decision": decision}, None, attempt)
        if attempt.kind == ChangeAttempt.Kind.EXECUTE:
            if decision == "committed":
                _finish_applied(change, attempt, 0, target, recovered=True)
            else:
                outcome = engine.Outcome(
                    "failed", "执行中断（进程退出或连接断开），经目标库标记确认未提交，数据未改动"
                )
                _finish_not_applied(change, attempt, outcome, ChangeAttempt.State.NOT_APPLIED)
        else:
            if decision == "committed":
                restored = sum(int(j.detail.get("rows") or 0) for j in attempt.journal.filter(step="restore"))
                _finish_rollback(change, attempt, restored, [], recovered=True)
            else:
                with transaction.atomic():
                    ChangeAttempt.objects.filter(pk=attempt.pk, state=ChangeAttempt.State.RUNNING).update(
                        state=ChangeAttempt.State.NOT_APPLIED,
                        message="回滚中断，经目标库标记确认未提交，数据仍为执行后的状态",
                        finished_at=timezone.now(),
                    )
                    ChangeRequest.objects.filter(pk=change.pk).update(status=S.DONE)
                    _audit(change, "rollback_not_applied")
        return decision
    finally:
        if own:
            target.dispose()


def recover(now_pid_alive_check: bool = True) -> list[dict]:
    """Decide every attempt a crash left running (worker start, ``caiwei data change recover``)."""
    out = []
    for attempt in ChangeAttempt.objects.filter(state=ChangeAttempt.State.RUNNING).select_related(
        "change", "change__database", "change__database__target"
    ):
        if now_pid_alive_check and _alive(attempt):
            out.append({"attempt": attempt.pk, "change": attempt.change_id, "decision": "alive"})
            continue
        try:
            decision = _recover_attempt(attempt)
        except Exception as exc:
            log.exception("recovery of attempt %s", attempt.pk)
            decision = f"error: {engine.db_message(exc)}"
        out.append({"attempt": attempt.pk, "change": attempt.change_id, "decision": decision})
    return out


# --- presentation -----------------------------------------------------------------------------------------------


def images_for_display(change: ChangeRequest, limit: int = IMAGE_ROWS_SHOWN) -> list[dict]:
    """Per statement: the first ``limit`` rows before and after, classified columns masked, changed cells marked."""
    attempt = (
        applied_execution(change) or change.attempts.filter(kind="execute").exclude(state="running").last()
    )
    if attempt is None:
        return []
    aliases = mask.aliases_of(change.database.get_mapping())
    source = chunk_source(attempt)
    out = []
    for st in plan_of(change):
        if st.kind == "ddl":
            continue
        try:
            bcols, before = engine.load_images(source, st, "before")
            acols, after = engine.load_images(source, st, "after")
        except engine.ChangeError as exc:
            out.append({"statement": st, "error": str(exc)})
            continue
        columns = bcols or acols
        keys = list(before or after)[:limit]
        rows = []
        for k in keys:
            b, a = before.get(k), after.get(k)
            cells = []
            for n, c in enumerate(columns):
                bv = None if b is None else b[n]
                av = None if a is None else a[n]
                cells.append(
                    {
                        "column": c,
                        "before": "" if b is None else mask.plain(mask.mask_value(c, bv, aliases)),
                        "after": "" if a is None else mask.plain(mask.mask_value(c, av, aliases)),
                        "changed": b is not None and a is not None and bv != av,
                    }
                )
            rows.append(
                {
                    "key": [mask.plain(mask.mask_key(p, v, aliases)) for p, v in zip(st.pk, k, strict=True)],
                    "cells": cells,
                    "gone": a is None,
                    "new": b is None,
                }
            )
        out.append(
            {
                "statement": st,
                "columns": columns,
                "rows": rows,
                "before_total": len(before),
                "after_total": len(after),
                "attempt": attempt,
            }
        )
    return out


def journal_for_display(change: ChangeRequest) -> list[dict]:
    return [
        {
            "at": j.at,
            "step": j.step,
            "label": STEP_LABELS.get(j.step, j.step),
            "detail": {
                k: v for k, v in (j.detail or {}).items() if k not in ("token", "host", "pid", "backend")
            },
            "attempt": j.attempt_id,
            "by": j.by,
        }
        for j in change.journal.select_related("by").order_by("at", "pk")
    ]


# --- from a data-check finding ----------------------------------------------------------------------------------


def _key_sources(rule) -> tuple[str, dict[str, str]]:
    """The logical table the rule's key columns come from and each key column's source column."""
    from sqlglot import exp

    tree = rule.tree
    aliases = {}
    sources = []
    if tree.args.get("from_"):
        sources.append(tree.args["from_"].this)
    sources += [j.this for j in tree.args.get("joins") or []]
    for s in sources:
        if isinstance(s, exp.Table):
            aliases[s.alias_or_name] = s.name
    table, columns = "", {}
    for projection in tree.expressions:
        name = projection.alias_or_name
        if name not in rule.key:
            continue
        node = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(node, exp.Column):
            owner = (
                aliases.get(node.table)
                if node.table
                else (next(iter(aliases.values())) if len(aliases) == 1 else "")
            )
            table = table or owner or ""
            columns[name] = node.name
    return table, columns


def finding_prefill(user, result_id) -> dict:
    """A guided fix prefilled from a data-check result: its database, the table of its key and the keys of the
    problem rows (keys kept masked are left out: they cannot be written back)."""
    from caiwei.checks.engine import shipped_rule
    from caiwei.checks.services import visible_results

    result = (
        visible_results(user)
        .select_related("run__database__target", "ticket")
        .filter(pk=int(result_id) if str(result_id).isdigit() else 0)
        .first()
    )
    if result is None:
        raise ValidationError("数据检查结果不存在或不在您的授权范围内")
    database = result.run.database
    rule = shipped_rule(result.rule_id)
    table, columns = _key_sources(rule) if rule else ("", {})
    mapping = database.get_mapping()
    physical = mapping.tables.get(table, table)
    mapped = mapping.columns.get(table, {})
    key_columns = [mapped.get(columns.get(k, k), columns.get(k, k)) for k in (rule.key if rule else [])]
    keys = [k for k in (result.keys or []) if not any(mask.is_masked_key(v) for v in k)]
    left_out = len(result.keys or []) - len(keys)
    note = ""
    if left_out:
        note = f"有 {left_out} 个主键含敏感信息已脱敏保存，不能预填，请在目标库中核对后补充"
    if result.keys_truncated or (result.count or 0) > len(result.keys or []):
        note = (
            note + "；" if note else ""
        ) + f"检查只保存了前 {len(result.keys or [])} 个主键，共 {result.count} 条问题"
    initial = {
        "database": database.pk if change_databases(user).filter(pk=database.pk).exists() else None,
        "title": f"修复：{result.title}"[:120],
        "reason": f"数据检查 #{result.run_id} 发现 {result.rule_id} {result.title}，问题 {result.count} 条",
        "mode": "fix",
        "fix_table": physical,
        "fix_key_columns": ", ".join(key_columns),
        "fix_keys": "\n".join("/".join(str(v) for v in k) for k in keys),
    }
    return {
        "initial": initial,
        "note": note,
        "ref": f"{result.run_id}/{result.rule_id}",
        "ticket": result.ticket,
    }
