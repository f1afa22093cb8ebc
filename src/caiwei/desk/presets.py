"""The service levels written in the seed contracts, as SLA policies (DOMAIN.md, "Service levels").

Where a seed is silent on a detail the choice is stated beside the rule; the project manager edits policies.
"""

from .sla import Policy, Rule, Target

ANY_FAULT = frozenset({"故障", "缺陷"})
MAJOR, URGENT, NORMAL = frozenset({"重大"}), frozenset({"紧急"}), frozenset({"一般"})


def _minutes(n: int, calendar: str = "workday") -> Target:
    return Target(minutes=n, calendar=calendar)


PRESETS: dict[str, Policy] = {
    "daxing": Policy(
        "daxing",
        "大兴区运维合同时限",
        (
            # 宕机: respond in 10 min, restore in 2 h, round the clock.
            Rule({"first_response": _minutes(10, "always"), "resolution": _minutes(120, "always")}, MAJOR),
            # Other faults: on site within 1 h (working hours; the seed does not say round the clock).
            Rule({"first_response": _minutes(60)}, URGENT | NORMAL),
        ),
        source="宕机 10 分钟响应、2 小时恢复；其他故障 1 小时到场",
    ),
    "foshan": Policy(
        "foshan",
        "佛山市运维合同时限",
        (
            Rule({"first_response": _minutes(10, "always"), "resolution": _minutes(60, "always")}, MAJOR),
            Rule({"first_response": _minutes(15, "always"), "resolution": _minutes(120, "always")}, URGENT),
            Rule({"first_response": _minutes(30)}, NORMAL),
        ),
        source="重大 10 分钟响应、1 小时恢复；紧急 15 分钟响应、2 小时修复；一般 30 分钟响应",
    ),
    "nantong": Policy(
        "nantong",
        "南通市运维合同时限",
        (
            # Phones are answered live on workdays and called back within 30 min otherwise: 30 min round the clock.
            Rule({"first_response": _minutes(30, "always")}),
            Rule({"resolution": _minutes(120)}, URGENT | NORMAL, ANY_FAULT),
            Rule({"resolution": _minutes(24 * 60, "always")}, MAJOR, ANY_FAULT),
        ),
        source="工作日实时接听、非工作日 30 分钟内回电；一般故障 30 分钟响应、2 小时修复；重大故障 24 小时内修复",
    ),
    "xilingol": Policy(
        "xilingol",
        "锡林郭勒盟运维合同时限",
        (
            Rule({"first_response": _minutes(120)}),  # online requests answered within 2 h
            Rule({"resolution": Target(same_day=True)}, types=frozenset({"咨询", "操作指导"})),
            Rule({"resolution": Target(workdays=3)}, types=ANY_FAULT),
            Rule({"resolution": _minutes(120, "always")}, types=ANY_FAULT, key_period="year-end"),
        ),
        source="在线问题 2 小时内响应、咨询当日办结；故障 3 个工作日内解决，年结期间 2 小时",
    ),
}

# Names the presets were first created under (rows made before the rename keep them until renamed; see
# ``rename_legacy``).
LEGACY_NAMES = {
    "daxing": "大兴区（seed 000）",
    "foshan": "佛山市（seed 001）",
    "nantong": "南通市（seed 002）",
    "xilingol": "锡林郭勒盟（seed 003）",
}


def rename_legacy(**kwargs) -> None:
    """Give preset policies still named as first created their current name (run after ``migrate``). A policy the
    project manager has renamed is left alone: only the exact old name, under the preset's code, changes."""
    from django.db import DatabaseError

    from .models import SlaPolicy

    try:
        for code, old in LEGACY_NAMES.items():
            SlaPolicy.objects.filter(code=code, name=old).update(name=PRESETS[code].name)
    except DatabaseError:  # the table is not there yet (a partial migrate)
        pass
