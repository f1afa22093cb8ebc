"""Targets 运维对象 (the finance systems maintained, each with its databases) and data-check runs and results."""

from __future__ import annotations

import json

import sqlalchemy as sa
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from sqlalchemy.engine import URL

from caiwei.desk.models import SYSTEMS
from caiwei.regions.scoping import RegionScopedQuerySet

from . import limits, sqlitefile, vault
from .engine import RuleError
from .sqlplan import Mapping

DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "oracle": "oracle+oracledb",
    "dm": "dm+dmPython",
    "sqlite": "sqlite",
}


class Target(models.Model):
    """运维对象: one finance business system of one region (预算一体化、国库支付、资产管理……)."""

    name = models.CharField("名称", max_length=60, unique=True)
    system = models.CharField("系统", max_length=20, choices=[(s, s) for s in SYSTEMS])
    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="财政区划")
    vendor = models.CharField("承建厂商", max_length=60, blank=True)
    description = models.TextField("说明", blank=True)
    is_sandbox = models.BooleanField("演练库", default=False)
    created_at = models.DateTimeField("登记时间", default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "运维对象"
        ordering = ["region__path", "name"]

    def __str__(self) -> str:
        return self.name


class TargetDatabase(models.Model):
    """A database of a target. The password is sealed (SM4-GCM) and never shown again."""

    audit_secret_fields = ("secret",)

    class Dialect(models.TextChoices):
        POSTGRESQL = "postgresql", "PostgreSQL"
        MYSQL = "mysql", "MySQL / MariaDB"
        ORACLE = "oracle", "Oracle"
        DM = "dm", "达梦 DM"
        SQLITE = "sqlite", "SQLite"

    target = models.ForeignKey(
        Target, on_delete=models.CASCADE, related_name="databases", verbose_name="运维对象"
    )
    name = models.CharField("名称", max_length=40, help_text="如：业务库、只读备库")
    dialect = models.CharField("数据库类型", max_length=12, choices=Dialect.choices)
    host = models.CharField("主机", max_length=120, blank=True)
    port = models.PositiveIntegerField("端口", null=True, blank=True, validators=[limits.validate_port])
    database = models.CharField("库名 / 服务名 / 文件路径", max_length=255)
    username = models.CharField("用户名", max_length=60, blank=True)
    secret = models.TextField("密码（加密）", blank=True, editable=False)
    read_only = models.BooleanField(
        "只读通道",
        default=True,
        help_text="只读账号或只读备库；数据检查只走只读通道，每条语句也在只读事务中执行",
    )
    timeout_s = models.PositiveIntegerField(
        "语句超时（秒）", default=300, validators=[limits.validate_timeout]
    )
    as_of = models.DateField(
        "固定检查日",
        null=True,
        blank=True,
        help_text="演练库用其截止日；留空为当天",
        validators=[limits.validate_date],
    )
    mapping = models.JSONField("表名与列名映射", default=dict, blank=True)
    last_test_at = models.DateTimeField("最近连接测试", null=True, blank=True)
    last_test_ok = models.BooleanField("测试通过", null=True, blank=True)
    last_test_message = models.CharField("测试结果", max_length=300, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "目标数据库"
        constraints = [models.UniqueConstraint(fields=["target", "name"], name="target_database_name")]

    def __str__(self) -> str:
        return f"{self.target.name} · {self.name}"

    def clean(self) -> None:
        try:
            Mapping.from_dict(self.mapping)
        except RuleError as exc:
            raise ValidationError({"mapping": str(exc)}) from exc
        if self.dialect != self.Dialect.SQLITE and not self.host:
            raise ValidationError({"host": "请填写主机"})
        if self.dialect == self.Dialect.SQLITE:
            self._check_sqlite_path()

    def _check_sqlite_path(self) -> None:
        """A SQLite target is a file inside the targets directory (or the sandbox), judged by what it resolves to;
        never one of the platform's own files (sqlitefile.py). Checked again each time a connection is opened."""
        try:
            sqlitefile.resolve(self.database)
        except sqlitefile.TargetRefused as exc:
            raise ValidationError({"database": str(exc)}) from exc

    # The fields that say where a connection goes and as whom: the sealed password is bound to them.
    CONNECTION_FIELDS = ("dialect", "host", "port", "database", "username")

    def connection_identity(self) -> str:
        """The connection the password belongs to; the password is sealed with it and unseals only with it."""
        try:
            port = int(self.port) if self.port not in (None, "") else None
        except (TypeError, ValueError):
            port = str(self.port)
        return json.dumps(
            [
                "caiwei.checks.database",
                self.dialect,
                self.host or "",
                port,
                self.database or "",
                self.username or "",
            ],
            ensure_ascii=False,
        )

    def changed_connection_fields(self, other: TargetDatabase) -> list[str]:
        """The connection fields whose values differ between this and ``other`` (the stored row)."""
        mine, theirs = json.loads(self.connection_identity()), json.loads(other.connection_identity())
        return [f for f, a, b in zip(self.CONNECTION_FIELDS, mine[1:], theirs[1:], strict=True) if a != b]

    def set_password(self, password: str) -> None:
        """Seal ``password`` for the connection as it is now (set the connection fields first)."""
        self.secret = vault.seal(password, self.connection_identity()) if password else ""

    def unsealed_password(self) -> str:
        """The plain password, only for the connection it was stored with (VaultError for any other)."""
        return vault.unseal(self.secret, self.connection_identity())

    @property
    def has_password(self) -> bool:
        return bool(self.secret)

    def url(self, hide_password: bool = False) -> str:
        if self.dialect == self.Dialect.SQLITE:
            return f"sqlite:///{self.database}"
        password = None
        if self.secret:
            password = "***" if hide_password else self.unsealed_password()
        url = URL.create(
            DRIVERS[self.dialect],
            username=self.username or None,
            password=password,
            host=self.host or None,
            port=self.port,
            database=self.database or None,
        )
        return url.render_as_string(hide_password=hide_password)

    @property
    def display_url(self) -> str:
        return self.url(hide_password=True)

    def engine(self) -> sa.Engine:
        """An engine for this database: a SQLite file only after it is judged again (at each connection); any other
        server with the password unsealed for exactly these connection fields."""
        if self.dialect == self.Dialect.SQLITE:
            return sqlitefile.engine(self.database)
        from .runner import connect

        return connect(self.url())

    def as_of_date(self):
        return self.as_of or timezone.localdate()

    def get_mapping(self) -> Mapping:
        return Mapping.from_dict(self.mapping)


class CheckSchedule(models.Model):
    """定时检查: a cron expression per database and packs, fired by the worker's tick."""

    database = models.ForeignKey(
        TargetDatabase, on_delete=models.CASCADE, related_name="schedules", verbose_name="数据库"
    )
    packs = models.CharField(
        "规则包", max_length=200, default="all", help_text="规则包名，逗号分隔；all 为全部"
    )
    cron = models.CharField(
        "执行时间（cron）",
        max_length=60,
        help_text="如 0 2 * * * 为每天 2 点",
        validators=[limits.validate_cron],
    )
    scope = models.JSONField("范围", default=dict, blank=True)
    sample = models.BooleanField("抽取样本与明细", default=True)
    enabled = models.BooleanField("启用", default=True)
    next_run_at = models.DateTimeField("下次执行", null=True, blank=True)
    last_run = models.ForeignKey(
        "CheckRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = verbose_name_plural = "定时检查"

    def __str__(self) -> str:
        return f"{self.database} {self.packs} {self.cron}"


class CheckRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "排队中"
        RUNNING = "running", "执行中"
        DONE = "done", "已完成"
        FAILED = "failed", "失败"

    database = models.ForeignKey(
        TargetDatabase, on_delete=models.PROTECT, related_name="runs", verbose_name="数据库"
    )
    packs = models.CharField("规则包", max_length=200)
    scope = models.JSONField("范围", default=dict, blank=True)
    as_of = models.DateField("检查日")
    sample = models.BooleanField("抽取样本与明细", default=True)
    params = models.JSONField(
        "规则参数", default=dict, blank=True, help_text="按规则覆盖的参数，{规则编号: {参数名: 值}}"
    )
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.QUEUED)
    message = models.TextField("说明", blank=True)
    done = models.PositiveIntegerField("已完成步数", default=0)
    total = models.PositiveIntegerField("总步数", default=0)
    created_at = models.DateTimeField("发起时间", default=timezone.now, db_index=True)
    started_at = models.DateTimeField("开始", null=True, blank=True)
    finished_at = models.DateTimeField("结束", null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="发起人",
    )
    schedule = models.ForeignKey(
        CheckSchedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rules_total = models.PositiveIntegerField("规则数", default=0)
    rules_failing = models.PositiveIntegerField("发现问题的规则", default=0)
    rules_error = models.PositiveIntegerField("执行出错的规则", default=0)
    findings = models.PositiveIntegerField("问题条数", default=0)

    class Meta:
        verbose_name = verbose_name_plural = "检查记录"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"检查 #{self.pk} {self.database}"

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class RuleResult(models.Model):
    run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="results", verbose_name="检查")
    rule_id = models.CharField("规则编号", max_length=30, db_index=True)
    pack = models.CharField("规则包", max_length=40)
    title = models.CharField("规则", max_length=100)
    severity = models.CharField("严重程度", max_length=4)
    module = models.CharField("模块", max_length=20)
    count = models.PositiveIntegerField("问题条数", null=True)
    amount = models.DecimalField("涉及金额", max_digits=20, decimal_places=2, null=True)
    keys = models.JSONField("问题数据主键", default=list)
    keys_truncated = models.BooleanField("主键已截断", default=False)
    columns = models.JSONField("样本列", default=list)
    sample = models.JSONField("样本（已脱敏）", default=list)
    units = models.JSONField("按预算单位", default=list)
    sql = models.TextField("列出全部问题数据的 SQL", blank=True)
    params = models.JSONField("参数", default=dict)
    error = models.TextField("错误", blank=True)
    seconds = models.FloatField("耗时（秒）", default=0)
    rule_version = models.PositiveIntegerField("本地规则版本", null=True, blank=True)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    new_count = models.PositiveIntegerField("新增", null=True)
    still_count = models.PositiveIntegerField("仍存在", null=True)
    resolved_count = models.PositiveIntegerField("已解决", null=True)
    new_keys = models.JSONField("新增的主键（前 200 条）", default=list)
    resolved_keys = models.JSONField("已解决的主键（前 200 条）", default=list)
    ticket = models.ForeignKey(
        "desk.Ticket",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="check_results",
        verbose_name="工单",
    )

    class Meta:
        verbose_name = verbose_name_plural = "规则检查结果"
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "rule_id"], name="rule_result_once")]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.title}"

    @property
    def failing(self) -> bool:
        return bool(self.count)


from .custom_models import LocalRule, LocalRuleVersion  # noqa: E402, F401  (本地规则, custom_models.py)
