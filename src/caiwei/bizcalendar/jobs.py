"""The worker's tick warns (in the worker's log, like the other tick hooks) when the calendars run on law-computed
days only: no official 调休 schedule for this year, or from 1 November for next year."""

import logging

from django.utils import timezone

from caiwei.jobs.runner import on_tick

log = logging.getLogger("caiwei.bizcalendar")
_warned: dict = {}  # (date, years) already logged: once a day per process, not every minute


@on_tick
def holiday_notice_tick() -> list[int]:
    from .notice import missing_message, missing_years

    today = timezone.localdate()
    years = missing_years(today)
    if years and _warned.get("last") != (today, tuple(years)):
        log.warning("业务日历：%s", missing_message(years))
        _warned["last"] = (today, tuple(years))
    return years
