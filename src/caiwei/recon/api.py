"""对账 over HTTP (/api/recon/…): runs (start one on uploaded bank files or the sandbox's), breaks (owner, comments,
tickets, resolve with a reason), bank file formats (new version, preview). The same services and permissions as
the pages: region scoping everywhere, a 银行用户 only their bank's breaks and files."""

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from ninja import File, Form, Path, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import ConfigDict, Field

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability
from caiwei.inputs import Line, Text
from caiwei.regions.scoping import visible_regions

from . import services
from .engine import BREAKS
from .models import SOURCE_SETTINGS, BankFormat, ReconBreak, ReconRun

router = Router(tags=["对账"])
ID = Path(..., gt=0, le=2**63 - 1)


def _money(value) -> str | None:
    return None if value is None else f"{value:.2f}"


def _run_out(run: ReconRun, user, full: bool = False) -> dict[str, Any]:
    job = services.run_job(run)
    bank_view = services.restricted_bank(user) is not None
    out = {
        "id": run.pk,
        "region": run.region.code,
        "region_name": run.region.name,
        "database": run.database_id,
        "database_name": str(run.database) if run.database_id else "",
        "period_start": run.period_start,
        "period_end": run.period_end,
        "as_of": run.as_of,
        "tolerance": run.tolerance,
        "status": run.status,
        "status_label": run.get_status_display(),
        "message": run.message,
        "job": job.pk if job else None,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "created_by": run.created_by.username if run.created_by_id else None,
    }
    if not bank_view:
        out.update(
            matched_by_key=run.matched_by_key,
            matched_by_attributes=run.matched_by_attributes,
            split_vouchers=run.split_vouchers,
            in_transit=run.in_transit,
            cleared_lines=run.cleared_lines,
            breaks_new=run.breaks_new,
            breaks_open=run.breaks_open,
        )
    if full:
        sources = run.sources or {}
        rows = services.source_rows(run, user)["rows"]
        out["sources"] = {
            "files": [
                {k: v for k, v in r.items() if k != "error"} | {"refused": r.get("error")} for r in rows
            ],
            "refused": [r["error"] for r in rows if r.get("error")],
        }
        if not bank_view:
            out["sources"].update(
                {k: sources.get(k) for k in ("lines", "amount", "vouchers", "clearing_lines", "pboc")}
            )
        breaks = services.visible_breaks(user).filter(last_run=run)
        counts: dict[str, int] = {}
        for kind in breaks.values_list("kind", flat=True):
            counts[kind] = counts.get(kind, 0) + 1
        out["breaks_by_class"] = [
            {"kind": k, "label": BREAKS[k].split("：")[0], "reason": BREAKS[k], "count": counts[k]}
            for k in BREAKS
            if k in counts
        ]
    return out


def _break_out(b: ReconBreak, full: bool = False) -> dict[str, Any]:
    out = {
        "id": b.pk,
        "kind": b.kind,
        "kind_label": b.get_kind_display(),
        "reason": b.reason,
        "state": b.state,
        "state_label": b.get_state_display(),
        "region": b.region.code,
        "bank_code": b.bank_code,
        "vouchers": b.vouchers,
        "lines": b.lines,
        "book_amount": _money(b.book_amount),
        "bank_amount": _money(b.bank_amount),
        "note": b.note,
        "owner": b.owner.username if b.owner_id else None,
        "ticket": b.ticket.number if b.ticket_id else None,
        "age_days": b.age_days(),
        "first_run": b.first_run_id,
        "last_run": b.last_run_id,
        "created_at": b.created_at,
        "resolution": b.resolution,
        "resolved_at": b.resolved_at,
        "resolved_by": b.resolved_by.username if b.resolved_by_id else None,
    }
    if full:
        out["comments"] = [
            {"id": c.pk, "author": c.author.username, "text": c.text, "created_at": c.created_at}
            for c in b.comments.select_related("author")
        ]
    return out


def _format_out(f: BankFormat, full: bool = False) -> dict[str, Any]:
    out = {
        "id": f.pk,
        "code": f.code,
        "name": f.name,
        "bank_code": f.bank_code,
        "version": f.version,
        "updated_at": f.updated_at,
        "updated_by": f.updated_by.username if f.updated_by_id else None,
    }
    if full:
        out["definition"] = f.definition
    return out


