import uuid
from collections import defaultdict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from caiwei.regions.scoping import RegionScopedQuerySet

from . import flow, sla

SEVERITY_CHOICES = [(s, s) for s in sla.SEVERITIES]
TYPE_CHOICES = [(t, t) for t in sla.TYPES]
CLOCK_CHOICES = [("first_response", "首次响应"), ("update", "进展更新"), ("resolution", "解决")]
# Systems and modules named in the seed documents' module lists.
SYSTEMS = [
    "预算编制",
    "项目库",
    "指标管理",
    "用款计划",
    "国库集中支付",
    "会计核算",
    "总预算会计",
    "工资统发",
    "政府采购",
    "非税收入",
    "资产管理",
    "债务管理",
    "决算",
    "对账管理",
    "电子凭证库",
    "印章库",
    "基础信息",
    "其他",
]


class SlaPolicy(models.Model):
    """服务时限策略: rules as data, editable by the project manager; presets from the seed contracts."""

    code = models.SlugField("代码", max_length=30, unique=True)
    name = models.CharField("名称", max_length=60)
    source = models.CharField("合同依据", max_length=300, blank=True)
    warn_ratio = models.FloatField("预警比例", default=0.8, help_text="已用时间达到目标的该比例时预警")
    regions = models.ManyToManyField(
        "regions.Region",
        blank=True,
        related_name="sla_policies",
        verbose_name="适用区划",
        help_text="该区划及其下级的新工单采用本策略；未指定区划的工单采用默认策略",
    )

    class Meta:
        ordering = ["code"]
        verbose_name = verbose_name_plural = "服务时限策略"

    def __str__(self) -> str:
        return self.name

    def engine(self) -> sla.Policy:
        groups: dict[tuple, dict[str, sla.Target]] = defaultdict(dict)
        for rule in self.rules.all():
            key = (rule.severity or None, rule.ticket_type or None, rule.key_period or None)
            groups[key][rule.clock] = rule.target()
        rules = tuple(
            sla.Rule(targets, frozenset({sev}) if sev else None, frozenset({typ}) if typ else None, period)
            for (sev, typ, period), targets in groups.items()
        )
        return sla.Policy(self.code, self.name, rules, self.warn_ratio, self.source)


