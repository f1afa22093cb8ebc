"""``caiwei inspect run [--plan N] [--due]`` and ``caiwei inspect report <run> --out file.docx``."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ... import report, services
from ...models import AUTOMATED, Plan, Run


class Command(BaseCommand):
    help = (
        "巡检：run 生成到期巡检（--due）并执行未完成巡检中的自动巡检项（--plan 只处理一个计划）；"
        "report 生成一次巡检的巡检报告（Word）"
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="执行巡检")
        run.add_argument("--plan", type=int, help="只处理该巡检计划（编号）")
        run.add_argument("--due", action="store_true", help="先生成已到期、尚未生成的巡检")
        rep = sub.add_parser("report", help="生成巡检报告")
        rep.add_argument("run", type=int, help="巡检记录编号")
        rep.add_argument("--out", required=True, help="输出的 .docx 文件")

    def handle(self, *args, **options):
        if options["action"] == "report":
            run = Run.objects.select_related("plan", "plan__region").filter(pk=options["run"]).first()
            if run is None:
                raise CommandError(f"巡检记录 {options['run']} 不存在")
            out = Path(options["out"])
            try:
                out.write_bytes(report.render_docx(run))
            except OSError as exc:
                raise CommandError(f"无法写入 {out}：{exc.strerror}") from exc
            self.stdout.write(f"已生成巡检报告：{out}")
            return
        plans = Plan.objects.all()
        if options["plan"] is not None:
            plans = plans.filter(pk=options["plan"])
            if not plans.exists():
                raise CommandError(f"巡检计划 {options['plan']} 不存在")
        if options["due"]:
            created = services.tick(plans=plans, start_jobs=False)
            self.stdout.write(f"生成到期巡检 {len(created)} 次")
        pending = Run.objects.filter(
            plan__in=plans, status=Run.Status.OPEN, items__kind__in=AUTOMATED, items__result=""
        ).distinct()
        for run in pending.select_related("plan", "plan__region"):
            services.execute(run)
            items = list(run.items.all())
            self.stdout.write(
                f"{run}：正常 {sum(i.result == 'ok' for i in items)}，异常 {sum(i.result == 'abnormal' for i in items)}，"
                f"待人工 {sum(i.result == '' for i in items)}"
            )
        open_runs = Run.objects.filter(plan__in=plans, status=Run.Status.OPEN).count()
        self.stdout.write(f"未完成的巡检 {open_runs} 次")
