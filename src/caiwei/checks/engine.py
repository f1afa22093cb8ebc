"""Data-check rules 数据检查规则: one YAML file per rule with the SQL that returns the failing rows, written once in
the PostgreSQL dialect over the logical tables of DOMAIN.md. Plain Python (no Django).

A pack is a folder of rule files with a ``pack.yaml`` (Chinese title and description). Parameters are either
fixed values or dates reckoned from the run's as-of date (``days_before_as_of``, ``month_end_before_as_of``), so
one rule serves any year.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from sqlglot import exp

SOURCE_DIALECT = "postgres"
RULES_DIR = Path(__file__).resolve().parent / "rules"
SEVERITIES = ("重大", "紧急", "一般")
REQUIRED = ("id", "title", "severity", "module", "key", "sql")
SCOPES = ("region", "year", "date")


class RuleError(ValueError):
    """A malformed rule file or an unusable parameter, named in the message (Chinese)."""


@dataclass(frozen=True)
class Param:
    """A rule parameter: a fixed default, or a date reckoned back from the run's as-of date."""

    name: str
    title: str = ""
    default: Any = None
    days_before_as_of: int | None = None
    month_end_before_as_of: bool = False

    @property
    def is_date(self) -> bool:
        return self.days_before_as_of is not None or self.month_end_before_as_of

    @property
    def is_text(self) -> bool:
        """A text parameter (a list of characters or affixes for a normaliser): its default is text."""
        return isinstance(self.default, str) and not self.is_date

    def resolve(self, as_of: date, override: Any = None) -> Any:
        if override is not None and not self.is_date:
            return override
        if self.days_before_as_of is not None:
            days = int(override) if override is not None else self.days_before_as_of
            return (as_of - timedelta(days=days)).isoformat()
        if self.month_end_before_as_of:
            return (as_of.replace(day=1) - timedelta(days=1)).isoformat()
        return self.default

    def describe(self) -> str:
        if self.days_before_as_of is not None:
            return f"检查日前 {self.days_before_as_of} 天"
        if self.month_end_before_as_of:
            return "检查日之前的最近月末"
        if self.is_text and not self.default:
            return "（无）"
        return str(self.default)


NORMALIZE_FUNCTION = "caiwei_norm"  # caiwei_norm(column, 'normaliser name') in a rule's SQL
DAY_DIFF_FUNCTION = (
    "caiwei_day_diff"  # caiwei_day_diff(a, b): whole days from date b to date a, on every engine
)
NORMALIZER_KEYS = {"title", "width", "upper", "whitespace", "remove", "prefixes", "suffixes"}
LIST_SEPARATORS = ("、", "|")
WHITESPACE = " \t\r\n\u3000"


def split_list(text: str) -> tuple[str, ...]:
    """“有限公司、公司、（个人）” → ("有限公司", "公司", "（个人）"): affix lists are written with 、 (or |)."""
    for sep in LIST_SEPARATORS[1:]:
        text = text.replace(sep, LIST_SEPARATORS[0])
    return tuple(item.strip() for item in text.split(LIST_SEPARATORS[0]) if item.strip())