class SlaRule(models.Model):
    """One clock's target for the tickets that match (blank severity/type/key period: any)."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="rules", verbose_name="策略")
    severity = models.CharField("严重程度", max_length=4, choices=SEVERITY_CHOICES, blank=True)
    ticket_type = models.CharField("工单类型", max_length=10, choices=TYPE_CHOICES, blank=True)
    key_period = models.SlugField(
        "关键时期", max_length=30, blank=True, help_text="关键时期代码，如 year-end"
    )
    clock = models.CharField("时限", max_length=20, choices=CLOCK_CHOICES)
    minutes = models.PositiveIntegerField("分钟", null=True, blank=True)
    workdays = models.PositiveSmallIntegerField("工作日", null=True, blank=True)
    same_day = models.BooleanField("当日办结", default=False)
    calendar = models.SlugField(
        "日历", max_length=30, default="workday", help_text="workday 工作时间；always 7×24"
    )

    class Meta:
        verbose_name = verbose_name_plural = "时限规则"
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "severity", "ticket_type", "key_period", "clock"], name="slarule_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.severity or '任意'}·{self.ticket_type or '任意'}·{self.get_clock_display()}"

    def clean(self) -> None:
        try:
            self.target()
        except ValueError as exc:
            raise ValidationError("分钟、工作日、当日办结三者须且只能填一项") from exc

    def target(self) -> sla.Target:
        return sla.Target(self.minutes, self.calendar, self.workdays, self.same_day)


class Ticket(models.Model):
    """工单."""

    class Channel(models.TextChoices):
        PORTAL = "portal", "门户"
        HOTLINE = "hotline", "热线"
        EMAIL = "email", "邮件"
        IM = "im", "微信/QQ"
        INSPECTION = "inspection", "巡检"
        CHECK = "check", "数据检查"

    class Tier(models.TextChoices):
        FIRST = "first", "一线"
        SECOND = "second", "二线"
        VENDOR = "vendor", "厂商"

    class RequesterKind(models.TextChoices):
        UNIT = "unit", "预算单位"
        BANK = "bank", "代理银行"
        FINANCE = "finance", "财政业务科室"
        INTERNAL = "internal", "内部"

    number = models.CharField("工单号", max_length=20, unique=True)
    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    policy = models.ForeignKey(SlaPolicy, on_delete=models.PROTECT, verbose_name="服务时限策略")
    channel = models.CharField("渠道", max_length=12, choices=Channel.choices, default=Channel.PORTAL)
    system = models.CharField("系统", max_length=20, choices=[(s, s) for s in SYSTEMS])
    module = models.CharField("模块", max_length=40, blank=True)
    ticket_type = models.CharField("类型", max_length=10, choices=TYPE_CHOICES)
    severity = models.CharField("严重程度", max_length=4, choices=SEVERITY_CHOICES, default="一般")
    title = models.CharField("标题", max_length=120)
    description = models.TextField("问题描述")
    status = models.CharField(
        "状态", max_length=12, choices=list(flow.STATUS_LABELS.items()), default=flow.NEW, db_index=True
    )
    tier = models.CharField("处理层级", max_length=8, choices=Tier.choices, default=Tier.FIRST)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
        verbose_name="处理人",
    )
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="requested_tickets",
        verbose_name="提出人账号",
    )
    requester_kind = models.CharField(
        "提出方", max_length=10, choices=RequesterKind.choices, default=RequesterKind.UNIT
    )
    requester_name = models.CharField("联系人", max_length=60)
    requester_org = models.CharField("单位", max_length=120, blank=True)
    requester_phone = models.CharField("联系电话", max_length=30, blank=True)
    # The address a mailed ticket came from: a reply from it may be threaded onto the ticket.
    requester_email = models.CharField("联系邮箱", max_length=254, blank=True)
    opened_at = models.DateTimeField("受理时间", default=timezone.now, db_index=True)
    responded_at = models.DateTimeField("首次响应", null=True, blank=True)
    resolved_at = models.DateTimeField("解决时间", null=True, blank=True)
    closed_at = models.DateTimeField("关闭时间", null=True, blank=True)
    due_first_response = models.DateTimeField("响应时限", null=True, blank=True, db_index=True)
    due_resolution = models.DateTimeField("解决时限", null=True, blank=True, db_index=True)
    # For the queue's 即将超时 / 已超时 views (desk.sla.queue_instants): kept with the due times on every status
    # change and reconciled by the SLA sweep; None while the clocks are stopped.
    sla_warn_at = models.DateTimeField("预警时刻", null=True, blank=True)
    sla_overdue_at = models.DateTimeField("超时时刻", null=True, blank=True)
    survey_reminded_at = models.DateTimeField("评价提醒时间", null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="登记人",
    )

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        verbose_name = verbose_name_plural = "工单"
        indexes = [
            models.Index(fields=["region", "status", "-opened_at"], name="ticket_queue"),
            # The open queue is a few percent of all tickets: partial indexes give it in order without a sort.
            models.Index(
                fields=["region", "-opened_at"],
                condition=models.Q(status__in=sorted(flow.OPEN_STATUSES)),
                name="ticket_open_recent",
            ),
            models.Index(
                fields=["region", "due_first_response", "-opened_at"],
                condition=models.Q(status__in=sorted(flow.OPEN_STATUSES)),
                name="ticket_open_due",
            ),
            models.Index(
                fields=["sla_overdue_at"],
                condition=models.Q(status__in=sorted(flow.OPEN_STATUSES)),
                name="ticket_open_overdue",
            ),
            models.Index(
                fields=["sla_warn_at"],
                condition=models.Q(status__in=sorted(flow.OPEN_STATUSES)),
                name="ticket_open_warn",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status in flow.OPEN_STATUSES


class TicketChange(models.Model):
    """状态变更: the history the SLA clocks are computed from."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="changes")
    at = models.DateTimeField(default=timezone.now)
    old_status = models.CharField(max_length=12)
    new_status = models.CharField(max_length=12)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.old_status}→{self.new_status}"

    @property
    def new_label(self) -> str:
        return flow.STATUS_LABELS.get(self.new_status, self.new_status)

    def as_flow(self) -> flow.Change:
        return flow.Change(self.at, self.old_status, self.new_status)


class TicketAssignment(models.Model):
    """分派记录: who handed the ticket from whom to whom (and between tiers), and when; ``by`` None is the system."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="assignments")
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    from_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    old_tier = models.CharField(max_length=8, choices=Ticket.Tier.choices, blank=True)
    new_tier = models.CharField(max_length=8, choices=Ticket.Tier.choices, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.from_user_id}→{self.to_user_id}"


class TicketComment(models.Model):
    """对话: replies to the requester and internal notes."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField("内容")
    internal = models.BooleanField("内部备注", default=False)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.at:%Y-%m-%d %H:%M}"


