"""The bounds of a target database's settings and of a schedule's cron, one definition for the pages (forms and
models) and the API."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

from croniter import croniter
from django.core.exceptions import ValidationError

PORT_MIN, PORT_MAX = 1, 65535
TIMEOUT_MIN, TIMEOUT_MAX = 1, 86400  # seconds: up to a day
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)  # as-of dates and run date windows


def port_problem(value: int | None) -> str | None:
    if value is not None and not PORT_MIN <= value <= PORT_MAX:
        return f"端口应在 {PORT_MIN}～{PORT_MAX} 之间"
    return None


def timeout_problem(value: int | None) -> str | None:
    if value is not None and not TIMEOUT_MIN <= value <= TIMEOUT_MAX:
        return f"语句超时应在 {TIMEOUT_MIN}～{TIMEOUT_MAX} 秒之间"
    return None


def date_problem(value: date | None) -> str | None:
    if value is not None and not EARLIEST <= value <= LATEST:
        return f"日期应在 {EARLIEST.isoformat()} 至 {LATEST.isoformat()} 之间"
    return None


def cron_problem(value: str) -> str | None:
    """Five fields (minute hour day month weekday) that fire at some time: no seconds, years or @reboot."""
    if len(value.split()) != 5 or not croniter.is_valid(value):
        return f"cron 表达式“{value}”不正确，应为 5 段（分 时 日 月 周），如 0 2 * * *"
    try:
        croniter(value, datetime(2026, 1, 1)).get_next(datetime)
    except Exception:  # croniter's "no such date" (0 0 30 2 *) and kin
        return f"cron 表达式“{value}”永远不会执行（如 2 月 30 日）"
    return None


def _raise(message: str | None) -> None:
    if message:
        raise ValidationError(message)


# Model field validators (module-level functions, so migrations can name them).
def validate_port(value):
    _raise(port_problem(value))


def validate_timeout(value):
    _raise(timeout_problem(value))


def validate_date(value):
    _raise(date_problem(value))


def validate_cron(value):
    _raise(cron_problem(value))


DATE_SPELLINGS = "2026-12-31、2026/12/31、2026.12.31、20261231 或 2026年12月31日"
_DATE_PATTERNS = (
    re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})"),  # 2026-12-31, 2026/12/31, 2026.12.31 (one separator)
    re.compile(r"(\d{4})()(\d{2})(\d{2})"),  # 20261231
    re.compile(r"(\d{4})年()\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?"),  # 2026年12月31日
)


def parse_date(value: str | date | None, field: str = "日期") -> date | None:
    """One reading of a typed date for every date input of data checks: ``2026-12-31``, ``2026/12/31``,
    ``2026.12.31``, ``20261231`` and ``2026年12月31日`` (full-width digits too). Empty is None; anything else raises
    ValidationError naming ``field`` in Chinese. The range (EARLIEST…LATEST) is checked as well."""
    if value is None or isinstance(value, date):
        parsed = value.date() if isinstance(value, datetime) else value
    else:
        text = unicodedata.normalize("NFKC", str(value)).strip()
        if not text:
            return None
        parsed = None
        for pattern in _DATE_PATTERNS:
            match = pattern.fullmatch(text)
            if match:
                year, _, month, day = match.groups()
                try:
                    parsed = date(int(year), int(month), int(day))
                except ValueError:
                    raise ValidationError(
                        f"{field}：“{value}”不是有效的日期（{year} 年没有 {int(month)} 月 {int(day)} 日）"
                    ) from None
                break
        if parsed is None:
            raise ValidationError(f"{field}：无法识别日期“{value}”，请写作 {DATE_SPELLINGS}")
    if parsed is not None and (problem := date_problem(parsed)):
        raise ValidationError(f"{field}：{problem}")
    return parsed
