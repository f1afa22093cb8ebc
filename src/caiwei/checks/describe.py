"""Words for finance users: a cron expression as “每个工作日 08:30”, a database connection as
“PostgreSQL 数据库 127.0.0.1:5432/finance（用户 ops）”, a run's packs as “额度检查、重复支付（部分规则包）”.
The raw cron text and connection URL are for those who manage targets (targets.manage)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

CUSTOM = "（自定义）"
WEEKDAYS = "日一二三四五六日"  # 0 and 7 are Sunday
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
MONTH_NAMES = {m: i for i, m in enumerate(MONTHS, 1)}
DAY_NAMES = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
# (low, high, names) per field: minute, hour, day of month, month, day of week
BOUNDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, MONTH_NAMES), (0, 7, DAY_NAMES))


class CronUnreadable(ValueError):
    """The expression uses what the describer does not put in words (L, W, #, ?, six fields…)."""


@dataclass(frozen=True)
class Item:
    """One comma-separated part of a field: a value, a range, or a stepped range (``start-end/step``)."""

    start: int
    end: int
    step: int = 1
    star: bool = False  # written as * (or */n)

    def values(self) -> list[int]:
        return list(range(self.start, self.end + 1, self.step))


def _number(text: str, names: dict[str, int], low: int, high: int) -> int:
    value = names.get(text.upper()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        raise CronUnreadable(text)
    return value


def parse_field(text: str, index: int) -> list[Item]:
    low, high, names = BOUNDS[index]
    items = []
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = int(step_text) if slash and step_text.isdigit() and int(step_text) > 0 else None
        if slash and step is None:
            raise CronUnreadable(part)
        if base == "*":
            items.append(Item(low if index != 4 else 0, high if index != 4 else 6, step or 1, star=True))
            continue
        first, dash, last = base.partition("-")
        start = _number(first, names, low, high)
        end = _number(last, names, low, high) if dash else (high if step else start)
        if end < start:
            raise CronUnreadable(part)
        items.append(Item(start, end, step or 1))
    return items


def parse(expression: str) -> list[list[Item]]:
    fields = expression.split()
    if len(fields) != 5:
        raise CronUnreadable(expression)
    return [parse_field(f, i) for i, f in enumerate(fields)]


def field_values(items: list[Item], index: int) -> set[int]:
    """The values a field matches (Sunday as 0)."""
    values = {v for item in items for v in item.values()}
    return {0 if v == 7 else v for v in values} if index == 4 else values


def _is_any(items: list[Item]) -> bool:
    return len(items) == 1 and items[0].star and items[0].step == 1


def _join(words: list[str]) -> str:
    return "、".join(words)


def _weekday(v: int) -> str:
    return f"周{WEEKDAYS[v]}"


def _weekdays(items: list[Item]) -> str:
    values = sorted(field_values(items, 4))
    if values == [1, 2, 3, 4, 5]:
        return "每个工作日"
    if values == [0, 6]:
        return "每周六、周日"
    words = []
    for item in items:
        if item.step == 1 and item.start == item.end:
            words.append(_weekday(item.start))
        elif item.step == 1:
            words.append(f"{_weekday(item.start)}至{_weekday(item.end)}")
        else:
            words.append("、".join(_weekday(v % 7) for v in item.values()))
    return "每" + _join(words)


def _clock(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


def _values_text(items: list[Item], unit: str) -> str:
    """Values and ranges of one field: “0、30 分”, “9点至17点”, “每 2 小时（9点至18点）”."""
    words = []
    for item in items:
        if item.step == 1 and item.start == item.end:
            words.append(str(item.start))
        elif item.step == 1:
            words.append(f"{item.start}{unit}至{item.end}")
        else:
            words.append(_join(str(v) for v in item.values()))
    return f"{_join(words)}{unit}"


def _hours(items: list[Item]) -> str | None:
    """None for every hour; “9点至17点”, “每 2 小时”, “9点至18点每 2 小时”, “8、12点”."""
    if _is_any(items):
        return None
    if len(items) == 1 and items[0].step > 1:
        item = items[0]
        every = f"每 {item.step} 小时"
        return every if item.star else f"{item.start}点至{item.end}点{every}"
    return _values_text(items, "点")


def _time(minutes: list[Item], hours: list[Item]) -> str:
    single_minute = len(minutes) == 1 and minutes[0].start == minutes[0].end and not minutes[0].star
    hour_values = sorted(field_values(hours, 1))
    singles = all(i.start == i.end and not i.star for i in hours)
    if single_minute and singles and len(hour_values) <= 6:
        return _join([_clock(h, minutes[0].start) for h in hour_values])
    hour = _hours(hours)
    stepped_hours = hour is not None and "每" in hour
    if _is_any(minutes):
        return f"{hour or ''}每分钟"
    if len(minutes) == 1 and minutes[0].star:
        return f"{hour or ''}每 {minutes[0].step} 分钟"
    which = "整点" if single_minute and minutes[0].start == 0 else f"第 {_values_text(minutes, ' 分')}"
    if hour is None:
        return f"每小时{which}"
    return f"{hour}的{which}" if stepped_hours or singles else f"{hour}每小时{which}"


def _days(doms: list[Item], dows: list[Item]) -> str:
    any_dom, any_dow = _is_any(doms), _is_any(dows)
    if not any_dom and not any_dow:  # cron's rule: either one matches
        return f"{_values_text(doms, '日')}以及{_weekdays(dows)}"
    if not any_dow:
        return _weekdays(dows)
    if not any_dom:
        if len(doms) == 1 and doms[0].star:
            return f"每月从1日起每 {doms[0].step} 天"
        return _values_text(doms, "日")
    return "每天"


def _months(items: list[Item]) -> str:
    if len(items) == 1 and items[0].step > 1:
        item = items[0]
        span = "" if item.star else f"{item.start}月至{item.end}月"
        return f"{span}每 {item.step} 个月（从{item.start}月起）"
    return f"每年{_values_text(items, '月')}"


def cron_text(expression: str) -> str:
    """“每个工作日 08:30”, “每月1日 02:00”, “每年1、4、7、10月1日 02:00”; the raw text with “（自定义）” for what it
    does not read (L, W, #, seconds, @daily…)."""
    text = " ".join((expression or "").split())
    try:
        minutes, hours, doms, months, dows = parse(text)
    except (CronUnreadable, ValueError):
        return f"{text}{CUSTOM}"
    days = _days(doms, dows)
    if not _is_any(months):
        month = _months(months)
        days = f"{month}每天" if days == "每天" else f"{month}{'的' if days.startswith('每') else ''}{days}"
    elif not _is_any(doms) and not days.startswith("每"):
        days = f"每月{days}"
    time = _time(minutes, hours)
    if days == "每天" and ":" not in time:
        return time
    return f"{days} {time}"


def cron_matches(expression: str, moment) -> bool:
    """Whether the schedule fires at ``moment`` (a datetime, to the minute), as the describer reads it: for tests
    against croniter's next fire times."""
    minutes, hours, doms, months, dows = parse(expression)
    dom_ok = moment.day in field_values(doms, 2)
    dow_ok = (moment.isoweekday() % 7) in field_values(dows, 4)
    # cron's rule: with both day fields restricted, either one matching is enough
    day_ok = (dom_ok and dow_ok) if _is_any(doms) or _is_any(dows) else (dom_ok or dow_ok)
    return (
        moment.minute in field_values(minutes, 0)
        and moment.hour in field_values(hours, 1)
        and moment.month in field_values(months, 3)
        and day_ok
    )


# --- connections ------------------------------------------------------------------------------------------------


def connection_text(database) -> str:
    """“PostgreSQL 数据库 127.0.0.1:5432/finance（用户 ops）”, “SQLite 数据库文件 finance.sqlite3”: no scheme, no
    password, no directory."""
    kind = database.get_dialect_display()
    if database.dialect == database.Dialect.SQLITE:
        name = PurePath(str(database.database).split("?")[0]).name or "（未填写）"
        return f"{kind} 数据库文件 {name}"
    place = database.host or "本机"
    if database.port:
        place = f"{place}:{database.port}"
    if database.database:
        place = f"{place}/{database.database}"
    user = f"（用户 {database.username}）" if database.username else ""
    return f"{kind} 数据库 {place}{user}"


# --- packs ------------------------------------------------------------------------------------------------------


def packs_text(packs: str) -> dict:
    """What a run (or a schedule) covered: {"titles": [...], "partial": bool, "text": "额度检查、重复支付（部分规则包：2/7）"}."""
    from .engine import RuleError, select_rules, shipped_packs

    shipped = shipped_packs()
    names = [n.strip() for n in (packs or "all").split(",") if n.strip()]
    if not names or "all" in names:
        names = list(shipped)
    from .custom import LOCAL_PACK, LOCAL_PACK_TITLE

    local = LOCAL_PACK in names
    names = [n for n in names if n != LOCAL_PACK]
    titles = [shipped[n].title if n in shipped else n for n in names] + ([LOCAL_PACK_TITLE] if local else [])
    partial = set(names) != set(shipped)
    try:
        rules = len(select_rules(",".join(names))) if names else 0
    except RuleError:
        rules = None
    if partial:
        text = f"{_join(titles)}（部分检查：{len(names)}/{len(shipped)} 个规则包）"
    else:
        text = f"全部 {len(shipped)} 个规则包"
    return {
        "titles": titles,
        "partial": partial,
        "text": text,
        "rules": rules,
        "count": len(names),
        "total": len(shipped),
    }