class HotlineCall(models.Model):
    """热线来电: answered or missed; a missed call must be called back the same business day."""

    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    at = models.DateTimeField("来电时间", default=timezone.now, db_index=True)
    caller_name = models.CharField("来电人", max_length=60, blank=True)
    caller_number = models.CharField("来电号码", max_length=30)
    caller_org = models.CharField("单位", max_length=120, blank=True)
    answered = models.BooleanField("已接听")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="坐席",
    )
    summary = models.CharField("内容摘要", max_length=300, blank=True)
    ticket = models.ForeignKey(
        Ticket,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="calls",
        verbose_name="关联工单",
    )
    callback_due = models.DateTimeField("回拨时限", null=True, blank=True)
    callback_at = models.DateTimeField("回拨时间", null=True, blank=True)
    callback_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="回拨人",
    )
    callback_note = models.CharField("回拨情况", max_length=300, blank=True)

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-at"]
        verbose_name = verbose_name_plural = "热线来电"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.caller_number}"

    @property
    def callback_pending(self) -> bool:
        return not self.answered and self.callback_at is None

    @property
    def callback_in_time(self) -> bool | None:
        if self.answered:
            return None
        return (
            self.callback_at is not None
            and self.callback_due is not None
            and self.callback_at <= self.callback_due
        )


class Survey(models.Model):
    """满意度评价 by the requester after resolution: 1–5 (4 and 5 count as satisfied)."""

    ticket = models.OneToOneField(
        Ticket, on_delete=models.CASCADE, related_name="survey", verbose_name="工单"
    )
    score = models.PositiveSmallIntegerField("评分", choices=[(i, str(i)) for i in range(1, 6)])
    comment = models.CharField("意见", max_length=500, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = verbose_name_plural = "满意度评价"
        constraints = [
            models.CheckConstraint(condition=models.Q(score__gte=1, score__lte=5), name="survey_score_1_5")
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.score}"

    @property
    def satisfied(self) -> bool:
        return self.score >= 4


class Complaint(models.Model):
    """投诉: the project manager decides whether it is valid; 3 valid ones in a year for a region breach seed 003."""

    BREACH_THRESHOLD = 3

    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    ticket = models.ForeignKey(
        Ticket,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="complaints",
        verbose_name="相关工单",
    )
    complainant = models.CharField("投诉人", max_length=60)
    description = models.TextField("投诉内容")
    at = models.DateTimeField("投诉时间", default=timezone.now)
    valid = models.BooleanField("有效投诉", null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="认定人",
    )
    decision_note = models.CharField("认定说明", max_length=300, blank=True)

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-at"]
        verbose_name = verbose_name_plural = "投诉"

    def __str__(self) -> str:
        return f"{self.region} {self.at:%Y-%m-%d} {self.complainant}"


class EscalationRule(models.Model):
    """升级规则: when a clock has used ``at_percent`` of its target, notify, reassign or raise the severity."""

    class Action(models.TextChoices):
        NOTIFY = "notify", "通知"
        REASSIGN = "reassign", "转二线并改派"
        RAISE = "raise", "提高严重程度"

    name = models.CharField("名称", max_length=60)
    clock = models.CharField("时限", max_length=20, choices=CLOCK_CHOICES, default="resolution")
    at_percent = models.PositiveSmallIntegerField("触发比例(%)", default=80)
    action = models.CharField("动作", max_length=10, choices=Action.choices, default=Action.NOTIFY)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="通知/改派给",
    )
    severity = models.CharField("仅限严重程度", max_length=4, choices=SEVERITY_CHOICES, blank=True)
    active = models.BooleanField("启用", default=True)

    class Meta:
        ordering = ["clock", "at_percent"]
        verbose_name = verbose_name_plural = "升级规则"

    def __str__(self) -> str:
        return f"{self.name}（{self.get_clock_display()} {self.at_percent}%：{self.get_action_display()}）"


class Escalation(models.Model):
    """A rule that has fired for a ticket (once per rule and ticket)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="escalations")
    rule = models.ForeignKey(EscalationRule, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    detail = models.CharField(max_length=300)

    class Meta:
        ordering = ["-at"]
        constraints = [models.UniqueConstraint(fields=["ticket", "rule"], name="escalation_once")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.rule_id}"


class Notification(models.Model):
    """站内通知."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    text = models.CharField(max_length=300)
    at = models.DateTimeField(default=timezone.now)
    read = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return self.text