@dataclass(frozen=True)
class Normalizer:
    """文本归一: how a rule compares free text (payee names, accounts) — declared as data in the rule file, expanded
    by the engine into each target's SQL (sqlplan.expand_portable). The steps, in order: fold full-width forms to
    half-width (U+FF01–U+FF5E → U+0021–U+007E, U+3000 → space), ASCII letters to upper case, delete whitespace and
    the characters of ``remove``; then strip the longest matching suffix, then the longest matching prefix (each only
    when something is left). ``remove``, ``prefixes`` and ``suffixes`` name text parameters of the rule, so a user
    sets the lists on the run page like any parameter."""

    name: str
    title: str = ""
    width: bool = True
    upper: bool = True
    whitespace: bool = True
    remove: str = ""  # parameter names
    prefixes: str = ""
    suffixes: str = ""

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """The normaliser with its lists filled in from the bound parameters: the engine's input (JSON-able)."""

        def text(name: str) -> str:
            value = params.get(name) if name else ""
            return "" if value is None else str(value)

        return {
            "width": self.width,
            "upper": self.upper,
            "whitespace": self.whitespace,
            "remove": text(self.remove),
            "prefixes": list(split_list(text(self.prefixes))),
            "suffixes": list(split_list(text(self.suffixes))),
        }


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    module: str
    key: tuple[str, ...]
    sql: str
    description: str = ""
    advice: str = ""
    pack: str = ""
    params: tuple[Param, ...] = ()
    scope: dict[str, str] = field(default_factory=dict)
    amount: str = ""  # output column whose sum is the money involved
    labels: dict[str, str] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()  # output columns that prove a finding, shown right after the key
    amount_title: str = ""  # what the sum of ``amount`` means, when not simply 涉及金额 (e.g. 重复多付金额)
    version: int | None = None  # 本地规则: the number of the version that runs (None for a shipped rule)
    normalize: dict[str, Normalizer] = field(default_factory=dict)
    # A pair rule reports two rows per finding: output column → the column of the other (first) row it pairs with,
    # e.g. {"pay_app_id": "first_pay_app_id"}; shown side by side as 第一笔 / 第二笔.
    pair: dict[str, str] = field(default_factory=dict)

    @property
    def amount_label(self) -> str:
        return self.amount_title or "涉及金额"

    @functools.cached_property
    def tree(self) -> exp.Expression:
        return sqlglot.parse_one(self.sql, read=SOURCE_DIALECT)

    def bind(self, as_of: date, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        overrides = overrides or {}
        return {p.name: p.resolve(as_of, overrides.get(p.name)) for p in self.params}


@dataclass(frozen=True)
class Pack:
    name: str
    title: str
    description: str
    rules: tuple[Rule, ...]
    order: int = 100


def _params(data: Any, where: str) -> tuple[Param, ...]:
    if data is None:
        return ()
    if not isinstance(data, dict):
        raise RuleError(f"{where}：params 应为“参数名: 设置”的键值对")
    params = []
    for name, spec in data.items():
        if isinstance(spec, dict):
            unknown = set(spec) - {"title", "default", "days_before_as_of", "month_end_before_as_of"}
            if unknown:
                raise RuleError(f"{where}：参数 {name} 有未知设置 {'、'.join(sorted(unknown))}")
            params.append(Param(name=str(name), **spec))
        else:
            params.append(Param(name=str(name), default=spec))
    return tuple(params)


def _normalizers(data: Any, params: tuple[Param, ...], where: str) -> dict[str, Normalizer]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RuleError(f"{where}：normalize 应为“归一名: 设置”的键值对")
    text_params = {p.name for p in params if p.is_text}
    found = {}
    for name, spec in data.items():
        spec = spec or {}
        if not isinstance(spec, dict) or set(spec) - NORMALIZER_KEYS:
            raise RuleError(f"{where}：归一 {name} 的设置只能是 {'、'.join(sorted(NORMALIZER_KEYS))}")
        for key in ("remove", "prefixes", "suffixes"):
            if spec.get(key) and spec[key] not in text_params:
                raise RuleError(f"{where}：归一 {name} 的 {key} 应为本规则的文本参数名，{spec[key]} 不是")
        found[str(name)] = Normalizer(name=str(name), **spec)
    return found


def _pair(data: Any, outputs: set[str], where: str) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, dict) or not data:
        raise RuleError(f"{where}：pair 应为“第二笔的列: 第一笔的列”的键值对")
    if "*" not in outputs:
        absent = [c for pair in data.items() for c in pair if c not in outputs]
        if absent:
            raise RuleError(f"{where}：成对显示的列 {'、'.join(absent)} 不在查询结果的列中")
    return {str(k): str(v) for k, v in data.items()}


