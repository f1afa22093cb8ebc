from datetime import time

from django.core.exceptions import ValidationError
from django.db import models

from . import engine


def parse_periods(text: str) -> tuple[tuple[time, time], ...]:
    """“08:30-12:00,14:30-18:00” → ((08:30, 12:00), (14:30, 18:00)); “24:00” means midnight at the end."""
    periods = []
    for part in [p.strip() for p in text.replace("，", ",").split(",") if p.strip()]:
        try:
            start_s, end_s = (s.strip() for s in part.split("-"))
            start = time.fromisoformat(start_s)
            end = time(0, 0) if end_s == "24:00" else time.fromisoformat(end_s)
        except ValueError as exc:
            raise ValidationError(f"工作时段“{part}”格式应为 HH:MM-HH:MM") from exc
        if end != time(0, 0) and end <= start:
            raise ValidationError(f"工作时段“{part}”的结束时间应晚于开始时间")
        periods.append((start, end))
    periods.sort()
    for (_, end_a), (start_b, _) in zip(periods, periods[1:], strict=False):
        if end_a == time(0, 0) or start_b < end_a:
            raise ValidationError("工作时段不能重叠")
    return tuple(periods)


class BusinessCalendar(models.Model):
    """业务日历: working hours plus China's statutory holidays and 调休, or 7×24."""

    code = models.SlugField("代码", max_length=30, unique=True)
    name = models.CharField("名称", max_length=60)
    always_open = models.BooleanField("7×24 小时", default=False)
    periods = models.CharField(
        "工作时段",
        max_length=120,
        default="08:30-12:00,14:30-18:00",
        help_text="如 08:30-12:00,14:30-18:00；7×24 日历忽略此项",
    )
    use_statutory = models.BooleanField("采用国家法定节假日与调休", default=True)
    description = models.CharField("说明", max_length=200, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = verbose_name_plural = "业务日历"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not self.always_open:
            try:
                if not parse_periods(self.periods):
                    raise ValidationError({"periods": "非 7×24 日历至少需要一个工作时段"})
            except ValidationError as exc:
                raise ValidationError({"periods": exc.messages}) from exc

    def spec(self) -> engine.CalendarSpec:
        """The engine's view of this calendar, with administrator-added days and the key periods."""
        holidays: set = set()
        workdays: set = set()
        if self.use_statutory:
            statutory_holidays, statutory_workdays = engine.china_statutory_days(official_days())
            holidays |= statutory_holidays
            workdays |= statutory_workdays
        for day in self.days.all():
            (holidays if day.kind == CalendarDay.Kind.HOLIDAY else workdays).add(day.date)
            (workdays if day.kind == CalendarDay.Kind.HOLIDAY else holidays).discard(day.date)
        return engine.CalendarSpec(
            periods=() if self.always_open else parse_periods(self.periods),
            always_open=self.always_open,
            holidays=frozenset(holidays),
            workdays=frozenset(workdays),
            key_periods=tuple(p.as_engine() for p in KeyPeriod.objects.all()),
        )


class CalendarDay(models.Model):
    """管理员维护的日期: a day off or a working day that overrides the statutory data."""

    class Kind(models.TextChoices):
        HOLIDAY = "holiday", "休息日"
        WORKDAY = "workday", "工作日"

    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.CASCADE, related_name="days", verbose_name="日历"
    )
    date = models.DateField("日期")
    kind = models.CharField("类型", max_length=10, choices=Kind.choices)
    note = models.CharField("说明", max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        verbose_name = verbose_name_plural = "日历例外日期"
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="calendarday_once")]

    def __str__(self) -> str:
        return f"{self.date} {self.get_kind_display()}"


class KeyPeriod(models.Model):
    """关键时期 (年结、12月大支付、预算编制 ...): named date ranges with tighter service levels."""

    code = models.SlugField("代码", max_length=30)
    name = models.CharField("名称", max_length=60)
    start = models.DateField("开始日期")
    end = models.DateField("结束日期")
    note = models.CharField("说明", max_length=200, blank=True)

    class Meta:
        ordering = ["start"]
        verbose_name = verbose_name_plural = "关键时期"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__gte=models.F("start")), name="keyperiod_start_le_end"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.start}～{self.end}）"

    def clean(self) -> None:
        if self.start and self.end and self.end < self.start:
            raise ValidationError({"end": "结束日期不能早于开始日期"})

    def as_engine(self) -> engine.KeyPeriod:
        return engine.KeyPeriod(code=self.code, name=self.name, start=self.start, end=self.end)


class HolidayNotice(models.Model):
    """国务院办公厅关于某年部分节假日安排的通知, imported by an administrator: that year's 休/班 days.

    Nationwide, so shared by every calendar that follows the statutory days; it takes precedence over the
    package's schedule and the days computed from the law (see engine.china_statutory_days)."""

    year = models.PositiveSmallIntegerField("年份", unique=True)
    title = models.CharField("通知标题", max_length=200, blank=True)
    text = models.TextField("导入内容")
    imported_at = models.DateTimeField("导入时间", auto_now=True)
    imported_by = models.CharField("导入人", max_length=150, blank=True)

    class Meta:
        ordering = ["-year"]
        verbose_name = verbose_name_plural = "节假日安排通知"

    def __str__(self) -> str:
        return self.title or f"{self.year} 年部分节假日安排"


class HolidayNoticeDay(models.Model):
    notice = models.ForeignKey(
        HolidayNotice, on_delete=models.CASCADE, related_name="days", verbose_name="通知"
    )
    date = models.DateField("日期")
    kind = models.CharField("类型", max_length=10, choices=CalendarDay.Kind.choices)
    note = models.CharField("说明", max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        verbose_name = verbose_name_plural = "通知中的日期"
        constraints = [models.UniqueConstraint(fields=["notice", "date"], name="noticeday_once")]

    def __str__(self) -> str:
        return f"{self.date} {self.get_kind_display()}"


def official_days() -> dict[int, tuple[frozenset, frozenset]]:
    """Imported notices as the engine takes them: year → (休 days, 班 days). Read fresh on every call, so a
    calendar spec built after an import uses it (specs are not cached across requests)."""
    result: dict[int, tuple[set, set]] = {}
    for year, day, kind in HolidayNoticeDay.objects.values_list("notice__year", "date", "kind"):
        off, work = result.setdefault(year, (set(), set()))
        (off if kind == CalendarDay.Kind.HOLIDAY else work).add(day)
    return {year: (frozenset(off), frozenset(work)) for year, (off, work) in result.items()}
