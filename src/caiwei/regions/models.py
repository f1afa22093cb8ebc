from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models


class RegionLevel(models.IntegerChoices):
    PROVINCE = 1, "省级"
    CITY = 2, "市/盟级"
    COUNTY = 3, "县/旗/区级"


class Region(models.Model):
    """财政区划 (mof_div_code): province → city/league → county. ``path`` makes a subtree one prefix match."""

    code = models.CharField(
        "区划代码",
        max_length=9,
        unique=True,
        validators=[RegexValidator(r"^\d{6}(\d{3})?$", "区划代码应为 6 或 9 位数字")],
    )
    name = models.CharField("区划名称", max_length=60)
    level = models.PositiveSmallIntegerField("级次", choices=RegionLevel.choices)
    parent = models.ForeignKey(
        "self",
        verbose_name="上级区划",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    path = models.CharField("路径", max_length=200, editable=False, db_index=True)
    is_active = models.BooleanField("启用", default=True)

    class Meta:
        ordering = ["path"]
        verbose_name = verbose_name_plural = "财政区划"

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"

    def save(self, *args, **kwargs):
        old_path = self.path
        self.path = f"{self.parent.path if self.parent_id else ''}{self.code}/"
        super().save(*args, **kwargs)
        if old_path and old_path != self.path:
            for child in self.children.all():
                child.save()

    def clean(self) -> None:
        if self.parent_id:
            if self.parent.level >= self.level:
                raise ValidationError({"level": "级次必须低于上级区划"})
            if self.pk and self.parent.path.startswith(self.path or "\0"):
                raise ValidationError({"parent": "上级区划不能是自身或自身的下级"})
        elif self.level != RegionLevel.PROVINCE:
            raise ValidationError({"parent": "市/县级区划必须指定上级区划"})

    @property
    def indent(self) -> int:
        return self.path.count("/") - 1
