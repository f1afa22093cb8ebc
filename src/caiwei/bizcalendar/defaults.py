"""The calendars and key periods a new installation starts with."""

from datetime import date

CALENDARS = [
    (
        "workday",
        "工作日历（法定节假日与调休）",
        False,
        "08:30-12:00,14:30-18:00",
        True,
        "工作日工作时间，遵循国家法定节假日和调休安排",
    ),
    ("always", "7×24 小时", True, "", False, "宕机、重大故障等要求全天候响应的时限"),
]
# Key periods of the current fiscal year cycle; administrators add next year's in the admin.
KEY_PERIODS = [
    ("budget", "预算编制", date(2026, 9, 1), date(2026, 11, 30), "一上一下、二上二下"),
    ("dec-pay", "12月大支付", date(2026, 12, 1), date(2026, 12, 31), "年底集中支付高峰"),
    ("year-end", "年结", date(2026, 12, 25), date(2027, 1, 20), "年终结转结余、新年度初始化"),
]


def ensure_defaults(calendar_model, key_period_model) -> None:
    """Create the default calendars and key periods that are missing (models passed in: migrations use theirs)."""
    for code, name, always, periods, statutory, description in CALENDARS:
        calendar_model.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "always_open": always,
                "periods": periods,
                "use_statutory": statutory,
                "description": description,
            },
        )
    for code, name, start, end, note in KEY_PERIODS:
        key_period_model.objects.get_or_create(
            code=code, start=start, defaults={"name": name, "end": end, "note": note}
        )
