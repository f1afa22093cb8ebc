"""对账 runs, their breaks (carried from run to run until resolved with a reason), comments on breaks, and the bank
file layouts editable as data."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from caiwei.regions.scoping import RegionScopedQuerySet

from .engine import BREAKS


class BankFormat(models.Model):
    """A bank's file layout 银行文件格式定义 (YAML, see recon/formats.py); each save is a new version."""

    code = models.SlugField("编号", max_length=40, unique=True)
    name = models.CharField("名称", max_length=80)
    bank_code = models.CharField("银行编码", max_length=12, blank=True)
    definition = models.TextField("格式定义（YAML）")
    version = models.PositiveIntegerField("版本", default=1)
    updated_at = models.DateTimeField("修改时间", default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, verbose_name="修改人"
    )

    class Meta:
        verbose_name = verbose_name_plural = "银行文件格式"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name}（第 {self.version} 版）"


class ReconRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "排队中"
        RUNNING = "running", "执行中"
        DONE = "done", "已完成"
        FAILED = "failed", "失败"

    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    database = models.ForeignKey(
        "checks.TargetDatabase", null=True, blank=True, on_delete=models.PROTECT, verbose_name="财政数据库"
    )
    period_start = models.DateField("对账期间起")
    period_end = models.DateField("对账期间止")
    as_of = models.DateField("对账日")
    tolerance = models.JSONField("容差规则", default=dict, blank=True)
    sources = models.JSONField(
        "数据来源", default=dict, blank=True
    )  # files read, refused files with the error
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField("说明", blank=True)
    matched_by_key = models.PositiveIntegerField("按业务号相符", default=0)
    matched_by_attributes = models.PositiveIntegerField("按金额账户日期相符", default=0)
    split_vouchers = models.PositiveIntegerField("分笔支付的凭证", default=0)
    in_transit = models.PositiveIntegerField("在途凭证", default=0)
    cleared_lines = models.PositiveIntegerField("相符的清算", default=0)
    breaks_new = models.PositiveIntegerField("新差异", default=0)
    breaks_open = models.PositiveIntegerField("未解决差异", default=0)
    created_at = models.DateTimeField("发起时间", default=timezone.now, db_index=True)
    started_at = models.DateTimeField("开始", null=True, blank=True)
    finished_at = models.DateTimeField("结束", null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, verbose_name="发起人"
    )
    # Per bank and day: bank lines, book vouchers, matched, in transit … and the reconciling items of the breaks,
    # taken from DuckDB when the run executes (recon/statements.py ``compute_totals``); the statements read them.
    totals = models.JSONField("按银行按日汇总", default=dict, blank=True, editable=False)

    objects = RegionScopedQuerySet.as_manager()

    audit_ignore_fields = ("totals",)  # large; what was signed is recorded with each signature

    class Meta:
        verbose_name = verbose_name_plural = "对账"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"对账 {self.pk}（{self.period_start}—{self.period_end}）"

    def save(self, *args, **kwargs):
        if self.pk and not self._state.adding:
            from .services import ensure_run_writable

            ensure_run_writable(self)
        super().save(*args, **kwargs)


class ReconBreak(models.Model):
    """A difference 差异 found by a run; the same difference found by a later run is the same break (by its
    fingerprint), carried until resolved."""

    class State(models.TextChoices):
        OPEN = "open", "未解决"
        RESOLVED = "resolved", "已解决"
        CLEARED = "cleared", "已消除"  # a later run no longer finds it

    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    database = models.ForeignKey(
        "checks.TargetDatabase", null=True, blank=True, on_delete=models.PROTECT, verbose_name="财政数据库"
    )
    fingerprint = models.CharField("差异标识", max_length=64, db_index=True)
    kind = models.CharField(
        "差异类别", max_length=20, choices=[(k, v.split("：")[0]) for k, v in BREAKS.items()]
    )
    vouchers = models.JSONField("支付凭证号", default=list, blank=True)
    lines = models.JSONField("银行明细", default=list, blank=True)  # [{file, line, serial, amount}]
    book_amount = models.DecimalField("我方金额", max_digits=18, decimal_places=2, null=True, blank=True)
    bank_amount = models.DecimalField("银行金额", max_digits=18, decimal_places=2, null=True, blank=True)
    note = models.CharField("备注", max_length=200, blank=True)
    first_run = models.ForeignKey(
        ReconRun, on_delete=models.PROTECT, related_name="+", verbose_name="首次发现"
    )
    last_run = models.ForeignKey(
        ReconRun, on_delete=models.PROTECT, related_name="breaks", verbose_name="最近发现"
    )
    state = models.CharField(
        "处理状态", max_length=10, choices=State.choices, default=State.OPEN, db_index=True
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="责任人",
    )
    ticket = models.ForeignKey(
        "desk.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name="工单"
    )
    resolution = models.TextField("处理说明", blank=True)
    resolved_at = models.DateTimeField("解决时间", null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="解决人",
    )
    created_at = models.DateTimeField("发现时间", default=timezone.now)
    # Where the difference belongs: the bank and the day (the voucher's date, else the bank line's, a clearing
    # difference the first of its month) — what a monthly sign-off of that bank closes.
    bank_code = models.CharField("银行编码", max_length=12, blank=True, db_index=True, editable=False)
    day = models.DateField("所属日期", null=True, blank=True, editable=False)

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "对账差异"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(state="resolved") | ~models.Q(resolution=""),
                name="recon_break_resolved_reason",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}：{'、'.join(self.vouchers[:3]) or self.note}"

    def save(self, *args, **kwargs):
        # A signed period is read-only, whoever writes (page, API, admin, command): services decides.
        if not getattr(self, "_period_checked", False):
            from .services import ensure_break_writable

            ensure_break_writable(self)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        from .services import ensure_break_writable

        ensure_break_writable(self, "删除差异")
        return super().delete(*args, **kwargs)

    @property
    def reason(self) -> str:
        return BREAKS.get(self.kind, "")

    def age_days(self, today=None) -> int:
        today = today or timezone.localdate()
        return (today - timezone.localtime(self.created_at).date()).days