# --- runs -------------------------------------------------------------------------------------------------------


@router.get("/runs", summary="对账记录（按授权区划）")
def runs(request, limit: int = Query(50, ge=1, le=500)):
    ensure(request.user, Capability.RECON_VIEW, "api:recon.runs")
    return [_run_out(r, request.user) for r in services.visible_runs(request.user)[:limit]]


@router.post(
    "/runs",
    response={201: dict},
    summary="发起对账（后台任务）：multipart 表单，sandbox=true 用演练库的银行文件，或上传 files 并按顺序给出每个文件的 "
    "formats（格式编号）与 banks（银行编码，格式已写明的可省）",
)
def start_run(
    request,
    region: Form[str],
    database: Form[int],
    period_start: Form[date],
    period_end: Form[date],
    as_of: Form[date | None] = None,
    date_window: Form[int] = 1,
    amount: Form[Decimal] = Decimal("0.00"),
    transit_days: Form[int] = 10,
    sandbox: Form[bool] = False,
    formats: Form[list[str]] = None,
    banks: Form[list[str]] = None,
    files: File[list[UploadedFile]] = None,
):
    ensure(request.user, Capability.RECON_RUN, "api:recon.run")
    reg = visible_regions(request.user).filter(code=region.strip()).first()
    if reg is None:
        raise ValidationError({"region": f"区划“{region}”不存在或不在您的授权范围内"})
    db = get_object_or_404(services.run_databases(request.user), pk=database)
    files, formats, banks = files or [], formats or [], banks or []
    if len(formats) != len(files):
        raise ValidationError(
            {"formats": f"上传了 {len(files)} 个文件，应按顺序给出同样多个格式编号，得到 {len(formats)} 个"}
        )
    if banks and len(banks) != len(files):
        raise ValidationError(
            {"banks": f"上传了 {len(files)} 个文件，banks 应为同样多个银行编码，得到 {len(banks)} 个"}
        )
    known = {f.code: f for f in BankFormat.objects.filter(code__in=formats)}
    unknown = [c for c in formats if c not in known]
    if unknown:
        raise ValidationError({"formats": f"银行文件格式 {'、'.join(unknown)} 不存在"})
    uploads = [
        (upload, known[code], (banks[i] if banks else "").strip()[:12])
        for i, (upload, code) in enumerate(zip(files, formats, strict=True))
    ]
    run = services.start_run(
        request.user,
        region=reg,
        database=db,
        period_start=period_start,
        period_end=period_end,
        as_of=as_of,
        tolerance={"date_window": date_window, "amount": str(amount), "transit_days": transit_days},
        uploads=uploads,
        use_sandbox=sandbox,
    )
    run.refresh_from_db()
    return Status(201, _run_out(run, request.user, full=True))


@router.get("/runs/{run_id}", summary="一次对账：计数、数据来源（拒收的文件及原因）、各类差异的条数")
def run_detail(request, run_id: int = ID):
    ensure(request.user, Capability.RECON_VIEW, "api:recon.run")
    run = get_object_or_404(services.visible_runs(request.user), pk=run_id)
    return _run_out(run, request.user, full=True)


# --- breaks -----------------------------------------------------------------------------------------------------


@router.get("/breaks", summary="对账差异：按处理状态、类别、银行、账龄（天）、对账、责任人筛选")
def breaks(
    request,
    state: str = Query("", description="open、resolved、cleared；缺省为全部"),
    kind: str = Query("", description="差异类别，如 bank_only、amount"),
    bank: str = Query("", max_length=12),
    min_age: int | None = Query(None, ge=0, le=100000),
    max_age: int | None = Query(None, ge=0, le=100000),
    run: int | None = Query(None, gt=0, le=2**63 - 1),
    owner: str = Query("", max_length=150, description="责任人用户名；“-” 为未指定"),
    limit: int = Query(200, ge=1, le=2000),
):
    ensure(request.user, Capability.RECON_VIEW, "api:recon.breaks")
    if state and state not in ReconBreak.State.values:
        raise ValidationError({"state": f"应为 {'、'.join(ReconBreak.State.values)} 之一"})
    if kind and kind not in BREAKS:
        raise ValidationError({"kind": f"应为 {'、'.join(BREAKS)} 之一"})
    qs = services.filter_breaks(
        services.visible_breaks(request.user),
        state=state,
        kind=kind,
        bank=bank,
        min_age=min_age,
        max_age=max_age,
        run=run,
        owner=owner,
    ).order_by("created_at", "pk")
    return [_break_out(b) for b in qs[:limit]]