def check_special_calls(tree: exp.Expression, normalize: dict, where: str) -> None:
    """Caiwei's own SQL functions as a rule may write them: caiwei_norm(column, 'declared name') as an output column,
    caiwei_day_diff(date a, date b). Also used for locally written rules (custom.py)."""
    for call in tree.find_all(exp.Anonymous):
        if str(call.this).lower() == NORMALIZE_FUNCTION:
            args = call.expressions
            if len(args) != 2 or not (isinstance(args[1], exp.Literal) and args[1].is_string):
                raise RuleError(f"{where}：{NORMALIZE_FUNCTION} 的写法是 {NORMALIZE_FUNCTION}(列, '归一名')")
            if args[1].this not in normalize:
                raise RuleError(f"{where}：SQL 中的归一 {args[1].this} 未在 normalize 中声明")
            if not (isinstance(call.parent, exp.Alias) and isinstance(call.parent.parent, exp.Select)):
                raise RuleError(
                    f"{where}：{NORMALIZE_FUNCTION} 只能作为查询的输出列，如 {NORMALIZE_FUNCTION}(p.列, '归一名') AS 列名"
                )
        elif str(call.this).lower() == DAY_DIFF_FUNCTION and len(call.expressions) != 2:
            raise RuleError(f"{where}：{DAY_DIFF_FUNCTION} 的写法是 {DAY_DIFF_FUNCTION}(日期甲, 日期乙)")


def load_rule(path: Path, pack: str = "") -> Rule:
    where = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RuleError(f"{where}：YAML 格式错误：{exc}") from exc
    if not isinstance(data, dict):
        raise RuleError(f"{where}：内容应为键值对")
    missing = [k for k in REQUIRED if not data.get(k)]
    if missing:
        raise RuleError(f"{where}：缺少字段 {'、'.join(missing)}")
    if data["severity"] not in SEVERITIES:
        raise RuleError(f"{where}：严重程度“{data['severity']}”应为 {'、'.join(SEVERITIES)}")
    try:
        tree = sqlglot.parse_one(data["sql"], read=SOURCE_DIALECT)
    except sqlglot.errors.ParseError as exc:
        raise RuleError(f"{where}：SQL 无法解析：{exc}") from exc
    if not isinstance(tree, exp.Select):
        raise RuleError(f"{where}：SQL 应为一条 SELECT 语句")
    key = data["key"] if isinstance(data["key"], list) else [data["key"]]
    outputs = set(tree.named_selects)
    if "*" not in outputs:
        absent = [k for k in [*key, data.get("amount")] if k and k not in outputs]
        if absent:
            raise RuleError(f"{where}：主键或金额列 {'、'.join(absent)} 不在查询结果的列中")
        absent = [k for k in data.get("evidence") or [] if k not in outputs]
        if absent:
            raise RuleError(f"{where}：证据列 {'、'.join(absent)} 不在查询结果的列中")
    scope = dict(data.get("scope") or {})
    if set(scope) - set(SCOPES):
        raise RuleError(f"{where}：scope 只能包含 {'、'.join(SCOPES)}")
    params = _params(data.get("params"), where)
    placeholders = {p.name for p in tree.find_all(exp.Placeholder)}
    undeclared = placeholders - {p.name for p in params}
    if undeclared:
        raise RuleError(f"{where}：SQL 中的参数 {'、'.join(sorted(undeclared))} 未在 params 中声明")
    normalize = _normalizers(data.get("normalize"), params, where)
    check_special_calls(tree, normalize, where)
    return Rule(
        id=str(data["id"]),
        title=data["title"],
        severity=data["severity"],
        module=data["module"],
        key=tuple(str(k) for k in key),
        sql=data["sql"].strip().rstrip(";"),
        description=data.get("description", ""),
        advice=data.get("advice", ""),
        pack=pack,
        params=params,
        scope=scope,
        amount=data.get("amount") or "",
        labels=dict(data.get("labels") or {}),
        evidence=tuple(str(c) for c in data.get("evidence") or ()),
        amount_title=str(data.get("amount_title") or ""),
        normalize=normalize,
        pair=_pair(data.get("pair"), outputs, where),
    )


