"""监控: the inventory of what is watched, probe results (raw for a while, then hourly roll-ups), alert rules,
maintenance windows, alerts and the group-robot webhooks they are sent to."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from caiwei.checks import vault
from caiwei.desk.models import SYSTEMS
from caiwei.desk.sla import SEVERITIES
from caiwei.regions.scoping import RegionScopedQuerySet

from .alerts import OP_LABELS
from .probes import KINDS

# The inventory's sections (清单分类) and the kinds in each.
CATEGORIES = {
    "host": ("主机", ("host", "host_ssh")),
    "database": ("数据库", ("database",)),
    "middleware": ("中间件", ("rabbitmq", "redis")),
    "service": ("服务与接口", ("http", "tcp", "promql")),
    "interface": ("银行与单位接口", ("freshness", "sequence", "sftp", "ftp")),
    "certificate": ("证书", ("tls",)),
    "job": ("后台任务", ("heartbeat",)),
}
CATEGORY_OF = {kind: code for code, (_, kinds) in CATEGORIES.items() for kind in kinds}
SEVERITY_CHOICES = [(s, s) for s in SEVERITIES]


class State(models.TextChoices):
    UNKNOWN = "unknown", "未探测"
    OK = "ok", "正常"
    ALERT = "alert", "告警"
    DOWN = "down", "不可用"
    PAUSED = "paused", "维护中"
    DISABLED = "disabled", "已停用"


STATE_CLASS = {"ok": "success", "alert": "warning", "down": "danger", "paused": "info"}


class Item(models.Model):
    """监控项: one thing watched, of one region and system, probed every ``interval_s`` seconds."""

    audit_secret_fields = ("secret", "heartbeat_hash")
    # Run state written by each probe (queryset updates, not audited as changes of the setting).
    audit_ignore_fields = (
        "state",
        "last_at",
        "last_ok",
        "last_value",
        "last_message",
        "last_metrics",
        "next_due_at",
        "streaks",
        "last_ping_at",
    )

    uid = models.UUIDField("标识", default=uuid.uuid4, editable=False, unique=True)
    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    system = models.CharField("系统", max_length=20, choices=[(s, s) for s in SYSTEMS])
    name = models.CharField("名称", max_length=80)
    kind = models.CharField("类型", max_length=12, choices=list(KINDS.items()))
    target_database = models.ForeignKey(
        "checks.TargetDatabase",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="monitor_items",
        verbose_name="登记的数据库",
        help_text="数据库类型：选登记的目标数据库（连接与密码取自它）",
    )
    config = models.JSONField("探测设置", default=dict, blank=True)
    secret = models.TextField("密码或令牌（加密）", blank=True, editable=False)
    interval_s = models.PositiveIntegerField("探测间隔（秒）", default=60)
    timeout_s = models.PositiveIntegerField("超时（秒）", default=10)
    calendar = models.CharField("业务日历", max_length=30, default="workday")
    enabled = models.BooleanField("启用", default=True)
    heartbeat_hash = models.CharField(
        "心跳令牌摘要", max_length=64, blank=True, db_index=True, editable=False
    )
    last_ping_at = models.DateTimeField("最近心跳", null=True, blank=True)
    state = models.CharField("状态", max_length=10, choices=State.choices, default=State.UNKNOWN)
    last_at = models.DateTimeField("最近探测", null=True, blank=True)
    last_ok = models.BooleanField("最近结果正常", null=True, blank=True)
    last_value = models.FloatField("最近值", null=True, blank=True)
    last_message = models.CharField("最近结果", max_length=300, blank=True)
    last_metrics = models.JSONField("最近指标", default=dict, blank=True)
    next_due_at = models.DateTimeField("下次探测", null=True, blank=True, db_index=True)
    streaks = models.JSONField("规则连续计数", default=dict, blank=True)
    created_at = models.DateTimeField("登记时间", default=timezone.now)
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
        verbose_name = verbose_name_plural = "监控项"
        ordering = ["region__path", "system", "name"]
        constraints = [models.UniqueConstraint(fields=["region", "name"], name="monitor_item_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def state_class(self) -> str:
        return STATE_CLASS.get(self.state, "secondary")

    @property
    def value_label(self) -> str:
        from .probes import METRIC_LABELS, PRIMARY

        return METRIC_LABELS.get(PRIMARY.get(self.kind, ""), "值")

    @property
    def category(self) -> str:
        return CATEGORY_OF.get(self.kind, "service")

    @property
    def category_label(self) -> str:
        return CATEGORIES[self.category][0]

    def secret_context(self) -> str:
        return f"caiwei.monitor.item:{self.uid}"

    def set_secret(self, value: str) -> None:
        self.secret = vault.seal(value, self.secret_context()) if value else ""

    def unsealed_secret(self) -> str:
        return vault.unseal(self.secret, self.secret_context())

    def clean(self) -> None:
        if self.interval_s is not None and not 10 <= self.interval_s <= 86400:
            raise ValidationError({"interval_s": "探测间隔应在 10 秒到 1 天之间"})
        if self.timeout_s is not None and not 1 <= self.timeout_s <= 120:
            raise ValidationError({"timeout_s": "超时应在 1 到 120 秒之间"})
        if self.kind == "database" and not self.target_database_id:
            raise ValidationError({"target_database": "数据库类型须选择登记的目标数据库"})
        if not isinstance(self.config, dict):
            raise ValidationError({"config": "探测设置应为 JSON 对象"})


class Result(models.Model):
    """One probe result, kept raw for ``CAIWEI_MONITOR_RAW_HOURS`` and then folded into the hourly roll-up."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="results", db_index=False)
    at = models.DateTimeField("时间")
    ok = models.BooleanField("正常")
    value = models.FloatField("值", null=True)
    latency_ms = models.FloatField("耗时（毫秒）", null=True)
    message = models.CharField("说明", max_length=200, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "探测结果"
        indexes = [models.Index(fields=["item", "at"], name="monitor_result_item_at")]

    def __str__(self) -> str:
        return f"{self.item_id} {self.at:%Y-%m-%d %H:%M:%S} {'正常' if self.ok else '失败'}"


class Rollup(models.Model):
    """Per item and hour: how many results, how many failed, min/avg/max of the main value."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="rollups", db_index=False)
    hour = models.DateTimeField("小时")
    count = models.PositiveIntegerField("次数")
    failures = models.PositiveIntegerField("失败次数")
    min_value = models.FloatField("最小值", null=True)
    avg_value = models.FloatField("平均值", null=True)
    max_value = models.FloatField("最大值", null=True)

    class Meta:
        verbose_name = verbose_name_plural = "探测结果（按小时）"
        constraints = [models.UniqueConstraint(fields=["item", "hour"], name="monitor_rollup_item_hour")]

    def __str__(self) -> str:
        return f"{self.item_id} {self.hour:%Y-%m-%d %H}时"


class AlertRule(models.Model):
    """告警规则: metric, comparison, threshold; N breaching results open it, M clean ones resolve it."""

    name = models.CharField("名称", max_length=60)
    region = models.ForeignKey(
        "regions.Region",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        verbose_name="适用区划",
        help_text="留空为全辖（仅全辖授权者可改）",
    )
    kind = models.CharField("适用类型", max_length=12, choices=list(KINDS.items()), blank=True)
    metric = models.CharField("指标", max_length=30)
    op = models.CharField("比较", max_length=2, choices=list(OP_LABELS.items()))
    threshold = models.FloatField("阈值")
    severity = models.CharField("严重程度", max_length=4, choices=SEVERITY_CHOICES, default="一般")
    open_after = models.PositiveSmallIntegerField("连续几次触发才告警", default=2)
    resolve_after = models.PositiveSmallIntegerField("连续几次正常才恢复", default=2)
    open_ticket = models.BooleanField("开故障工单", default=True)
    enabled = models.BooleanField("启用", default=True)

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "告警规则"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def metric_label(self) -> str:
        from .probes import METRIC_LABELS

        return METRIC_LABELS.get(self.metric, self.metric)

    def clean(self) -> None:
        if not 1 <= (self.open_after or 0) <= 100:
            raise ValidationError({"open_after": "应在 1 到 100 之间"})
        if not 1 <= (self.resolve_after or 0) <= 100:
            raise ValidationError({"resolve_after": "应在 1 到 100 之间"})


class MaintenanceWindow(models.Model):
    """维护窗口: items of a region (all, one system's, or the ones chosen) are silenced between start and end."""

    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    reason = models.CharField("事由", max_length=120)
    system = models.CharField("系统", max_length=20, choices=[(s, s) for s in SYSTEMS], blank=True)
    items = models.ManyToManyField(Item, blank=True, related_name="windows", verbose_name="监控项")
    starts_at = models.DateTimeField("开始")
    ends_at = models.DateTimeField("结束")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "维护窗口"
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return self.reason

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "结束时间应晚于开始时间"})


