import json
import os
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ...presets import PRESETS
from ...services import due
from ...sla import SEVERITIES, TYPES


class Command(BaseCommand):
    help = "服务台：due 按合同预设计算各时限的到期时间"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        d = sub.add_parser("due", help="首次响应、更新、解决三个时限的到期时间（ISO 8601；无要求为 null）")
        d.add_argument("--preset", required=True, choices=sorted(PRESETS))
        d.add_argument("--severity", required=True, choices=SEVERITIES)
        d.add_argument("--type", required=True, choices=TYPES)
        d.add_argument("--opened", required=True, help="受理时间，ISO 8601，如 2026-09-30T17:30+08:00")
        d.add_argument("--json", action="store_true", help="以 JSON 输出")
        sub.add_parser("sweep", help="按升级规则检查全部未办结工单（后台任务进程每分钟也会执行）")
        imp = sub.add_parser("import", help="导入工单（CSV：UTF-8 或 GBK；或 Excel），全部校验通过才写入")
        imp.add_argument("file", type=Path)
        imp.add_argument("--actor", required=True, help="导入人账号；密码取自 CAIWEI_PASSWORD 或提示输入")
        rep = sub.add_parser(
            "report", help="生成运维月报（Word；输出文件以 .pdf 结尾时为 PDF），按操作人的授权区划"
        )
        rep.add_argument("--month", help="YYYY-MM，缺省为本月")
        rep.add_argument("--actor", required=True, help="操作人账号；密码取自 CAIWEI_PASSWORD 或提示输入")
        rep.add_argument("--output", "-o", type=Path, required=True)
        mail = sub.add_parser(
            "fetch-mail",
            help="收取邮件为工单：--folder 读 .eml 目录，或 --imap-host 读 IMAP 邮箱；"
            "按 Message-ID 只受理一次，失败的邮件隔离（目录下 quarantine/，IMAP 加 $CaiweiQuarantine 标记）",
        )
        mail.add_argument("--folder", type=Path)
        mail.add_argument("--imap-host")
        mail.add_argument("--imap-user")
        mail.add_argument("--imap-port", type=int, default=993)
        mail.add_argument("--imap-mailbox", default="INBOX")
        mail.add_argument(
            "--region",
            required=True,
            action="append",
            help="本邮箱受理的区划代码（可重复；新工单登记在第一个区划，回复只追加到这些区划及其下级的工单）",
        )
        mail.add_argument(
            "--agent", required=True, help="以哪个坐席账号登记（须有处理工单权限及上述区划授权）"
        )
        mail.add_argument("--mailbox", help="邮箱名称，用于去重（缺省为目录路径或 IMAP 账号）")
        sub.add_parser("send-mail", help="立即发送待发邮件（后台任务进程每分钟也会发送，失败的按间隔重试）")

    def handle(self, *args, action, **options):
        if action == "import":
            return self.import_file(**options)
        if action == "report":
            return self.report(**options)
        if action == "fetch-mail":
            return self.fetch_mail(**options)
        if action == "send-mail":
            from ...outbox import send_pending

            counts = send_pending()
            self.stdout.write(
                f"已发送 {counts['sent']} 封，待重试 {counts['retry']} 封，放弃 {counts['failed']} 封"
            )
            return
        if action == "sweep":
            from ...escalation import sweep

            self.stdout.write(f"已触发 {sweep()} 次升级")
            return
        self.due(**options)

    def due(self, preset, severity, opened, **options):
        try:
            result = due(preset, severity, options["type"], opened)
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result, ensure_ascii=False))
            return
        labels = {"first_response": "首次响应", "update": "进展更新", "resolution": "解决"}
        for clock, value in result.items():
            self.stdout.write(f"{labels[clock]}：{value or '无要求'}")

    def fetch_mail(self, folder, imap_host, imap_user, imap_port, imap_mailbox, region, agent, mailbox, **_):
        from caiwei.accounts.models import User
        from caiwei.accounts.roles import Capability
        from caiwei.regions.models import Region
        from caiwei.regions.scoping import visible_regions

        from ...mail import Mailbox, fetch_folder, fetch_imap
        from ...outbox import send_pending

        user = User.objects.filter(username=agent, is_active=True).first()
        if user is None or not user.can(Capability.DESK_WORK):
            raise CommandError(f"坐席账号“{agent}”不存在、已停用或没有处理工单权限")
        regions = []
        for code in dict.fromkeys(region):
            target = Region.objects.filter(code=code).first()
            if target is None:
                raise CommandError(f"区划“{code}”不存在")
            if not visible_regions(user).filter(pk=target.pk).exists():
                raise CommandError(f"坐席账号“{agent}”没有区划“{target.name}”的授权")
            regions.append(target)
        if folder:
            if not folder.is_dir():
                raise CommandError(f"目录“{folder}”不存在")
            box = Mailbox(mailbox or f"folder:{folder.resolve()}", regions, user)
            outcomes = fetch_folder(folder, box)
        elif imap_host:
            password = os.environ.get("CAIWEI_IMAP_PASSWORD")
            if not (imap_user and password):
                raise CommandError("IMAP 需要 --imap-user 与环境变量 CAIWEI_IMAP_PASSWORD")
            box = Mailbox(
                mailbox or f"imap:{imap_user}@{imap_host}:{imap_port}/{imap_mailbox}", regions, user
            )
            outcomes = fetch_imap(imap_host, imap_user, password, box, mailbox=imap_mailbox, port=imap_port)
        else:
            raise CommandError("请指定 --folder 或 --imap-host")
        count = {
            s: sum(o.status == s for o in outcomes) for s in ("new", "reply", "duplicate", "quarantined")
        }
        refused = sum(len(o.refused) for o in outcomes)
        self.stdout.write(
            f"处理邮件 {len(outcomes)} 封：新建工单 {count['new']} 张，追加回复 {count['reply']} 条，"
            f"重复跳过 {count['duplicate']} 封，隔离 {count['quarantined']} 封，拒收附件 {refused} 个"
        )
        for o in outcomes:
            if o.status == "quarantined":
                self.stdout.write(f"  隔离：{o.reason}")
        sent = send_pending()
        self.stdout.write(f"回信：已发送 {sent['sent']} 封，待重试 {sent['retry']} 封（见“邮件受理”页）")

    def report(self, month, actor, output, **_):
        from caiwei.accounts.cli import authenticate_actor
        from caiwei.accounts.roles import Capability
        from caiwei.audit.log import record_export

        from ...report import monthly_report

        with authenticate_actor(actor, Capability.DESK_VIEW) as user:
            try:
                fmt = "pdf" if output.suffix.lower() == ".pdf" else "docx"
                name, data = monthly_report(user, month, fmt=fmt)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            output.write_bytes(data)
            record_export("desk.monthly_report", 1, {"month": month or "", "format": fmt})
        self.stdout.write(f"已生成 {name} → {output}")

    def import_file(self, file, actor, **_):
        from django.core.exceptions import ValidationError as Invalid

        from caiwei.accounts.cli import authenticate_actor
        from caiwei.accounts.roles import Capability

        from ...importer import import_tickets

        with authenticate_actor(actor, Capability.DESK_WORK) as user:
            try:
                count = import_tickets(user, file)
            except Invalid as exc:
                raise CommandError("导入失败，未写入任何工单：\n" + "\n".join(exc.messages)) from exc
        self.stdout.write(f"已导入 {count} 张工单")