class VendorOrder(models.Model):
    """厂商工单: a problem passed to the provincial development team, tracked by their reference until closed."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted", "已提交"
        ACCEPTED = "accepted", "厂商处理中"
        ANSWERED = "answered", "厂商已答复"
        CLOSED = "closed", "已关闭"

    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="vendor_orders", verbose_name="工单"
    )
    vendor = models.CharField("厂商", max_length=80, default="省级开发团队")
    reference = models.CharField("厂商单号", max_length=60)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.SUBMITTED)
    due = models.DateField("要求答复日期")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = verbose_name_plural = "厂商工单"
        constraints = [
            models.UniqueConstraint(fields=["vendor", "reference"], name="vendororder_reference_once")
        ]

    def __str__(self) -> str:
        return f"{self.vendor} {self.reference}"

    @property
    def overdue(self) -> bool:
        return self.status != self.Status.CLOSED and timezone.localdate() > self.due


class VendorFollowUp(models.Model):
    """跟进记录 of a vendor order."""

    order = models.ForeignKey(VendorOrder, on_delete=models.CASCADE, related_name="follow_ups")
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField("跟进情况", max_length=500)
    status = models.CharField("状态", max_length=10, choices=VendorOrder.Status.choices)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.order_id} {self.at:%Y-%m-%d}"


def attachment_path(instance, filename: str) -> str:
    """Stored under a generated name: the sender's name is only shown, never used as a path."""
    from .files import extension

    ext = extension(instance.name or filename)
    return f"desk/{instance.ticket.number}/{uuid.uuid4().hex}{'.' + ext if ext.isalnum() else ''}"


class TicketAttachment(models.Model):
    """附件, within the size and type limits (settings CAIWEI_ATTACHMENT_MAX_MB, CAIWEI_ATTACHMENT_TYPES)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    comment = models.ForeignKey(
        TicketComment,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="attachments",
        help_text="随哪条回复或内部备注上传；内部备注的附件提出人看不到",
    )
    file = models.FileField(upload_to=attachment_path, max_length=200)
    name = models.CharField("文件名", max_length=200)
    size = models.PositiveIntegerField("大小")
    content_type = models.CharField(max_length=100, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return self.name


class MailIntake(models.Model):
    """邮件受理记录: one row per message and mailbox (by Message-ID, else a digest), so a mail is taken in once.

    A message that could not be taken in is kept as 已隔离 with the reason; fetched again, it is retried.
    """

    class Status(models.TextChoices):
        DONE = "done", "已受理"
        QUARANTINED = "quarantined", "已隔离"

    mailbox = models.CharField("邮箱", max_length=200)
    message_id = models.CharField("Message-ID", max_length=255)
    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="受理区划")
    status = models.CharField("状态", max_length=12, choices=Status.choices)
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="mails", verbose_name="工单"
    )
    created_ticket = models.BooleanField("新建工单", default=False)
    sender = models.CharField("发件人", max_length=254, blank=True)
    subject = models.CharField("主题", max_length=200, blank=True)
    source = models.CharField("来源", max_length=300, blank=True, help_text="文件名或 IMAP UID")
    reason = models.CharField("隔离原因", max_length=500, blank=True)
    at = models.DateTimeField("处理时间", default=timezone.now, db_index=True)

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = verbose_name_plural = "邮件受理记录"
        constraints = [models.UniqueConstraint(fields=["mailbox", "message_id"], name="mailintake_once")]

    def __str__(self) -> str:
        return f"{self.mailbox} {self.message_id}"


class OutgoingMail(models.Model):
    """发件箱: written in the transaction that causes the mail, sent by the worker's tick with retries."""

    class Status(models.TextChoices):
        PENDING = "pending", "待发送"
        SENT = "sent", "已发送"
        FAILED = "failed", "发送失败"

    region_field = "ticket__region"

    to = models.CharField("收件人", max_length=254)
    subject = models.CharField("主题", max_length=200)
    body = models.TextField("正文")
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name="工单"
    )
    status = models.CharField(
        "状态", max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField("已尝试次数", default=0)
    next_attempt_at = models.DateTimeField("下次尝试", default=timezone.now)
    last_error = models.CharField("最近错误", max_length=500, blank=True)
    created_at = models.DateTimeField("生成时间", default=timezone.now)
    sent_at = models.DateTimeField("发送时间", null=True, blank=True)

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = verbose_name_plural = "待发邮件"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outgoing_due")]

    def __str__(self) -> str:
        return f"{self.to} {self.subject}"


class ReportSettings(models.Model):
    """运维月报的页眉与落款: the contract and who reports under it, per region (a league's covers its counties)."""

    region = models.OneToOneField(
        "regions.Region", on_delete=models.PROTECT, related_name="report_settings", verbose_name="财政区划"
    )
    contract_name = models.CharField("合同名称", max_length=120)
    issuer = models.CharField("报送单位", max_length=60, help_text="运维服务商或项目组，用于页眉与落款")
    recipient = models.CharField("主送单位", max_length=60, blank=True, help_text="如某某财政局，可不填")

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        ordering = ["region__path"]
        verbose_name = verbose_name_plural = "月报设置"

    def __str__(self) -> str:
        return f"{self.region} {self.contract_name}"