def _break(request, break_id: int) -> ReconBreak:
    return get_object_or_404(services.visible_breaks(request.user).select_related("resolved_by"), pk=break_id)


@router.get("/breaks/{break_id}", summary="一条差异：凭证、银行明细、金额、责任人、工单、意见")
def break_detail(request, break_id: int = ID):
    ensure(request.user, Capability.RECON_VIEW, "api:recon.break")
    return _break_out(_break(request, break_id), full=True)


class BreakPatch(Schema):
    model_config = ConfigDict(extra="forbid")
    owner: Line(150) | None = Field(None, description="责任人用户名；null 取消")


@router.patch("/breaks/{break_id}", summary="指定或取消责任人（须能处理该区划的对账差异）")
def break_patch(request, data: BreakPatch, break_id: int = ID):
    brk = _break(request, break_id)
    if "owner" not in data.model_fields_set:
        raise ValidationError({"owner": "没有要修改的字段：请给出 owner（用户名，或 null 取消）"})
    owner = None
    if data.owner:
        owner = services.break_owners(brk.region).filter(username=data.owner).first()
        if owner is None:
            raise ValidationError({"owner": f"“{data.owner}”不能处理{brk.region.name}的对账差异"})
    services.assign_break(request.user, brk, owner)
    return _break_out(_break(request, break_id), full=True)


class CommentIn(Schema):
    model_config = ConfigDict(extra="forbid")
    text: Text(4000) = ""


@router.post("/breaks/{break_id}/comments", response={201: dict}, summary="填写意见")
def break_comment(request, data: CommentIn, break_id: int = ID):
    brk = _break(request, break_id)
    note = services.comment_break(request.user, brk, data.text)
    return Status(
        201,
        {"id": note.pk, "author": request.user.username, "text": note.text, "created_at": note.created_at},
    )


class ResolveIn(Schema):
    model_config = ConfigDict(extra="forbid")
    reason: Text(4000) = Field("", description="处理说明（必填）")


@router.post("/breaks/{break_id}/resolve", summary="标为已解决（须写明处理说明）")
def break_resolve(request, data: ResolveIn, break_id: int = ID):
    brk = _break(request, break_id)
    services.resolve_break(request.user, brk, data.reason)
    return _break_out(_break(request, break_id), full=True)


class TicketIn(Schema):
    model_config = ConfigDict(extra="forbid")
    number: Line(40) = Field("", description="关联已有工单的工单号")
    create: bool = Field(False, description="true：由差异开工单（已有工单则返回它）")
    severity: Line(4) = Field("", description="开工单时的严重程度，缺省“一般”")
    assignee: Line(150) = Field("", description="开工单时分派给本区划的二线工程师（用户名）")


@router.post("/breaks/{break_id}/ticket", summary="关联已有工单（number），或由差异开工单（create=true）")
def break_ticket(request, data: TicketIn, break_id: int = ID):
    brk = _break(request, break_id)
    if data.create == bool(data.number.strip()):
        raise ValidationError({"number": "请给出 number（关联已有工单）或 create=true（开新工单），二者选一"})
    if data.create:
        from caiwei.checks.services import ticket_engineers

        assignee = None
        if data.assignee:
            assignee = ticket_engineers(brk.region).filter(username=data.assignee).first()
            if assignee is None:
                raise ValidationError({"assignee": f"“{data.assignee}”不是该区划的二线工程师"})
        services.open_ticket(request.user, brk, assignee=assignee, severity=data.severity or None)
    else:
        services.link_ticket(request.user, brk, data.number)
    return _break_out(_break(request, break_id), full=True)


# --- formats ----------------------------------------------------------------------------------------------------


