"""``caiwei recon statement`` and ``caiwei recon signoff``: the statements of a run as a file, and the monthly
sign-off from the command line (a signature is a person's: ``--actor`` logs in with CAIWEI_PASSWORD or a prompt)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError

from . import statements


def add_arguments(sub) -> None:
    st = sub.add_parser(
        "statement", help="对账单与余额调节表：某次对账、某家银行、某日或某月，输出 Excel 或 Word"
    )
    st.add_argument("--run", type=int, required=True, help="对账编号")
    st.add_argument("--bank", required=True, help="银行编码")
    st.add_argument("--period", choices=["day", "month"], default="month", help="按日（day）或按月（month）")
    st.add_argument(
        "--date", help="日期 YYYY-MM-DD（按日）或月份 YYYY-MM（按月），缺省为对账期间的最后一日/月"
    )
    st.add_argument(
        "--format", choices=sorted(statements.FORMATS), help="xlsx 或 docx，缺省按输出文件的扩展名"
    )
    st.add_argument("--output", "-o", type=Path, required=True, help="输出文件")
    st.add_argument("--actor", help="以该账号的权限导出（缺省为系统）；密码取自 CAIWEI_PASSWORD 或提示输入")
    so = sub.add_parser("signoff", help="月度对账签认：list 查看，sign 签认（银行用户与财政用户各签一次）")
    ops = so.add_subparsers(dest="signoff_action", required=True)
    ls = ops.add_parser("list", help="签认记录")
    ls.add_argument("--region", help="财政区划代码")
    ls.add_argument("--month", help="月份 YYYY-MM")
    ls.add_argument("--json", action="store_true", help="以 JSON 输出")
    sign = ops.add_parser("sign", help="以 --actor 的身份签认某次对账中某家银行某月的对账")
    sign.add_argument("--run", type=int, required=True, help="对账编号")
    sign.add_argument("--bank", required=True, help="银行编码")
    sign.add_argument("--month", required=True, help="月份 YYYY-MM")
    sign.add_argument("--actor", required=True, help="签认人账号；密码取自 CAIWEI_PASSWORD 或提示输入")
    sign.add_argument(
        "--as", dest="side", choices=["bank", "finance"], help="签认身份（账号兼有两种角色时必填）"
    )


def _month(value: str) -> date:
    try:
        return date.fromisoformat(f"{value}-01")
    except ValueError as exc:
        raise CommandError(f"月份“{value}”格式应为 YYYY-MM") from exc


def _run(pk: int):
    from .models import ReconRun

    run = ReconRun.objects.select_related("region").filter(pk=pk).first()
    if run is None:
        raise CommandError(f"对账 {pk} 不存在")
    if run.status != ReconRun.Status.DONE:
        raise CommandError(f"对账 {pk} 尚未完成（{run.get_status_display()}）")
    return run


def statement(command, o: dict) -> None:
    from caiwei.audit.context import acting_as
    from caiwei.audit.log import record_export

    from .services import signoff_of, statement_banks, statement_runs

    fmt = o["format"] or o["output"].suffix.lstrip(".").lower()
    if fmt not in statements.FORMATS:
        raise CommandError("请用 --format 指明 xlsx 或 docx（或让输出文件以 .xlsx、.docx 结尾）")

    def export(user) -> None:
        run = _run(o["run"])
        allowed = user is None or (
            statement_runs(user).filter(pk=run.pk).exists() and o["bank"] in statement_banks(user, run)
        )
        if not allowed:
            raise CommandError(f"对账 {run.pk} 中银行“{o['bank']}”的对账单不在您的授权范围内")
        try:
            s = statements.statement_for(run, o["bank"], o["period"], o["date"])
        except statements.StatementError as exc:
            raise CommandError(str(exc)) from exc
        signoff = (
            signoff_of(run, o["bank"], s.period.start.replace(day=1)) if s.period.kind == "month" else None
        )
        name, _, data = statements.render(s, fmt, signoff)
        o["output"].write_bytes(data)
        record_export(
            "recon.statement",
            len(s.days),
            {"run": run.pk, "bank": o["bank"], "period": s.period.key, "format": fmt},
        )
        command.stdout.write(
            f"已写出 {o['output']}：{s.bank}（{s.bank_code}）{s.period.label}，"
            f"银行支付 {statements.fmt(s.bank_paid)} 元，我方凭证 {statements.fmt(s.book_paid)} 元；{s.conclusion}"
        )

    if o.get("actor"):
        from caiwei.accounts.cli import authenticate_actor
        from caiwei.accounts.roles import Capability

        with authenticate_actor(o["actor"], Capability.RECON_VIEW) as user:
            export(user)
    else:
        with acting_as(None, "cli"):
            export(None)


def signoff(command, o: dict) -> None:
    from .models import ReconSignoff
    from .services import sign

    if o["signoff_action"] == "list":
        qs = ReconSignoff.objects.select_related("region", "bank_user", "finance_user").order_by(
            "-month", "region__code", "bank_code"
        )
        if o.get("region"):
            qs = qs.filter(region__code=o["region"])
        if o.get("month"):
            qs = qs.filter(month=_month(o["month"]))
        rows = [signoff_dict(s) for s in qs[:500]]
        if o.get("json"):
            command.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1))
            return
        if not rows:
            command.stdout.write("没有签认记录")
        for r in rows:
            command.stdout.write(
                f"{r['month']}　{r['region']['name']}　{r['bank']['name']}（{r['bank']['code']}）　"
                f"第 {r['run']} 次对账　{r['state_label']}　银行：{r['bank_user'] or '—'}　财政：{r['finance_user'] or '—'}"
            )
        return
    from caiwei.accounts.cli import authenticate_actor
    from caiwei.accounts.roles import Capability

    run = _run(o["run"])
    with authenticate_actor(o["actor"], Capability.RECON_SIGN) as user:
        try:
            done = sign(user, run, o["bank"], _month(o["month"]), o.get("side"))
        except (ValidationError, PermissionDenied) as exc:
            text = "；".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            raise CommandError(text) from exc
    command.stdout.write(
        f"已签认：{statements.cn_month(done.month)} {statements.bank_label(done.bank_code)}，"
        f"第 {done.run_id} 次对账，状态 {done.get_state_display()}"
    )


def signoff_dict(s) -> dict:
    from django.utils import timezone

    def when(value):
        return timezone.localtime(value).isoformat() if value else None

    return {
        "id": s.pk,
        "region": {"code": s.region.code, "name": s.region.name},
        "bank": {"code": s.bank_code, "name": statements.bank_name(s.bank_code)},
        "month": s.month.isoformat()[:7],
        "run": s.run_id,
        "state": s.state,
        "state_label": s.get_state_display(),
        "bank_user": str(s.bank_user) if s.bank_user_id else None,
        "bank_signed_at": when(s.bank_signed_at),
        "finance_user": str(s.finance_user) if s.finance_user_id else None,
        "finance_signed_at": when(s.finance_signed_at),
        "figures": s.figures,
    }