class Alert(models.Model):
    """告警: one per item and rule while open (duplicates fold into it), with its incident ticket."""

    class Status(models.TextChoices):
        OPEN = "open", "告警中"
        RESOLVED = "resolved", "已恢复"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="alerts", verbose_name="监控项")
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts", verbose_name="规则")
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.OPEN)
    severity = models.CharField("严重程度", max_length=4, choices=SEVERITY_CHOICES)
    opened_at = models.DateTimeField("开始", default=timezone.now)
    last_seen_at = models.DateTimeField("最近触发", default=timezone.now)
    resolved_at = models.DateTimeField("恢复时间", null=True, blank=True)
    hits = models.PositiveIntegerField("触发次数", default=1)
    value = models.FloatField("触发值", null=True)
    message = models.CharField("说明", max_length=300, blank=True)
    ticket = models.ForeignKey(
        "desk.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name="工单"
    )

    audit_ignore_fields = ("last_seen_at", "hits", "value", "message")

    class Meta:
        verbose_name = verbose_name_plural = "告警"
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "rule"], condition=models.Q(status="open"), name="monitor_one_open_alert"
            )
        ]

    def __str__(self) -> str:
        return f"{self.item.name} · {self.rule.name}"


class Webhook(models.Model):
    """群机器人: a 企业微信 or 钉钉 group robot of a region; the address (with its key) is sealed."""

    class Kind(models.TextChoices):
        WECOM = "wecom", "企业微信"
        DINGTALK = "dingtalk", "钉钉"

    audit_secret_fields = ("secret",)

    uid = models.UUIDField("标识", default=uuid.uuid4, editable=False, unique=True)
    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    name = models.CharField("名称", max_length=60)
    kind = models.CharField("类型", max_length=10, choices=Kind.choices)
    secret = models.TextField("机器人地址（加密）", editable=False)
    min_severity = models.CharField("最低严重程度", max_length=4, choices=SEVERITY_CHOICES, default="一般")
    enabled = models.BooleanField("启用", default=True)
    last_error = models.CharField("最近发送错误", max_length=300, blank=True)

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "群机器人"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def set_url(self, url: str) -> None:
        self.secret = vault.seal(url, f"caiwei.monitor.webhook:{self.uid}")

    def url(self) -> str:
        return vault.unseal(self.secret, f"caiwei.monitor.webhook:{self.uid}")
