import json
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ... import service
from ...generator import FAULT_TYPES, GenerateSpec, SpecError, parse_faults


class Command(BaseCommand):
    help = (
        "演练环境：generate 生成演练库；demo 载入快速上手用的小型演练库；flow 经 RabbitMQ 收发凭证与回单报文"
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        gen = sub.add_parser("generate", help="生成一个财政年度的预算执行演练库（会先删除目标库中的同名表）")
        gen.add_argument(
            "--db", required=True, help="目标库 URL，如 sqlite:///x.sqlite3、postgresql://…、mysql://…"
        )
        gen.add_argument("--regions", default="152500000:3", help="市/盟区划代码:县数，如 152500000:3")
        gen.add_argument("--year", type=int, default=2026)
        gen.add_argument("--payments", type=int, default=20000)
        gen.add_argument("--seed", type=int, default=1)
        gen.add_argument(
            "--faults", default="", help=f"故障：类型=次数,…，或 all=1。类型：{'、'.join(FAULT_TYPES)}"
        )
        gen.add_argument("--overdue-days", type=int, default=3)
        gen.add_argument("--manifest", type=Path, help="故障清单（JSON）输出路径")
        gen.add_argument("--bank-files", type=Path, help="银行文件输出目录")
        demo = sub.add_parser("demo", help="载入快速上手用的演练库（盟本级加 3 个旗县，约 2 万笔支付）")
        demo.add_argument("--if-missing", action="store_true", help="已有演练库时跳过")
        flow = sub.add_parser("flow", help="把演练库的支付凭证经 RabbitMQ 发往各代理银行并收回回单")
        flow.add_argument("--amqp", required=True, help="如 amqp://guest:guest@127.0.0.1:5672/")
        flow.add_argument("--db", help="演练库 URL（缺省为快速上手的演练库）")
        flow.add_argument(
            "--faults", default="", help="gap=1,duplicate=1,unconsumed=2,stopped_consumer=1,dead_letter=1"
        )
        flow.add_argument("--prefix", default="caiwei.sandbox")
        flow.add_argument("--limit", type=int, default=2000, help="最多发送的凭证数")
        flow.add_argument("--seed", type=int, default=1)
        flow.add_argument("--manifest", type=Path)
        flow.add_argument(
            "--journal",
            type=Path,
            help="报文日志（JSON Lines）输出路径，缺省为 var/sandbox-mq-journal.jsonl；对账读它",
        )

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"do_{action}")(**options)
        except SpecError as exc:
            raise CommandError(str(exc)) from exc

    def progress(self, done: int, total: int) -> None:
        if sys.stderr.isatty() or done == total:
            self.stderr.write(f"\r已生成 {done}/{total} 笔支付", ending="")

    def do_generate(self, db, regions, year, payments, seed, faults, overdue_days, manifest, bank_files, **_):
        if payments < 1:
            raise CommandError("--payments 至少为 1")
        spec = GenerateSpec(
            year=year,
            regions=regions,
            payments=payments,
            seed=seed,
            faults=parse_faults(faults),
            overdue_days=overdue_days,
        )
        started = time.perf_counter()
        result = service.run_generate(
            db, spec, manifest=manifest, bank_dir=bank_files, progress=self.progress
        )
        elapsed = time.perf_counter() - started
        rows = sum(v for k, v in result.counts.items() if k != "bank_files")
        self.stderr.write("")
        self.stdout.write(
            f"已生成：{result.counts.get('pay_voucher', 0)} 笔支付，共 {rows} 行，用时 {elapsed:.1f} 秒"
            f"（{rows / elapsed:,.0f} 行/秒）；注入故障 {len(result.faults)} 处"
        )
        if manifest:
            self.stdout.write(f"故障清单：{manifest}")
        if bank_files:
            self.stdout.write(f"银行文件：{bank_files}（{result.counts.get('bank_files', 0)} 个）")

    def do_demo(self, if_missing=False, **_):
        if if_missing and service.summary().get("loaded"):
            self.stdout.write("演练库已存在，跳过")
            return
        started = time.perf_counter()
        result = service.load_default()
        self.stdout.write(
            f"演练库已载入：{result.counts['pay_voucher']} 笔支付，{len(result.faults)} 处故障，"
            f"用时 {time.perf_counter() - started:.1f} 秒（{service.default_url()}）"
        )

    def do_flow(self, amqp, db, faults, prefix, limit, seed, manifest, journal=None, **_):
        from ...mqexport import publish_from_db

        counts = {}
        for part in [p for p in faults.split(",") if p.strip()]:
            name, _, n = part.partition("=")
            counts[name.strip()] = int(n or 1)
        result = publish_from_db(
            db or service.default_url(),
            amqp,
            prefix=prefix,
            faults=counts,
            limit=limit,
            seed=seed,
            journal=journal or service.mq_journal_path(),
        )
        text = json.dumps(result, ensure_ascii=False, indent=1, default=str)
        if manifest:
            manifest.write_text(text)
        self.stdout.write(text if not manifest else f"报文清单：{manifest}")
