"""本地规则 (rules written by O&M staff) and their immutable versions; imported by models.py."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from caiwei.regions.scoping import RegionScopedQuerySet


class LocalRule(models.Model):
    """A rule of one region: its id and where it came from; its content lives in its versions."""

    rule_id = models.CharField("规则编号", max_length=30, unique=True)
    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, verbose_name="所属区划")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField("创建时间", default=timezone.now)
    source_rule = models.CharField("复制自出厂规则", max_length=30, blank=True)
    source_hash = models.CharField("复制时出厂规则文件的 SHA-256", max_length=64, blank=True)
    approved = models.ForeignKey(
        "LocalRuleVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="在用版本（已批准）",
    )

    objects = RegionScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "本地规则"
        ordering = ["rule_id"]

    def __str__(self) -> str:
        return self.rule_id

    @property
    def latest(self) -> LocalRuleVersion | None:
        return self.versions.order_by("-number").first()


class LocalRuleVersion(models.Model):
    """One saved state of a local rule: its YAML text never changes; only its approval moves on."""

    class Status(models.TextChoices):
        DRAFT = "draft", "草稿"
        SUBMITTED = "submitted", "待审批"
        APPROVED = "approved", "已批准"
        REJECTED = "rejected", "已驳回"

    rule = models.ForeignKey(
        LocalRule, on_delete=models.CASCADE, related_name="versions", verbose_name="规则"
    )
    number = models.PositiveIntegerField("版本号")
    text = models.TextField("规则文件（YAML）")
    sha256 = models.CharField("SHA-256", max_length=64)
    note = models.CharField("说明", max_length=100, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="编写人",
    )
    created_at = models.DateTimeField("保存时间", default=timezone.now)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.DRAFT)
    submitted_at = models.DateTimeField("提交时间", null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="审批人",
    )
    decided_at = models.DateTimeField("审批时间", null=True, blank=True)
    reason = models.TextField("审批意见", blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "本地规则版本"
        ordering = ["rule", "-number"]
        constraints = [models.UniqueConstraint(fields=["rule", "number"], name="local_rule_version_once")]

    def __str__(self) -> str:
        return f"{self.rule.rule_id} 第 {self.number} 版"

    def save(self, *args, **kwargs):
        if self.pk and LocalRuleVersion.objects.filter(pk=self.pk).exclude(text=self.text).exists():
            raise ValueError("规则版本保存后不可修改，请另存为新版本")
        super().save(*args, **kwargs)