@router.get("/formats", summary="银行文件格式")
def format_list(request):
    ensure(request.user, Capability.RECON_FORMATS, "api:recon.formats")
    services.ensure_shipped_formats()
    return [_format_out(f) for f in services.visible_formats(request.user)]


@router.get("/formats/{format_id}", summary="一个银行文件格式及其 YAML 定义")
def format_detail(request, format_id: int = ID):
    ensure(request.user, Capability.RECON_FORMATS, "api:recon.format")
    return _format_out(get_object_or_404(services.visible_formats(request.user), pk=format_id), full=True)


class FormatIn(Schema):
    model_config = ConfigDict(extra="forbid")
    definition: Text(200_000, required=True)
    name: Line(80) = ""
    bank_code: Line(12) = ""


@router.put("/formats/{format_id}", summary="保存为新版本（定义先经校验，有误则不保存并指出问题）")
def format_save(request, data: FormatIn, format_id: int = ID):
    ensure(request.user, Capability.RECON_FORMATS, "api:recon.format.save")
    fmt = get_object_or_404(services.visible_formats(request.user), pk=format_id)
    saved = services.save_format(
        request.user, fmt, definition=data.definition, name=data.name, bank_code=data.bank_code
    )
    return _format_out(saved, full=True)


@router.post(
    "/formats/{format_id}/preview",
    summary="预览：用该格式（或表单中给出的 definition，不保存）读上传的样例文件，返回前几行的各字段，或错误的行号、字节位置与字段",
)
def format_preview(
    request,
    file: File[UploadedFile],
    definition: Form[str] = "",
    rows: Form[int] = 10,
    format_id: int = ID,
):
    ensure(request.user, Capability.RECON_FORMATS, "api:recon.format.preview")
    fmt = get_object_or_404(services.visible_formats(request.user), pk=format_id)
    out = services.preview_format(
        request.user, definition or fmt.definition, file, rows=max(1, min(rows, 100))
    )
    return {k: v for k, v in out.items() if k != "table"}


# --- bank file sources 银行文件来源 -----------------------------------------------------------------------------------
# The same rules as the pages (views_sources.py): RECON_FORMATS, the user's regions; the password and private key are
# write-only (never in an answer; empty keeps the sealed one while the connection stays the same).


def _source_out(s, user=None, full: bool = False) -> dict[str, Any]:
    out = {
        "id": s.pk,
        "region": s.region.code,
        "region_name": s.region.name,
        "name": s.name,
        "bank_code": s.bank_code,
        "bank_format": s.bank_format.code,
        "kind": s.kind,
        "kind_label": s.get_kind_display(),
        "host": s.host,
        "port": s.port,
        "username": s.username,
        "has_password": bool(s.secret),
        "has_private_key": bool(s.key_secret),
        "host_key": s.host_key,
        "directory": s.directory,
        "pattern": s.pattern,
        "interval_minutes": s.interval_minutes,
        "business_days_only": s.business_days_only,
        "enabled": s.enabled,
        "reconcile_database": s.reconcile_database_id,
        "next_run_at": s.next_run_at,
        "last_run_at": s.last_run_at,
        "last_ok": s.last_ok,
        "last_message": s.last_message,
        "failures": s.failures,
    }
    if full:
        out["intakes"] = [
            {
                "id": i.pk,
                "name": i.name,
                "state": i.state,
                "state_label": i.get_state_display(),
                "fetched_at": i.fetched_at,
                "lines": i.lines,
                "amount": _money(i.amount),
                "refused": i.error,
            }
            for i in services.source_intakes(user, s)
        ]
    return out


class SourceIn(Schema):
    model_config = ConfigDict(extra="forbid")
    region: Line(12, required=True)
    name: Line(80, required=True)
    bank_code: Line(12, required=True)
    bank_format: Line(40, required=True) = Field(description="银行文件格式编号，如 csv-gbk")
    kind: Line(8, required=True) = Field(description="sftp（SFTP 拉取）或 folder（监视目录）")
    host: Line(120) = ""
    port: int = Field(22, ge=0, le=70000)
    username: Line(60) = ""
    password: str = Field("", max_length=200, description="只写不读；留空保留已保存的密码")
    private_key: str = Field(
        "", max_length=20000, description="只写不读（OpenSSH 格式）；留空保留已保存的私钥"
    )
    clear_secret: bool = False
    host_key: Line(100) = Field(
        "", description="主机密钥指纹 SHA256:…（可先在页面上读取服务器指纹，核对后填入）"
    )
    directory: Line(255) = ""
    pattern: Line(120) = "*"
    interval_minutes: int = Field(60, ge=0, le=10**6)
    business_days_only: bool = True
    enabled: bool = True
    reconcile_database: int | None = Field(
        None, description="取件后对账的财政数据库编号（留空：只取件，不自动对账）"
    )