class BreakComment(models.Model):
    brk = models.ForeignKey(
        ReconBreak, on_delete=models.CASCADE, related_name="comments", verbose_name="差异"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, verbose_name="填写人")
    text = models.TextField("意见")
    created_at = models.DateTimeField("时间", default=timezone.now)

    class Meta:
        verbose_name = verbose_name_plural = "差异意见"
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.author}：{self.text[:30]}"

    def save(self, *args, **kwargs):
        from .services import ensure_break_writable

        ensure_break_writable(self.brk, "填写意见")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        from .services import ensure_break_writable

        ensure_break_writable(self.brk, "删除意见")
        return super().delete(*args, **kwargs)


class ReconSignoff(models.Model):
    """The monthly sign-off 月度对账签认 of one bank in one region: the bank's user and a finance user each sign
    the statements of a run (either first); signed by both, the month is read-only for that bank."""

    class State(models.TextChoices):
        PENDING = "pending", "待签认"
        BANK = "bank", "银行已签"
        FINANCE = "finance", "财政已签"
        SIGNED = "signed", "已签认"

    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    bank_code = models.CharField("银行编码", max_length=12)
    month = models.DateField("月份")  # the first day of the month
    run = models.ForeignKey(
        ReconRun, on_delete=models.PROTECT, related_name="signoffs", verbose_name="所签认的对账"
    )
    state = models.CharField("状态", max_length=10, choices=State.choices, default=State.PENDING)
    bank_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="银行签认人",
    )
    bank_signed_at = models.DateTimeField("银行签认时间", null=True, blank=True)
    finance_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="财政签认人",
    )
    finance_signed_at = models.DateTimeField("财政签认时间", null=True, blank=True)
    figures = models.JSONField("签认时的调节表数字", default=dict, blank=True)
    created_at = models.DateTimeField("创建时间", default=timezone.now)

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "月度对账签认"
        ordering = ["-month", "bank_code"]
        constraints = [
            models.UniqueConstraint(fields=["region", "bank_code", "month"], name="recon_signoff_once"),
            models.CheckConstraint(
                condition=models.Q(bank_user__isnull=True)
                | models.Q(finance_user__isnull=True)
                | ~models.Q(bank_user=models.F("finance_user")),
                name="recon_signoff_two_people",
                violation_error_message="同一人不能同时代表银行和财政签认",
            ),
            models.CheckConstraint(
                condition=(models.Q(bank_user__isnull=True) | models.Q(bank_signed_at__isnull=False))
                & (models.Q(finance_user__isnull=True) | models.Q(finance_signed_at__isnull=False))
                & (
                    ~models.Q(state="signed")
                    | (models.Q(bank_user__isnull=False) & models.Q(finance_user__isnull=False))
                ),
                name="recon_signoff_state",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.region.name} {self.bank_code} {self.month:%Y年%m月} 对账签认（{self.get_state_display()}）"

    def save(self, *args, **kwargs):
        # A fully signed sign-off is final: its row is never changed again.
        if self.pk and not self._state.adding:
            stored = ReconSignoff.objects.filter(pk=self.pk).values_list("state", flat=True).first()
            if stored == self.State.SIGNED:
                from django.core.exceptions import ValidationError

                raise ValidationError("该月对账已签认，签认记录不能再修改")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.state == self.State.SIGNED:
            from django.core.exceptions import ValidationError

            raise ValidationError("该月对账已签认，签认记录不能删除")
        return super().delete(*args, **kwargs)
