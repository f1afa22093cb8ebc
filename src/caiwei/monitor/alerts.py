"""Alert rules 告警规则 as data, and the decision each probe result leads to. Plain Python (no Django).

A rule compares one metric of an item's results with a threshold (``consumers = 0``, ``latency_ms > 800``,
``cert_days < 30``, ``fresh = 0``, ``gaps > 0``; ``up = 0`` is "down"). Flapping is suppressed with streaks: an
alert opens after ``open_after`` breaching results in a row and resolves after ``resolve_after`` clean ones. A result
without the metric (the probe failed before measuring it) leaves the streaks of that rule as they are — the "down"
rule speaks for it. During a maintenance window nothing opens, and the streaks are not counted.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    "!=": operator.ne,
}
OP_LABELS = {">": "大于", ">=": "不小于", "<": "小于", "<=": "不大于", "=": "等于", "!=": "不等于"}

OPEN, RESOLVE, KEEP = "open", "resolve", "keep"


@dataclass(frozen=True)
class Rule:
    id: object
    metric: str
    op: str
    threshold: float
    open_after: int = 1
    resolve_after: int = 1
    kind: str = ""  # the item kind it applies to; "" for every kind that reports the metric

    def breached(self, metrics: dict) -> bool | None:
        """True/False, or None when the result does not carry the metric."""
        if self.metric not in metrics:
            return None
        return OPS[self.op](float(metrics[self.metric]), float(self.threshold))

    def applies(self, kind: str) -> bool:
        return not self.kind or self.kind == kind


@dataclass
class Streak:
    bad: int = 0
    good: int = 0


def step(rule: Rule, streak: Streak, metrics: dict, is_open: bool, silenced: bool = False) -> str:
    """Update ``streak`` with one result and say what to do with the rule's alert: OPEN, RESOLVE or KEEP."""
    if silenced:
        return KEEP
    breached = rule.breached(metrics)
    if breached is None:
        return KEEP
    if breached:
        streak.bad += 1
        streak.good = 0
        if not is_open and streak.bad >= max(1, rule.open_after):
            return OPEN
    else:
        streak.good += 1
        streak.bad = 0
        if is_open and streak.good >= max(1, rule.resolve_after):
            return RESOLVE
    return KEEP


def describe(rule: Rule, label: str) -> str:
    threshold = f"{rule.threshold:g}"
    return f"{label}{OP_LABELS.get(rule.op, rule.op)} {threshold}"


# Rules every new installation starts with (the project manager adjusts them on the rules page).
DEFAULT_RULES = [
    # name, kind, metric, op, threshold, severity, open_after, resolve_after
    ("不可用", "", "up", "=", 0, "紧急", 2, 2),
    ("响应慢", "http", "latency_ms", ">", 3000, "一般", 3, 3),
    ("队列积压", "rabbitmq", "messages", ">", 1000, "紧急", 2, 2),
    ("队列无消费者", "rabbitmq", "consumers", "=", 0, "紧急", 2, 1),
    ("证书将到期", "", "cert_days", "<", 30, "一般", 1, 1),
    ("接口文件或报文未按时到达", "freshness", "fresh", "=", 0, "紧急", 1, 1),
    ("报文序号缺失", "sequence", "gaps", ">", 0, "重大", 1, 1),
    ("磁盘将满", "", "disk_used_pct", ">", 90, "紧急", 2, 2),
    ("数据库复制延迟", "database", "replication_lag_s", ">", 300, "紧急", 2, 2),
]