def _save_source(request, source, data: SourceIn):
    from .models import BankFileSource

    region = visible_regions(request.user).filter(code=data.region.strip()).first()
    if region is None:
        raise ValidationError({"region": f"区划“{data.region}”不存在或不在您的授权范围内"})
    fmt = services.visible_formats(request.user).filter(code=data.bank_format.strip()).first()
    if fmt is None:
        raise ValidationError({"bank_format": f"银行文件格式“{data.bank_format}”不存在"})
    if data.kind not in BankFileSource.Kind.values:
        raise ValidationError({"kind": "方式应为 sftp（SFTP 拉取）或 folder（监视目录）"})
    source = source or BankFileSource()
    source.region, source.bank_format = region, fmt
    database = None
    if data.reconcile_database is not None:
        database = services.run_databases(request.user).filter(pk=data.reconcile_database).first()
        if database is None:
            raise ValidationError(
                {"reconcile_database": f"财政数据库 {data.reconcile_database} 不存在或不在您的授权范围内"}
            )
    source.reconcile_database = database
    for f in SOURCE_SETTINGS[:-1]:  # the last, the finance database, is set above
        value = getattr(data, f)
        setattr(source, f, value.strip() if isinstance(value, str) else value)
    if source.kind == BankFileSource.Kind.FOLDER:
        source.host, source.username = "", ""
    return services.save_source(
        request.user,
        source,
        password=data.password,
        private_key=data.private_key.strip(),
        clear_secret=data.clear_secret,
    )


@router.get("/sources", summary="银行文件来源（按授权区划）：最近拉取的时间、结果与连续失败次数")
def source_list(request):
    ensure(request.user, Capability.RECON_FORMATS, "api:recon.sources")
    return [_source_out(s) for s in services.visible_sources(request.user)]


@router.post(
    "/sources",
    response={201: dict},
    summary="登记银行文件来源（有误则不保存，按字段指出问题；密码、私钥只写不读）",
)
def source_create(request, data: SourceIn):
    ensure(request.user, Capability.RECON_FORMATS, "api:recon.source.save")
    return Status(201, _source_out(_save_source(request, None, data), request.user, full=True))


@router.get("/sources/{source_id}", summary="一个银行文件来源及其最近取件（接收或拒收，拒收的行号与字段）")
def source_detail(request, source_id: int = ID):
    ensure(request.user, Capability.RECON_FORMATS, "api:recon.source")
    source = get_object_or_404(services.visible_sources(request.user), pk=source_id)
    return _source_out(source, request.user, full=True)


@router.put("/sources/{source_id}", summary="修改银行文件来源（全部字段；密码、私钥留空则保留）")
def source_save(request, data: SourceIn, source_id: int = ID):
    ensure(request.user, Capability.RECON_FORMATS, "api:recon.source.save")
    source = get_object_or_404(services.visible_sources(request.user), pk=source_id)
    return _source_out(_save_source(request, source, data), request.user, full=True)


@router.post(
    "/sources/{source_id}/pull",
    response={202: dict},
    summary="立即拉取（后台任务 recon.pull）：返回任务编号、状态与结果",
)
def source_pull(request, source_id: int = ID):
    ensure(request.user, Capability.RECON_FORMATS, "api:recon.source.pull")
    source = get_object_or_404(services.visible_sources(request.user), pk=source_id)
    job = services.pull_source_now(request.user, source)
    source.refresh_from_db()
    return Status(
        202,
        {
            "job": job.pk,
            "status": job.status,
            "status_label": job.get_status_display(),
            "result": job.result,
            "source": _source_out(source, request.user, full=True),
        },
    )
