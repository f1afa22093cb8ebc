"""Data-check engine 数据检查 (groundwork for issue 5): rules as YAML files with SQL, written once in the PostgreSQL
dialect, transpiled with sqlglot, and pushed down to the target database. Plain Python (no Django).

A rule's SQL returns the failing rows; the engine counts them and fetches their keys in the database, never pulling
a table into Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlglot
import yaml

SOURCE_DIALECT = "postgres"
DIALECTS = {
    "postgresql": "postgres",
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
    "oracle": "oracle",
}
PSYCOPG_PARAM = re.compile(r"%\((\w+)\)s")
REQUIRED = ("id", "title", "severity", "module", "key", "sql")


class RuleError(ValueError):
    """A malformed rule file, named in the message (Chinese)."""


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
    params: dict[str, Any] = field(default_factory=dict)

    def render(self, dialect: str) -> str:
        """The rule's SQL in ``dialect`` (an SQLAlchemy dialect name)."""
        target = DIALECTS.get(dialect)
        if target is None:
            raise RuleError(f"规则 {self.id}：不支持的数据库方言 {dialect}")
        sql = sqlglot.transpile(self.sql, read=SOURCE_DIALECT, write=target)[0]
        # Parameters stay SQLAlchemy-style ":name" whatever the driver's own style (sqlglot writes psycopg's).
        return PSYCOPG_PARAM.sub(r":\1", sql)


def load_rule(path: Path, pack: str = "") -> Rule:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RuleError(f"{path.name}：YAML 格式错误：{exc}") from exc
    if not isinstance(data, dict):
        raise RuleError(f"{path.name}：内容应为键值对")
    missing = [k for k in REQUIRED if not data.get(k)]
    if missing:
        raise RuleError(f"{path.name}：缺少字段 {'、'.join(missing)}")
    try:
        sqlglot.parse_one(data["sql"], read=SOURCE_DIALECT)
    except sqlglot.errors.ParseError as exc:
        raise RuleError(f"{path.name}：SQL 无法解析：{exc}") from exc
    key = data["key"] if isinstance(data["key"], list) else [data["key"]]
    return Rule(
        id=str(data["id"]),
        title=data["title"],
        severity=data["severity"],
        module=data["module"],
        key=tuple(key),
        sql=data["sql"].strip().rstrip(";"),
        description=data.get("description", ""),
        advice=data.get("advice", ""),
        pack=pack,
        params=dict(data.get("params") or {}),
    )


def load_pack(folder: Path) -> list[Rule]:
    rules = [load_rule(p, folder.name) for p in sorted(folder.glob("*.yaml"))]
    ids = [r.id for r in rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RuleError(f"规则包 {folder.name}：规则编号重复 {'、'.join(duplicates)}")
    return rules


@dataclass
class RuleResult:
    rule: Rule
    count: int
    keys: list[tuple]


def run_rule(
    engine: sa.Engine, rule: Rule, params: dict[str, Any] | None = None, key_limit: int | None = None
) -> RuleResult:
    """Count the failing rows and fetch their keys, both as queries in the target database."""
    sql = rule.render(engine.dialect.name)
    bind = {**rule.params, **(params or {})}
    columns = ", ".join(f"f.{c}" for c in rule.key)
    limit = f" LIMIT {int(key_limit)}" if key_limit else ""
    with engine.connect() as conn:
        count = conn.execute(sa.text(f"SELECT COUNT(*) FROM ({sql}) f"), bind).scalar_one()  # noqa: S608
        keys = [tuple(r) for r in conn.execute(sa.text(f"SELECT {columns} FROM ({sql}) f{limit}"), bind)]  # noqa: S608
    return RuleResult(rule, count, keys)
