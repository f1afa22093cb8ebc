"""对账 runs, their breaks (carried from run to run until resolved with a reason), comments on breaks, and the bank
file layouts editable as data."""

from __future__ import annotations

import json

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


# The settings of a source an operator edits (page and API alike), besides its region and format and the secrets.
SOURCE_SETTINGS = (
    "name",
    "bank_code",
    "kind",
    "host",
    "port",
    "username",
    "host_key",
    "directory",
    "pattern",
    "interval_minutes",
    "business_days_only",
    "enabled",
    "reconcile_database",
)


class BankFileSource(models.Model):
    """银行文件来源: where an agent bank's files are fetched from — an SFTP server (the password or private key sealed
    with SM4-GCM, bound to host, port and user; the server's host key pinned by fingerprint) or a watched folder on
    this server — on a schedule of every n minutes, on business days only if asked. See recon/intake.py."""

    audit_secret_fields = ("secret", "key_secret")
    # Run state written by each pull (queryset updates, not audited as changes of the setting).
    audit_ignore_fields = ("next_run_at", "last_run_at", "last_ok", "last_message", "failures")

    class Kind(models.TextChoices):
        SFTP = "sftp", "SFTP 拉取"
        FOLDER = "folder", "监视目录"

    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    name = models.CharField("名称", max_length=80)
    bank_code = models.CharField("银行编码", max_length=12)
    bank_format = models.ForeignKey(BankFormat, on_delete=models.PROTECT, verbose_name="银行文件格式")
    kind = models.CharField("方式", max_length=8, choices=Kind.choices)
    host = models.CharField("主机", max_length=120, blank=True)
    port = models.PositiveIntegerField("端口", default=22)
    username = models.CharField("用户名", max_length=60, blank=True)
    secret = models.TextField("密码（加密）", blank=True, editable=False)
    key_secret = models.TextField("私钥（加密）", blank=True, editable=False)
    host_key = models.CharField(
        "主机密钥指纹",
        max_length=100,
        blank=True,
        help_text="如 SHA256:…（ssh-keygen -lf 的写法）；不符即拒绝连接",
    )
    directory = models.CharField("目录", max_length=255, help_text="SFTP 为远程目录；监视目录为本机目录")
    pattern = models.CharField("文件名模式", max_length=120, default="*", help_text="如 *_支付清单_*.csv")
    interval_minutes = models.PositiveIntegerField("拉取间隔（分钟）", default=60)
    business_days_only = models.BooleanField("仅工作日", default=True)
    enabled = models.BooleanField("启用", default=True)
    # Scheduled reconciliation: after a pull that accepted new files, the bank's month so far is reconciled against
    # this finance database with every file of the month taken from this source (empty: files are only taken).
    reconcile_database = models.ForeignKey(
        "checks.TargetDatabase",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="取件后对账的财政数据库",
        help_text="选定后，每次取到新文件即对本月至今对账（本银行、本来源本月取到的全部文件）",
    )
    next_run_at = models.DateTimeField("下次拉取", null=True, blank=True)
    last_run_at = models.DateTimeField("最近拉取", null=True, blank=True)
    last_ok = models.BooleanField("最近拉取成功", null=True, blank=True)
    last_message = models.CharField("最近拉取结果", max_length=500, blank=True)
    failures = models.PositiveIntegerField("连续失败次数", default=0)
    created_at = models.DateTimeField("创建时间", default=timezone.now)

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "银行文件来源"
        ordering = ["region", "bank_code", "name"]

    def __str__(self) -> str:
        return f"{self.name}（{self.get_kind_display()}）"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from .intake import source_problems

        problems = source_problems(self)
        if problems:
            raise ValidationError(problems)

    def connection_identity(self) -> str:
        """What the sealed password and key belong to: they unseal only for the same host, port and user."""
        return json.dumps(
            ["caiwei.recon.sftp", self.host or "", int(self.port or 0), self.username or ""],
            ensure_ascii=False,
        )

    def set_password(self, password: str) -> None:
        from caiwei.checks import vault

        self.secret = vault.seal(password, self.connection_identity()) if password else ""

    def set_private_key(self, key_text: str) -> None:
        from caiwei.checks import vault

        self.key_secret = vault.seal(key_text, self.connection_identity()) if key_text else ""

    def unsealed_password(self) -> str:
        from caiwei.checks import vault

        return vault.unseal(self.secret, self.connection_identity())

    def unsealed_private_key(self) -> str:
        from caiwei.checks import vault

        return vault.unseal(self.key_secret, self.connection_identity())


class BankFileIntake(models.Model):
    """One file taken in 银行文件取件记录 — fetched from a source or uploaded on the page: accepted whole (stored under
    var/recon-inbox/<区划>/<银行>/) or refused whole with the reader's error (file, line, byte offset, field)."""

    class State(models.TextChoices):
        ACCEPTED = "accepted", "已接收"
        REFUSED = "refused", "已拒收"
        DUPLICATE = "duplicate", "重复（已取过）"

    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    source = models.ForeignKey(
        BankFileSource,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="intakes",
        verbose_name="来源",
    )
    bank_code = models.CharField("银行编码", max_length=12)
    bank_format = models.ForeignKey(BankFormat, on_delete=models.PROTECT, verbose_name="银行文件格式")
    format_version = models.PositiveIntegerField("格式版本")
    name = models.CharField("文件名", max_length=255)
    size = models.BigIntegerField("字节数")
    mtime = models.DateTimeField("文件修改时间", null=True, blank=True)
    sha256 = models.CharField("内容摘要（SHA-256）", max_length=64, blank=True, db_index=True)
    fetched_at = models.DateTimeField("取件时间", default=timezone.now, db_index=True)
    state = models.CharField("状态", max_length=10, choices=State.choices)
    # FormatError.as_dict(), or the same keys for a file refused by its name or size
    error = models.JSONField("拒收原因", null=True, blank=True)
    lines = models.PositiveIntegerField("明细笔数", default=0)
    amount = models.DecimalField("明细金额", max_digits=18, decimal_places=2, default=0)
    path = models.CharField("保存位置", max_length=500, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, verbose_name="上传人"
    )

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "银行文件取件记录"
        ordering = ["-fetched_at", "-id"]
        constraints = [
            # The same remote file (name, size, modification time) is taken once per source.
            models.UniqueConstraint(
                fields=["source", "name", "size", "mtime"], name="recon_intake_once_per_source"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.get_state_display()}）"

    @property
    def message(self) -> str:
        return (self.error or {}).get("message", "")
