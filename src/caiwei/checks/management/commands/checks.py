import json
import sys
import time
import unicodedata
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ...engine import RuleError, parse_overrides, select_rules, shipped_packs
from ...runner import Options, run_url
from ...sqlplan import Mapping, Scope


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"日期“{value}”格式应为 YYYY-MM-DD") from exc


class Command(BaseCommand):
    help = "数据检查：run 对数据库执行规则包；rules 列出规则；sandbox 把演练库登记为运维对象并做首次检查"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser(
            "run", help="执行规则包：--db 对任意数据库临时执行，或 --target 对已登记的运维对象执行并保存结果"
        )
        run.add_argument(
            "--db", help="数据库 URL，如 postgresql://user@host/db、mysql://root@host/db、sqlite:///path"
        )
        run.add_argument("--target", help="已登记的运维对象名称（结果保存在平台中）")
        run.add_argument("--database", default="", help="运维对象下的数据库名称，缺省为第一个")
        run.add_argument(
            "--actor", help="与 --target 一起用：操作人账号；密码取自 CAIWEI_PASSWORD 或提示输入"
        )
        run.add_argument("--pack", default="all", help=f"规则包，逗号分隔或 all：{_pack_names()}")
        run.add_argument(
            "--json", type=Path, help="结果写入 JSON 文件（每条规则及其问题数据主键）；- 为标准输出"
        )
        run.add_argument("--as-of", help="检查日 YYYY-MM-DD，缺省为当天（超期类规则据此推算）")
        run.add_argument("--region", action="append", default=[], help="只检查该区划代码（可多次）")
        run.add_argument("--year", type=int, help="只检查该年度")
        run.add_argument("--from", dest="date_from", help="日期范围起 YYYY-MM-DD")
        run.add_argument("--to", dest="date_to", help="日期范围止 YYYY-MM-DD")
        run.add_argument("--no-sample", action="store_true", help="只计数，不取问题数据的主键与样本")
        run.add_argument("--timeout", type=int, default=300, help="单条语句超时秒数")
        run.add_argument("--mapping", type=Path, help="表名列名映射 JSON 文件")
        run.add_argument(
            "--param",
            action="append",
            default=[],
            help="覆盖规则参数，如 BIZ-001.cutoff=5（日期类参数为检查日前的天数），可多次",
        )
        rules = sub.add_parser(
            "rules",
            help="规则：list 列出出厂规则与本地规则；export 导出本地规则文件；import 导入规则文件为草稿版本",
        )
        rules.add_argument("op", nargs="?", default="list", choices=["list", "export", "import"])
        rules.add_argument("files", nargs="*", type=Path, help="import：要导入的规则文件（.yaml）")
        rules.add_argument("--pack", default="all")
        rules.add_argument("--sql", action="store_true", help="同时打印规则 SQL")
        rules.add_argument(
            "--id", action="append", default=[], help="export：本地规则编号（可多次，缺省为全部）"
        )
        rules.add_argument("--version", type=int, help="export：版本号，缺省为最新版本")
        rules.add_argument("--approved", action="store_true", help="export：导出已批准的在用版本")
        rules.add_argument(
            "--out", type=Path, help="export：输出文件或目录（多条规则时为目录），缺省为标准输出"
        )
        rules.add_argument(
            "--actor", help="import：操作人账号（二线工程师或项目经理）；密码取自 CAIWEI_PASSWORD 或提示输入"
        )
        rules.add_argument(
            "--region", default="", help="import：新规则所属区划代码，缺省为操作人的第一个授权区划"
        )
        sub.add_parser("sandbox", help="把已载入的演练库登记为运维对象，并在没有检查记录时做首次检查")
        generate = sub.add_parser(
            "generate-rules", help="由表结构约束模型生成规则包 schema_derived（checks/schema/model.py）"
        )
        generate.add_argument(
            "--check", action="store_true", help="只检查已提交的规则文件是否与模型一致，不写入"
        )

    def handle(self, *args, action, **options):
        try:
            return getattr(self, action.replace("-", "_"))(**options)
        except (RuleError, ValidationError) as exc:
            raise CommandError("；".join(getattr(exc, "messages", [str(exc)]))) from exc

    def rules(self, op, pack, sql, **options):
        if op != "list":
            from ...custom_cli import run_rules_command

            return run_rules_command(self, op, **options)
        for rule in select_rules(pack) if pack != "local" else []:
            self.stdout.write(f"{rule.id}\t{rule.severity}\t{shipped_packs()[rule.pack].title}\t{rule.title}")
            if sql:
                self.stdout.write(rule.sql + "\n")
        if pack in ("all", "local"):
            from ...custom_cli import list_local

            list_local(self, sql)

    def generate_rules(self, check, **_):
        from ...schema import generate

        if check:
            names = generate.check()
            if names:
                raise CommandError(
                    f"{len(names)} 个规则文件与约束模型不一致：{'、'.join(names[:10])}；"
                    "请执行 caiwei checks generate-rules 重新生成"
                )
            self.stdout.write("规则包 schema_derived 与约束模型一致")
            return
        changed = generate.write()
        self.stdout.write(f"已生成 {generate.PACK_DIR}：{len(changed)} 个文件有变化")

    def sandbox(self, **_):
        from ...services import register_sandbox

        database = register_sandbox()
        if database is None:
            raise CommandError("演练库尚未载入：先执行 caiwei sandbox demo")
        run = database.runs.first()
        self.stdout.write(
            f"运维对象“{database}”已登记；最近一次检查 #{run.pk}：{run.get_status_display()}，问题 {run.findings} 条"
        )

    def run(
        self,
        db,
        target,
        database,
        actor,
        pack,
        json,
        as_of,
        region,
        year,
        date_from,
        date_to,
        no_sample,
        timeout,
        mapping,
        param,
        **_,
    ):
        scope = Scope(
            regions=tuple(region),
            year=year,
            date_from=_date(date_from) if date_from else None,
            date_to=_date(date_to) if date_to else None,
        )
        if bool(db) == bool(target):
            raise CommandError("请给出 --db（临时执行）或 --target（已登记的运维对象）之一")
        if target:
            return self.run_target(target, database, actor, pack, scope, not no_sample, json, param)
        rules = select_rules(pack)
        mapping_obj = Mapping.from_dict(_load_json(mapping)) if mapping else None
        overrides = parse_overrides(param, rules)
        options = Options(
            as_of=_date(as_of) if as_of else date.today(),
            scope=scope,
            sample=not no_sample,
            timeout_s=timeout,
            params=overrides,
        )
        started = time.monotonic()
        try:
            outcomes = run_url(db, rules, options, mapping_obj, progress=self._progress)
        except sa.exc.SQLAlchemyError as exc:
            raise CommandError(f"无法连接数据库：{str(getattr(exc, 'orig', exc)).strip()[:300]}") from exc
        seconds = time.monotonic() - started
        if self.stderr.isatty():
            self.stderr.write("")
        report = {
            "database": sa.engine.make_url(db).render_as_string(hide_password=True),
            "as_of": options.as_of.isoformat(),
            "packs": pack,
            "scope": scope.as_dict(),
            "seconds": round(seconds, 3),
            "rules": [o.as_dict() for o in outcomes],
        }
        self._summary(report["rules"], seconds)
        self._write(report, json)
        if any(o.error for o in outcomes):
            raise CommandError(f"{sum(1 for o in outcomes if o.error)} 条规则执行出错，见上表")

    def run_target(self, name, database_name, actor, pack, scope, sample, out, params):
        from caiwei.accounts.cli import authenticate_actor
        from caiwei.accounts.roles import Capability

        from ...models import TargetDatabase
        from ...services import start_run

        if not actor:
            raise CommandError("对运维对象执行需要 --actor（操作人账号）")
        databases = TargetDatabase.objects.filter(target__name=name)
        if database_name:
            databases = databases.filter(name=database_name)
        database = databases.order_by("pk").first()
        if database is None:
            raise CommandError(f"没有名为“{name}”的运维对象或其数据库")
        with authenticate_actor(actor, Capability.CHECKS_RUN) as user:
            run = start_run(user, database, pack, scope.as_dict(), sample, params=params)
        run.refresh_from_db()
        if run.status not in ("done", "failed"):
            self.stdout.write(f"检查 #{run.pk} 已排队，由后台任务进程执行（caiwei worker）")
            return
        if run.status == "failed":
            raise CommandError(f"检查 #{run.pk} 失败：{run.message}")
        rows = [
            {
                "id": r.rule_id,
                "title": r.title,
                "severity": r.severity,
                "count": r.count,
                "error": r.error,
                "new": r.new_count,
                "resolved": r.resolved_count,
                "keys": r.keys,
            }
            for r in run.results.all()
        ]
        self._summary(rows, run.seconds or 0)
        self._write(
            {"run": run.pk, "database": str(database), "as_of": run.as_of.isoformat(), "rules": rows}, out
        )

    def _progress(self, done, total, what):
        if self.stderr.isatty():
            self.stderr.write(f"\r{done}/{total} {what[:60]:<60}", ending="")

    def _summary(self, rules, seconds):
        for r in rules:
            state = f"出错：{r['error']}" if r["error"] else f"{r['count']} 条"
            self.stdout.write(f"{r['id']:<12}{_pad(r['title'], 28)}{state}")
        failing = sum(1 for r in rules if r["count"])
        self.stdout.write(f"共 {len(rules)} 条规则，{failing} 条发现问题，用时 {seconds:.2f} 秒")

    def _write(self, report, out):
        if not out:
            return
        text = json.dumps(report, ensure_ascii=False, indent=1, default=str)
        if str(out) == "-":
            sys.stdout.write(text + "\n")
        else:
            out.write_text(text, encoding="utf-8")
            self.stdout.write(f"已写入 {out}")


def _pack_names() -> str:
    try:
        return "、".join(shipped_packs())
    except RuleError as exc:  # a broken rule file must not stop generate-rules from rewriting it
        return f"（规则文件有误：{exc}）"


def _pad(text: str, width: int) -> str:
    """Pad to a terminal width where a Chinese character takes two columns."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(1, width - used)


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommandError(f"映射文件 {path} 无法读取：{exc}") from exc
