import json
import sys
from datetime import date
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from caiwei.regions.models import Region

from ... import cli, cli_statements
from ...engine import BREAKS, Tolerance
from ...models import ReconRun
from ...services import run_reconciliation
from ...sources import journal_files, sandbox_files


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"日期“{value}”格式应为 YYYY-MM-DD") from exc


class Command(BaseCommand):
    help = (
        "对账：pull 从 SFTP 或监视目录取银行文件；run 把代理银行文件、人民银行清算文件与财政库的支付凭证对账，保存差异并结转到下次对账；"
        "statement 输出对账单与余额调节表；signoff 月度对账签认；"
        "diff 比较两个库中的同一张表（校验和下推、只对不同的键区间二分）"
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="执行一次对账（--sandbox 用已加载的演练库及其银行文件）")
        run.add_argument("--sandbox", action="store_true", help="演练库：财政库与银行文件都取演练库的")
        run.add_argument("--db", help="财政库 URL（非演练库时）")
        run.add_argument("--files", help="银行文件目录（每家银行一个子目录，目录名为银行编码）")
        run.add_argument("--pboc", help="人民银行月度清算文件")
        run.add_argument(
            "--mq",
            nargs="?",
            const="",
            help="报文日志（JSON Lines 文件，或含 *.jsonl 的目录）：检查序号缺失与重复、回单缺失、死信；"
            "与 --sandbox 同用时可不写路径，取演练环境报文流程写下的日志",
        )
        run.add_argument(
            "--mq-wait",
            dest="mq_wait",
            type=int,
            default=30,
            help="回单等待时间（分钟）：凭证发出多久仍无回单才算差异",
        )
        run.add_argument("--region", required=True, help="对账所属的财政区划代码")
        run.add_argument("--from", dest="start", required=True, help="对账期间起 YYYY-MM-DD")
        run.add_argument("--to", dest="end", required=True, help="对账期间止 YYYY-MM-DD")
        run.add_argument("--as-of", dest="as_of", help="对账日，缺省为期间止")
        run.add_argument("--window", type=int, default=1, help="到账窗口 T+n 个工作日（缺省 1）")
        run.add_argument(
            "--transit", type=int, default=10, help="在途天数：凭证多少个工作日未见银行明细才算差异"
        )
        run.add_argument("--json", action="store_true", help="以 JSON 输出")
        pull = sub.add_parser("pull", help="立即从银行文件来源（SFTP、监视目录）取件")
        pull.add_argument("--source", type=int, help="只拉取这个来源（编号）；缺省为全部已启用的来源")
        pull.add_argument("--json", action="store_true", help="以 JSON 输出")
        cli.add_diff_arguments(
            sub.add_parser("diff", help="比较两个库中的同一张表（校验和下推、只对不同的键区间二分）")
        )
        cli_statements.add_arguments(sub)

    def handle(self, *args, **options):
        if options["action"] == "run":
            return self.run(options)
        if options["action"] == "pull":
            return self.pull(options)
        if options["action"] == "statement":
            return cli_statements.statement(self, options)
        if options["action"] == "signoff":
            return cli_statements.signoff(self, options)
        code = cli.run(options, self.stdout, self.stderr)
        # exit status as diff(1) from the shell: 0 identical, 1 differences, 2 error
        if code and getattr(self, "_called_from_command_line", False):
            sys.exit(code)
        return None

    def pull(self, o):
        """Pull now; exit status 1 when a source could not be pulled (refused files are reported, not failures)."""
        from ...intake import pull
        from ...models import BankFileSource

        sources = BankFileSource.objects.select_related("region", "bank_format").order_by("pk")
        if o["source"] is not None:
            sources = sources.filter(pk=o["source"])
            if not sources.exists():
                raise CommandError(f"银行文件来源 {o['source']} 不存在")
        else:
            sources = sources.filter(enabled=True)
        results = [pull(source) for source in sources]
        if o["json"]:
            # one write: Django's OutputWrapper ends every write with a newline
            self.stdout.write(
                json.dumps({"sources": [r.as_dict() for r in results]}, ensure_ascii=False, indent=1)
            )
        else:
            for r in results:
                self.stdout.write(f"{r.name}（第 {r.source} 号）：{r.text()}")
                for item in r.refused + r.duplicates:
                    self.stdout.write(f"  {item['error']['message']}")
            if not results:
                self.stdout.write("没有已启用的银行文件来源")
        failed = [r for r in results if not r.ok]
        if failed and getattr(self, "_called_from_command_line", False):
            sys.exit(1)

    def run(self, o):
        from caiwei.sandbox.service import bank_files_dir, default_url, mq_journal_path

        if o["sandbox"]:
            url, folder = default_url(), bank_files_dir()
        else:
            if not (o["db"] and o["files"]):
                raise CommandError("需要 --sandbox，或同时给出 --db 与 --files")
            url, folder = o["db"], Path(o["files"])
        if not folder.is_dir():
            raise CommandError(f"银行文件目录不存在：{folder}")
        region = Region.objects.filter(code=o["region"]).first()
        if region is None:
            raise CommandError(f"财政区划“{o['region']}”不存在")
        start, end = _date(o["start"]), _date(o["end"])
        as_of = _date(o["as_of"]) if o["as_of"] else end
        if start > end or end > as_of:
            raise CommandError("应满足 期间起 ≤ 期间止 ≤ 对账日")
        tolerance = {
            "date_window": o["window"],
            "transit_days": o["transit"],
            "receipt_minutes": o["mq_wait"],
        }
        journals = None
        if o["mq"] is not None:
            if not o["mq"] and not o["sandbox"]:
                raise CommandError("--mq 需要报文日志路径（只有 --sandbox 时可省略）")
            source = Path(o["mq"]) if o["mq"] else mq_journal_path()
            if not source.exists():
                raise CommandError(f"报文日志不存在：{source}")
            journals = journal_files(source)
        try:
            Tolerance.from_dict(tolerance)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        pboc = Path(o["pboc"]) if o["pboc"] else next(iter(sorted((folder / "pboc").glob("*.xml"))), None)
        run = ReconRun.objects.create(
            region=region, period_start=start, period_end=end, as_of=as_of, tolerance=tolerance
        )
        try:
            run_reconciliation(
                run, book_url=url, bank_files=sandbox_files(folder, url), pboc_file=pboc, mq_journals=journals
            )
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages)) from exc
        breaks = list(run.breaks.order_by("kind", "id"))
        if o["json"]:
            out = {
                "run": run.pk,
                "status": run.status,
                "sources": run.sources,
                "matched_by_key": run.matched_by_key,
                "matched_by_attributes": run.matched_by_attributes,
                "in_transit": run.in_transit,
                "breaks_new": run.breaks_new,
                "breaks_open": run.breaks_open,
                "breaks": [
                    {
                        "id": b.pk,
                        "kind": b.kind,
                        "reason": BREAKS[b.kind],
                        "vouchers": b.vouchers,
                        "lines": b.lines,
                        "note": b.note,
                        "book_amount": None if b.book_amount is None else f"{b.book_amount:.2f}",
                        "bank_amount": None if b.bank_amount is None else f"{b.bank_amount:.2f}",
                        "state": b.state,
                    }
                    for b in breaks
                ],
            }
            json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
            sys.stdout.write("\n")
            return
        self.stdout.write(
            f"对账 {run.pk}：银行明细 {run.sources['lines']} 笔（{run.sources['files']} 个文件，"
            f"拒收 {len(run.sources['refused'])} 个），凭证 {run.sources['vouchers']} 张；"
            f"按业务号相符 {run.matched_by_key}，按金额账户日期相符 {run.matched_by_attributes}，在途 {run.in_transit}；"
            f"差异 {run.breaks_open} 条（新 {run.breaks_new} 条）"
        )
        for b in breaks:
            self.stdout.write(f"  [{b.get_kind_display()}] {'、'.join(b.vouchers) or b.note}")