def load_pack(folder: Path) -> Pack:
    meta_path = folder / "pack.yaml"
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    rules = tuple(load_rule(p, folder.name) for p in sorted(folder.glob("*.yaml")) if p.name != "pack.yaml")
    ids = [r.id for r in rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RuleError(f"规则包 {folder.name}：规则编号重复 {'、'.join(duplicates)}")
    return Pack(
        folder.name,
        meta.get("title", folder.name),
        meta.get("description", ""),
        rules,
        int(meta.get("order", 100)),
    )


@functools.cache
def shipped_packs() -> dict[str, Pack]:
    """The rule packs shipped with Caiwei, by folder name, in the order their pack.yaml gives."""
    loaded = sorted(
        (load_pack(p) for p in RULES_DIR.iterdir() if p.is_dir()), key=lambda p: (p.order, p.name)
    )
    packs = {p.name: p for p in loaded}
    ids = [r.id for pack in packs.values() for r in pack.rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RuleError(f"规则编号在多个规则包中重复：{'、'.join(duplicates)}")
    return packs


def select_rules(names: str | list[str]) -> list[Rule]:
    """Rules of the named packs ("all" or comma-separated pack names); unknown names raise RuleError."""
    packs = shipped_packs()
    wanted = names.split(",") if isinstance(names, str) else list(names)
    wanted = [n.strip() for n in wanted if n.strip()]
    if not wanted or "all" in wanted:
        wanted = list(packs)
    unknown = [n for n in wanted if n not in packs]
    if unknown:
        raise RuleError(f"未知的规则包 {'、'.join(unknown)}，可选：{'、'.join(packs)}")
    return [rule for name in wanted for rule in packs[name].rules]


def parse_overrides(text: str | list[str], rules: list[Rule]) -> dict[str, dict[str, Any]]:
    """“BIZ-001.cutoff=5, PERSON-003.max_item_amount=80000” → {rule id: {name: value}}, checked against ``rules``:
    a date parameter takes a number of days before the as-of date, a number parameter a number."""
    items = text if isinstance(text, list) else text.replace("，", ",").split(",")
    by_id = {r.id: r for r in rules}
    overrides: dict[str, dict[str, Any]] = {}
    for item in (i.strip() for i in items):
        if not item:
            continue
        target, sep, raw = item.partition("=")
        rule_id, dot, name = target.strip().rpartition(".")
        if not sep or not dot:
            raise RuleError(f"参数“{item}”格式应为 规则编号.参数名=值，如 BIZ-001.cutoff=5")
        rule = by_id.get(rule_id)
        if rule is None:
            raise RuleError(f"参数“{item}”：本次检查没有规则 {rule_id}")
        param = next((p for p in rule.params if p.name == name), None)
        if param is None:
            names = "、".join(p.name for p in rule.params) or "无"
            raise RuleError(f"参数“{item}”：规则 {rule_id} 没有参数 {name}（可用：{names}）")
        if param.month_end_before_as_of:
            raise RuleError(f"参数“{item}”：{param.title or name} 由检查日推算，不能指定")
        try:
            value: Any = raw.strip() if param.is_text else int(raw) if param.is_date else _number(raw)
        except ValueError:
            kind = "整数（天数）" if param.is_date else "有限的数字"
            raise RuleError(f"参数“{item}”：{param.title or name} 应为{kind}") from None
        if param.is_date and not 0 <= value <= 3660:
            raise RuleError(f"参数“{item}”：天数应在 0～3660 之间")
        if name in overrides.get(rule_id, {}):
            raise RuleError(f"参数“{item}”：{rule_id}.{name} 重复指定")
        overrides.setdefault(rule_id, {})[name] = value
    return overrides


def _number(raw: str) -> int | float:
    value = float(raw)
    if not math.isfinite(value):  # nan, inf, 1e309
        raise ValueError(raw)
    return int(value) if value.is_integer() else value


def shipped_rule(rule_id: str) -> Rule | None:
    """The shipped rule with this id, or None (a stored result may outlive its rule)."""
    return next((r for pack in shipped_packs().values() for r in pack.rules if r.id == rule_id), None)


def find_rule(rule_id: str) -> Rule:
    rule = shipped_rule(rule_id)
    if rule is None:
        raise RuleError(f"没有编号为 {rule_id} 的规则")
    return rule
