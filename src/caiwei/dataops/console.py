"""查询台 engine: review one SQL query for the console, run it read-only on a target, mask what comes back.

Plain Python (sqlglot + SQLAlchemy Core, no Django), so tests and benches can hammer it.

``review(sql, dialect, schema, classification, tables=…)`` answers a ``Plan`` or a ``Refusal`` (Chinese reason):

- Only one read-only query: a SELECT (or UNION / INTERSECT / EXCEPT of SELECTs, with CTEs). Every node of the
  syntax tree must be of an allowed kind (no INTO, FOR UPDATE, DML inside a CTE, table functions, user variables,
  JSON operators …) and every function must be in ``CONSOLE_FUNCTIONS`` (the rule allowlist of checks/custom.py).
  What runs on the database is the reviewed tree rendered again without comments, never the text as typed.
- Only the logical tables of the user's grant; every column must resolve to a column of the logical schema (an
  unknown name — another case, a full-width letter, a whole-row reference — is refused, not guessed).
- Column classification (身份证号 id、银行账号 account、手机号 phone、姓名 name、密钥 secret): every output column is
  traced to its source columns through subqueries, CTEs (recursive ones to a fixed point), set operations (every
  branch), aliases, ``*`` (expanded from the schema), lateral joins and window functions. A classified column that
  reaches the output unchanged (a bare reference, MIN/MAX/COALESCE/FIRST_VALUE/LAG … of itself) is returned
  masked; any other expression over it (a function, a cast, concatenation, CASE, arithmetic, an aggregate other than
  COUNT) is refused, naming the column. Outside the output it may only be compared for equality (= or IN) with
  constants — or with another unchanged classified column of the same kind (a join on account numbers) — or tested
  for NULL; ordering, grouping, partitioning, LIKE, ranges and substrings of it are refused.

``execute(engine, plan, limit=…, timeout_s=…)`` runs a plan in a read-only transaction with a statement timeout,
fetches at most ``limit`` + 1 rows (to say the result was cut), always rolls back, and masks: the classified
output columns by their kind, then every cell by the shape of its value (18-digit ID numbers, 11-digit mobiles,
16–19 digit account-like runs) as a second lock.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from caiwei.checks.custom import ALLOWED_FUNCTIONS
from caiwei.checks.mask import ACCOUNT_COLUMNS, ID_COLUMNS, PHONE_COLUMNS, SECRET_COLUMNS, _keep, plain
from caiwei.checks.sqlplan import DIALECTS, Mapping, apply_mapping

logging.getLogger("sqlglot").setLevel(logging.ERROR)

KINDS = {"id": "身份证号", "account": "银行账号", "phone": "手机号", "name": "姓名", "secret": "密钥"}
NAME_COLUMNS = re.compile(r"(person_name|user_name|payee_acct_name|real_name|full_name|holder_name)", re.I)
MAX_SQL = 100_000

# The rule allowlist without Caiwei's own rule-only functions, plus harmless ones a console user reaches for.
CONSOLE_FUNCTIONS = (ALLOWED_FUNCTIONS - {"CAIWEI_NORM", "CAIWEI_DAY_DIFF"}) | {
    "CURRENT_VERSION",
    "NTH_VALUE",
    "PERCENT_RANK",
    "CUME_DIST",
    "ANY_VALUE",
}

# Syntax nodes a console query may contain (functions are judged by name against CONSOLE_FUNCTIONS).
ALLOWED_NODES = frozenset(
    {
        "Select",
        "Union",
        "Intersect",
        "Except",
        "Subquery",
        "With",
        "CTE",
        "TableAlias",
        "From",
        "Join",
        "Table",
        "Identifier",
        "Column",
        "Star",
        "Alias",
        "Literal",
        "Null",
        "Boolean",
        "Paren",
        "Placeholder",
        "Where",
        "Group",
        "Having",
        "Qualify",
        "Order",
        "Ordered",
        "Limit",
        "Offset",
        "Distinct",
        "Window",
        "WindowSpec",
        "Lateral",
        "Values",
        "Tuple",
        "In",
        "Between",
        "Is",
        "Not",
        "EQ",
        "NEQ",
        "GT",
        "GTE",
        "LT",
        "LTE",
        "NullSafeEQ",
        "NullSafeNEQ",
        "Like",
        "ILike",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "IntDiv",
        "Mod",
        "Neg",
        "DPipe",
        "DataType",
        "DataTypeParam",
        "Interval",
        "Var",
    }
)
FORBIDDEN_WHAT = {
    "Insert": "INSERT",
    "Update": "UPDATE",
    "Delete": "DELETE",
    "Merge": "MERGE",
    "Create": "CREATE",
    "Drop": "DROP",
    "Alter": "ALTER",
    "TruncateTable": "TRUNCATE",
    "Copy": "COPY",
    "Into": "SELECT … INTO / INTO OUTFILE",
    "Lock": "FOR UPDATE / FOR SHARE",
    "Command": "无法识别的命令（CALL、DO、LOAD、HANDLER 等）",
    "Set": "SET",
    "Transaction": "事务控制",
    "Commit": "COMMIT",
    "Rollback": "ROLLBACK",
    "Pragma": "PRAGMA",
    "Attach": "ATTACH",
    "Detach": "DETACH",
    "Use": "USE",
    "Grant": "GRANT",
    "Revoke": "REVOKE",
    "Show": "SHOW",
    "Describe": "DESCRIBE",
    "Analyze": "ANALYZE",
    "Parameter": "用户变量（@变量）",
    "SessionParameter": "系统变量（@@变量）",
    "JSONExtract": "JSON 运算符（-> 等）",
    "JSONExtractScalar": "JSON 运算符（->> 等）",
    "Dot": "带模式名的列或函数",
    "TableSample": "TABLESAMPLE",
}
SELECT_ARGS = frozenset(
    {
        "expressions",
        "from_",
        "joins",
        "where",
        "group",
        "having",
        "qualify",
        "order",
        "limit",
        "offset",
        "with_",
    }
    | {"distinct", "windows", "kind"}
)
TABLE_ARGS = frozenset({"this", "alias", "db", "catalog", "only"})
JOIN_ARGS = frozenset({"this", "on", "side", "kind", "using", "method"})
# Functions whose result is one of their arguments unchanged: a classified argument stays classified (and masked).
PASS_THROUGH = (exp.Coalesce, exp.FirstValue, exp.LastValue, exp.AnyValue)
RANKING = (exp.Min, exp.Max, exp.Greatest, exp.Least)  # pass through, but pick by comparing the values


# --- results --------------------------------------------------------------------------------------------------


@dataclass
class Refusal:
    """The query is not run: the reason says why, in Chinese."""

    reason: str
    ok = False


@dataclass
class Plan:
    """A reviewed query, ready for a target."""

    sql: str  # what runs: the reviewed tree in the target's dialect and names, without comments
    columns: list[str]  # output column names, in order
    masked: dict[int, str]  # output position → kind (id, account, phone, name, secret, mixed)
    sources: dict[int, list[str]]  # output position → the classified columns it passes through
    tables: list[str]  # logical tables read
    ok = True

    @property
    def masked_columns(self) -> list[str]:
        return [self.columns[i] for i in sorted(self.masked)]


class Refused(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- lineage ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Src:
    table: str
    column: str
    kind: str

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}（{KINDS.get(self.kind, self.kind)}）"


@dataclass(frozen=True)
class Lin:
    """What a value is made of: the classified columns it passes through unchanged, and whether anything else
    (a literal, an unclassified column) may also come out of it."""

    srcs: frozenset = frozenset()
    other: bool = False
    ranked: bool = (
        False  # chosen by comparing classified values (MIN, MAX, GREATEST, LEAST): shown, never compared
    )

    def __or__(self, o: Lin) -> Lin:
        return Lin(self.srcs | o.srcs, self.other or o.other, self.ranked or o.ranked)

    @property
    def classified(self) -> bool:
        return bool(self.srcs)

    @property
    def pure(self) -> bool:
        """Exactly classified columns, nothing else (a join key, an IN (subquery) of them)."""
        return bool(self.srcs) and not self.other

    @property
    def kinds(self) -> frozenset:
        return frozenset(s.kind for s in self.srcs)

    def names(self) -> str:
        return "、".join(sorted(s.label for s in self.srcs))


OTHER = Lin(other=True)
NOTHING = Lin()


@dataclass
class Source:
    """One FROM item as seen by a query: its name and its columns (in order) with their lineage."""

    name: str  # alias, else table name; "" for an unnamed derived table
    columns: list[tuple[str, Lin]]
    table: str = ""  # the logical base table, "" for derived ones

    def get(self, column: str) -> Lin | None:
        found = [lin for name, lin in self.columns if name == column]
        if not found:
            return None
        out = found[0]
        for lin in found[1:]:
            out = out | lin
        return out


@dataclass
class Env:
    sources: list[Source]
    outer: Env | None = None
    aliases: dict[str, Lin] = field(
        default_factory=dict
    )  # the select list's output names (WHERE/HAVING in some engines)


def _name(node: exp.Expression | str | None) -> str:
    if node is None:
        return ""
    if isinstance(node, str):
        return node.lower()
    return (node.name if hasattr(node, "name") else str(node)).lower()


class Reviewer:
    def __init__(
        self, schema: dict[str, list[str]], classification: dict[str, dict[str, str]], tables: set[str]
    ):
        self.schema = {t.lower(): [c.lower() for c in cols] for t, cols in schema.items()}
        self.classification = {
            t.lower(): {c.lower(): k for c, k in cols.items() if k} for t, cols in classification.items()
        }
        self.tables = {t.lower() for t in tables}
        self.read: set[str] = set()

    # -- queries -----------------------------------------------------------------------------------------------

    def query(self, node: exp.Expression, ctes: dict, outer: Env | None) -> list[tuple[str, Lin]]:
        """The output columns of a query node, with their lineage; refuses what may not be run or returned."""
        if isinstance(node, exp.Subquery):
            ctes = self.with_(node, ctes, outer)
            outs = self.query(node.this, ctes, outer)
            self.tail(node, outs, outer)
            return outs
        if isinstance(node, exp.SetOperation):
            ctes = self.with_(node, ctes, outer)
            left = self.query(node.this, ctes, outer)
            right = self.query(node.expression, ctes, outer)
            if len(left) != len(right):
                raise Refused("UNION / INTERSECT / EXCEPT 两侧的列数不同")
            outs = [(name, a | b) for (name, a), (_, b) in zip(left, right, strict=True)]
            if node.args.get("distinct") is not False:
                _no_dedup(outs, type(node).__name__.upper())
            self.tail(node, outs, outer)
            return outs
        if isinstance(node, exp.Values):
            return [(f"column{i + 1}", OTHER) for i in range(len(node.expressions[0].expressions))]
        if isinstance(node, exp.Select):
            return self.select(node, ctes, outer)
        raise Refused(f"不支持的查询形式 {type(node).__name__}")

    def tail(self, node: exp.Expression, outs: list[tuple[str, Lin]], outer: Env | None) -> None:
        """ORDER BY / LIMIT of a set operation or parenthesised query: over its output columns only."""
        env = Env([Source("", outs)], outer, dict(outs))
        order = node.args.get("order")
        if order:
            for item in order.expressions:
                self.ordering(item.this if isinstance(item, exp.Ordered) else item, env, outs, "ORDER BY")
        self.limits(node)

    def limits(self, node: exp.Expression) -> None:
        for key in ("limit", "offset"):
            part = node.args.get(key)
            if part is None:
                continue
            value = part.args.get("expression") if isinstance(part, exp.Limit | exp.Offset) else part
            if value is not None and not isinstance(value, exp.Literal):
                raise Refused("LIMIT / OFFSET 只能是数字")

    def with_(self, node: exp.Expression, ctes: dict, outer: Env | None) -> dict:
        with_ = node.args.get("with_")
        if not with_:
            return ctes
        ctes = dict(ctes)
        for cte in with_.expressions:
            name = _name(cte.alias)
            renamed = [_name(c) for c in (cte.args["alias"].columns if cte.args.get("alias") else [])]
            if with_.args.get("recursive") and isinstance(cte.this, exp.SetOperation):
                seed = self.query(cte.this.this, ctes, outer)
                outs = self._rename(seed, renamed)
                for _ in range(6):  # lineage sets only grow: a fixed point is reached in a few rounds
                    trial = dict(ctes)
                    trial[name] = outs
                    again = self._rename(self.query(cte.this, trial, outer), renamed)
                    if again == outs:
                        break
                    outs = again
                else:
                    raise Refused(f"递归 CTE {name} 的列来源无法确定")
            else:
                outs = self._rename(self.query(cte.this, ctes, outer), renamed)
            ctes[name] = outs
        return ctes

    @staticmethod
    def _rename(outs: list[tuple[str, Lin]], names: list[str]) -> list[tuple[str, Lin]]:
        if not names:
            return outs
        if len(names) > len(outs):
            raise Refused("列别名的个数多于查询的列数")
        return [(names[i] if i < len(names) else n, lin) for i, (n, lin) in enumerate(outs)]

    def from_item(self, item: exp.Expression, ctes: dict, env: Env) -> Source:
        alias = item.args.get("alias")
        renamed = [_name(c) for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
        alias_name = _name(alias.this) if isinstance(alias, exp.TableAlias) and alias.this else ""
        if isinstance(item, exp.Table):
            if not isinstance(item.this, exp.Identifier):
                raise Refused("FROM 中不能调用函数（表函数），只能使用授权的逻辑表")
            if item.args.get("db") or item.args.get("catalog"):
                raise Refused(f"不能指定模式或库名：{item.sql()}（请写逻辑表名）")
            extra = sorted(
                k for k, v in item.args.items() if v not in (None, [], False) and k not in TABLE_ARGS
            )
            if extra:
                raise Refused(f"表 {item.name} 后不支持 {'、'.join(extra).upper()}")
            name = _name(item.this)
            if name in ctes:
                return Source(alias_name or name, self._rename(ctes[name], renamed))
            if name not in self.schema or name not in self.tables:
                raise Refused(f"表 {item.name} 不在您对该库的查询授权内")
            self.read.add(name)
            classes = self.classification.get(name, {})
            cols = [
                (c, Lin(frozenset({Src(name, c, classes[c])})) if c in classes else OTHER)
                for c in self.schema[name]
            ]
            return Source(alias_name or name, self._rename(cols, renamed), name)
        if isinstance(item, exp.Lateral):
            inner = item.this
            if not isinstance(inner, exp.Subquery):
                raise Refused("LATERAL 之后只能是子查询")
            outs = self.query(inner.this, ctes, env)  # sees the FROM items before it
            return Source(alias_name or _name(inner.alias), self._rename(outs, renamed))
        if isinstance(item, exp.Subquery):
            outs = self.query(item.this, ctes, env.outer)
            return Source(alias_name, self._rename(outs, renamed))
        if isinstance(item, exp.Values):
            return Source(alias_name, self._rename(self.query(item, ctes, env.outer), renamed))
        raise Refused(f"FROM 中不支持 {type(item).__name__}")

    def select(self, node: exp.Select, ctes: dict, outer: Env | None) -> list[tuple[str, Lin]]:
        extra = sorted(k for k, v in node.args.items() if v not in (None, [], False) and k not in SELECT_ARGS)
        if extra:
            raise Refused(f"不支持的子句 {'、'.join(extra).upper()}")
        ctes = self.with_(node, ctes, outer)
        env = Env([], outer)
        if node.args.get("from_"):
            env.sources.append(self.from_item(node.args["from_"].this, ctes, env))
        for join in node.args.get("joins") or []:
            extra = sorted(
                k for k, v in join.args.items() if v not in (None, [], False) and k not in JOIN_ARGS
            )
            if extra:
                raise Refused(f"JOIN 不支持 {'、'.join(extra).upper()}")
            if (join.args.get("method") or "").upper() == "NATURAL" or "NATURAL" in (
                join.args.get("kind") or ""
            ):
                raise Refused("不支持 NATURAL JOIN，请用 ON 写明连接条件")
            right = self.from_item(join.this, ctes, env)
            for ident in join.args.get("using") or []:
                col = _name(ident)
                lins = [s.get(col) for s in [*env.sources, right]]
                lins = [lin for lin in lins if lin is not None]
                self._key_pair(lins, col, "JOIN USING")
            env.sources.append(right)
        # SELECT * / t.*: expanded from the schema, so what runs names every column it returns
        expressions = []
        for projection in node.expressions:
            expressions += self.expand(projection, env)
        if expressions != list(node.expressions):
            node.set("expressions", expressions)
        outs = []
        for projection in node.expressions:
            label = projection.alias_or_name or projection.sql()
            outs.append(
                (_name(projection.alias_or_name), self.value(projection, env, ctes, f"输出列“{label}”"))
            )
        env.aliases = {name: lin for name, lin in outs if name}
        if node.args.get("distinct") is not None:
            _no_dedup(outs, "DISTINCT")
        for join in node.args.get("joins") or []:
            if join.args.get("on") is not None:
                self.condition(join.args["on"], env, ctes, "JOIN … ON")
        for key, where in (("where", "WHERE"), ("having", "HAVING"), ("qualify", "QUALIFY")):
            part = node.args.get(key)
            if part is not None:
                self.condition(part.this, env, ctes, where)
        distinct = node.args.get("distinct")
        if distinct is not None and distinct.args.get("on") is not None:
            for item in distinct.args["on"].expressions:
                self.ordering(item, env, outs, "DISTINCT ON", ctes)
        group = node.args.get("group")
        if group is not None:
            for key in ("expressions", "rollup", "cube", "grouping_sets"):
                for item in group.args.get(key) or []:
                    for part in item.expressions if isinstance(item, exp.Cube | exp.Rollup) else [item]:
                        self.ordering(part, env, outs, "GROUP BY", ctes)
        order = node.args.get("order")
        if order is not None:
            for item in order.expressions:
                self.ordering(
                    item.this if isinstance(item, exp.Ordered) else item, env, outs, "ORDER BY", ctes
                )
        for window in node.args.get("windows") or []:
            self.window_spec(window, env, ctes)
        self.limits(node)
        return outs

    def expand(self, projection: exp.Expression, env: Env) -> list[exp.Expression]:
        if isinstance(projection, exp.Star):
            if any(projection.args.get(k) for k in projection.args):
                raise Refused("不支持 * EXCEPT / REPLACE")
            sources = env.sources
        elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
            if projection.args.get("db") or projection.args.get("catalog"):
                raise Refused(f"不能指定模式或库名：{projection.sql()}")
            sources = [s for s in env.sources if s.name == _name(projection.table)]
            if not sources:
                raise Refused(f"{projection.sql()} 中的表 {projection.table} 不在 FROM 中")
        else:
            return [projection]
        if not sources:
            raise Refused("SELECT * 需要 FROM")
        out = []
        for source in sources:
            if not source.name:
                raise Refused("SELECT * 用于未命名的子查询时无法展开，请给子查询起别名或逐列写出")
            for column, _ in source.columns:
                out.append(exp.column(column, source.name, quoted=False))
        return out

    # -- columns -----------------------------------------------------------------------------------------------

    def resolve(self, column: exp.Column, env: Env) -> Lin:
        if column.args.get("db") or column.args.get("catalog"):
            raise Refused(f"不能指定模式或库名：{column.sql()}")
        if isinstance(column.this, exp.Star):
            raise Refused(f"{column.sql()} 只能作为输出列")
        name, table = _name(column.this), _name(column.args.get("table"))
        level: Env | None = env
        while level is not None:
            if table:
                matches = [s for s in level.sources if s.name == table]
                if matches:
                    found = [s.get(name) for s in matches]
                    found = [f for f in found if f is not None]
                    if not found:
                        raise Refused(f"未知的列 {column.sql()}（表 {table} 没有列 {column.name}）")
                    return _union(found)
            else:
                found = [f for f in (s.get(name) for s in level.sources) if f is not None]
                if name in level.aliases:
                    found.append(level.aliases[name])
                if found:
                    return _union(found)
            level = level.outer
        raise Refused(f"未知的列 {column.sql()}（只能引用授权表中的列）")

    def value(self, node: exp.Expression, env: Env, ctes: dict, where: str) -> Lin:
        """The lineage of a value expression; refuses a classified column transformed by anything."""
        if isinstance(node, exp.Column):
            return self.resolve(node, env)
        if isinstance(node, exp.Alias | exp.Paren):
            return self.value(node.this, env, ctes, where)
        if isinstance(node, exp.Null):
            return NOTHING
        if isinstance(node, exp.Literal | exp.Boolean | exp.Placeholder | exp.Var | exp.DataType):
            return OTHER
        if isinstance(node, exp.Subquery):
            outs = self.query(node, ctes, env)
            if len(outs) != 1:
                raise Refused(f"{where}：标量子查询只能有一列")
            return outs[0][1]
        if isinstance(node, exp.Exists):
            self.query(node.this, ctes, env)
            return OTHER
        if isinstance(node, exp.Window):
            self.window_spec(node, env, ctes)
            return self.value(node.this, env, ctes, where)
        if isinstance(node, exp.Filter):
            self.condition(
                node.expression.this if isinstance(node.expression, exp.Where) else node.expression,
                env,
                ctes,
                "FILTER (WHERE …)",
            )
            return self.value(node.this, env, ctes, where)
        if isinstance(node, exp.Count):
            for child in _children(node):
                for part in child.expressions if isinstance(child, exp.Distinct) else [child]:
                    if not isinstance(part, exp.Star):
                        self.value(part, env, ctes, where)  # counted, not shown: unchanged is enough
            return OTHER
        if isinstance(node, exp.Distinct) and not node.args.get("on"):
            return _union([self.value(c, env, ctes, where) for c in node.expressions] or [OTHER])
        if isinstance(node, PASS_THROUGH):
            return _union([self.value(c, env, ctes, where) for c in _children(node)] or [OTHER])
        if isinstance(node, RANKING):
            lin = _union([self.value(c, env, ctes, where) for c in _children(node)] or [OTHER])
            if lin.classified and (not lin.pure or len(lin.kinds) > 1):
                # max(x) over an ID number and a literal shows which is larger: a binary search on the hidden digits
                raise Refused(
                    f"{where}：{_what(node)} 只能作用于同一类、原样的敏感列 {lin.names()}，"
                    "不能与常量或其他值比较大小（比较结果会泄露被遮住的部分）"
                )
            return Lin(lin.srcs, lin.other, lin.classified)
        if isinstance(node, exp.Nullif):
            kept = self.value(node.this, env, ctes, where)
            self.equality(node.this, node.expression, env, ctes, where)
            return kept | OTHER
        if isinstance(node, exp.Lag | exp.Lead | exp.NthValue):
            kept = self.value(node.this, env, ctes, where)
            for key in ("offset", "default"):
                part = node.args.get(key)
                if part is not None:
                    lin = self.value(part, env, ctes, where)
                    if key == "offset":
                        self.plain(lin, where, node)
                    else:
                        kept = kept | lin
            return kept
        # anything else computes a new value from its operands: no classified column may feed it
        for child in _children(node):
            lin = self.value(child, env, ctes, where)
            self.plain(lin, where, node)
        return OTHER

    def plain(self, lin: Lin, where: str, node: exp.Expression) -> None:
        if lin.classified:
            what = _what(node)
            raise Refused(
                f"{where}由敏感列 {lin.names()} 经 {what} 变换得到：敏感列只能原样输出（脱敏显示），"
                "不能做函数、转换、拼接、计算或判断"
            )

    # -- conditions, ordering, windows -------------------------------------------------------------------------

    def condition(self, node: exp.Expression, env: Env, ctes: dict, where: str) -> None:
        """A predicate (WHERE, HAVING, ON, QUALIFY, FILTER): classified columns only in = / IN with constants."""
        if isinstance(node, exp.And | exp.Or | exp.Xor):
            for child in _children(node):
                self.condition(child, env, ctes, where)
            return
        if isinstance(node, exp.Not | exp.Paren):
            self.condition(node.this, env, ctes, where)
            return
        if isinstance(node, exp.EQ | exp.NullSafeEQ):
            self.equality(node.this, node.expression, env, ctes, where)
            return
        if isinstance(node, exp.In):
            self.membership(node, env, ctes, where)
            return
        if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
            self.value(node.this, env, ctes, where)  # a bare classified column may be tested for NULL
            return
        if isinstance(node, exp.Exists):
            self.query(node.this, ctes, env)
            return
        lin = self.value(node, env, ctes, where)
        if lin.classified:
            raise Refused(
                f"{where} 中的敏感列 {lin.names()} 只能用 = 或 IN 与常量做等值比较（或判断是否为空）"
            )

    def equality(self, a: exp.Expression, b: exp.Expression, env: Env, ctes: dict, where: str) -> None:
        la, lb = self.value(a, env, ctes, where), self.value(b, env, ctes, where)
        if not (la.classified or lb.classified):
            return
        if la.classified and lb.classified:
            self._key_pair([la, lb], "", where)
            return
        kept, other = (la, b) if la.classified else (lb, a)
        if kept.ranked:
            raise Refused(
                f"{where} 中经 MIN / MAX 等比较选出的敏感列 {kept.names()} 不能再用于比较（会泄露排序）"
            )
        if not kept.pure:
            raise Refused(f"{where} 中的敏感列 {kept.names()} 只能原样与常量比较")
        if not _constant(other):
            raise Refused(
                f"{where} 中的敏感列 {kept.names()} 只能与常量（文字或参数）做等值比较，"
                f"不能与 {other.sql()[:60]} 比较"
            )

    def _key_pair(self, lins: list[Lin], column: str, where: str) -> None:
        classified = [lin for lin in lins if lin.classified]
        if not classified:
            return
        if len(classified) != len(lins) or not all(lin.pure for lin in lins):
            names = _union(classified).names()
            raise Refused(f"{where} 中的敏感列 {names} 只能与常量或同类的敏感列做等值比较")
        if any(lin.ranked for lin in lins):
            raise Refused(
                f"{where} 中经 MIN / MAX 等比较选出的敏感列 {_union(lins).names()} 不能再用于比较（会泄露排序）"
            )
        kinds = {lin.kinds for lin in lins}
        if len(kinds) != 1:
            raise Refused(f"{where} 中比较了不同类别的敏感列 {_union(lins).names()}")

    def membership(self, node: exp.In, env: Env, ctes: dict, where: str) -> None:
        lt = self.value(node.this, env, ctes, where)
        query = node.args.get("query")
        if query is not None:
            outs = self.query(query.this if isinstance(query, exp.Subquery) else query, ctes, env)
            if len(outs) != 1:
                raise Refused(f"{where}：IN 子查询只能有一列")
            self._key_pair([lt, outs[0][1]], "", where)
            return
        if node.args.get("unnest") or node.args.get("field"):
            raise Refused(f"{where}：不支持此种 IN 写法")
        items = node.expressions
        for item in items:
            li = self.value(item, env, ctes, where)
            if li.classified:
                raise Refused(f"{where} 中的 IN 列表不能含敏感列 {li.names()}")
        if lt.classified:
            if lt.ranked:
                raise Refused(
                    f"{where} 中经 MIN / MAX 等比较选出的敏感列 {lt.names()} 不能再用于比较（会泄露排序）"
                )
            if not lt.pure:
                raise Refused(f"{where} 中的敏感列 {lt.names()} 只能原样与常量比较")
            bad = [i for i in items if not _constant(i)]
            if bad:
                raise Refused(f"{where} 中的敏感列 {lt.names()} 只能与常量列表做 IN 比较")

    def ordering(
        self, node: exp.Expression, env: Env, outs: list[tuple[str, Lin]], where: str, ctes=None
    ) -> None:
        """GROUP BY / ORDER BY / DISTINCT ON / PARTITION BY: no classified column, by name, alias or position."""
        lins = []
        if isinstance(node, exp.Literal) and node.is_int:
            index = int(node.this) - 1
            if 0 <= index < len(outs):
                lins.append(outs[index][1])
        elif isinstance(node, exp.Column) and not node.args.get("table") and _name(node.this) in dict(outs):
            lins.append(_union([lin for name, lin in outs if name == _name(node.this)]))
            with contextlib.suppress(Refused):
                lins.append(self.resolve(node, Env(env.sources, env.outer)))
        else:
            lins.append(self.value(node, env, ctes or {}, where))
        lin = _union(lins) if lins else OTHER
        if lin.classified:
            raise Refused(f"不能按敏感列 {lin.names()} 做 {where}（排序、分组会泄露其内容）")

    def window_spec(self, node: exp.Expression, env: Env, ctes: dict) -> None:
        for item in node.args.get("partition_by") or []:
            self.ordering(item, env, [], "窗口 PARTITION BY", ctes)
        order = node.args.get("order")
        if order is not None:
            for item in order.expressions:
                self.ordering(
                    item.this if isinstance(item, exp.Ordered) else item, env, [], "窗口 ORDER BY", ctes
                )
        spec = node.args.get("spec")
        if spec is not None:
            for key in ("start", "end"):
                part = spec.args.get(key)
                if isinstance(part, exp.Expression) and not isinstance(part, exp.Literal | exp.Var):
                    self.plain(self.value(part, env, ctes, "窗口范围"), "窗口范围", part)


def _no_dedup(outs: list[tuple[str, Lin]], what: str) -> None:
    classified = [lin for _, lin in outs if lin.classified]
    if classified:
        raise Refused(
            f"输出含敏感列 {_union(classified).names()} 时不能用 {what} 去重（去重会比较、排序敏感值，泄露其内容），"
            "如需合并结果请用 UNION ALL"
        )


def _union(lins: Iterable[Lin]) -> Lin:
    out = NOTHING
    for lin in lins:
        out = out | lin
    return out


def _children(node: exp.Expression) -> list[exp.Expression]:
    out = []
    for value in node.args.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, exp.Expression):
                out.append(item)
    return out


def _constant(node: exp.Expression) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Neg):
        node = node.this
    return isinstance(node, exp.Literal | exp.Placeholder)


def _what(node: exp.Expression) -> str:
    if isinstance(node, exp.Func):
        return _function_name(node)
    return {
        "DPipe": "||（拼接）",
        "Add": "+",
        "Sub": "-",
        "Mul": "*",
        "Div": "/",
        "Like": "LIKE",
        "ILike": "ILIKE",
        "EQ": "=",
        "NEQ": "<>",
        "GT": ">",
        "GTE": ">=",
        "LT": "<",
        "LTE": "<=",
        "Between": "BETWEEN",
    }.get(type(node).__name__, type(node).__name__.upper())


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    return node.sql_name().upper()


# --- review -----------------------------------------------------------------------------------------------------


def default_kind(column: str) -> str | None:
    """The class of a column by its name alone: what a new target's classification starts from (editable)."""
    if SECRET_COLUMNS.search(column):
        return "secret"
    if ID_COLUMNS.search(column):
        return "id"
    if PHONE_COLUMNS.search(column):
        return "phone"
    if ACCOUNT_COLUMNS.search(column):
        return "account"
    if NAME_COLUMNS.search(column):
        return "name"
    return None


def logical_schema() -> dict[str, list[str]]:
    """The sandbox's logical tables and their columns, in order (sandbox/schema.py)."""
    from caiwei.sandbox.schema import metadata

    return {t.name: [c.name for c in t.columns] for t in metadata.sorted_tables}


def default_classification(schema: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for table, columns in schema.items():
        kinds = {c: k for c in columns if (k := default_kind(c))}
        if kinds:
            out[table] = kinds
    return out


PARSE_PROBLEMS = (
    ("Expecting )", "缺少右括号“)”"),
    ("Expecting (", "缺少左括号“(”"),
    ("Invalid expression / Unexpected token", "此处的词不合语法"),
    ("Required keyword", "语句不完整"),
    ("Expected table name", "缺少表名"),
)


def _parse_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None) or [{}]
    first = errors[0]
    text = first.get("description") or ""
    reason = next((zh for en, zh in PARSE_PROBLEMS if text.startswith(en)), "语法错误")
    where = f"第 {first['line']} 行第 {first['col']} 列附近：" if first.get("line") else ""
    return f"SQL 无法解析（{where}{reason}）"


def check_nodes(tree: exp.Expression) -> None:
    for node in tree.walk():
        kind = type(node).__name__
        if kind in FORBIDDEN_WHAT:
            raise Refused(f"只允许只读查询，不能含 {FORBIDDEN_WHAT[kind]}")
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if name not in CONSOLE_FUNCTIONS:
                raise Refused(
                    f"不允许的函数 {name}（只可用聚合、算术、字符串、日期、CASE、COALESCE 等，见文档）"
                )
            continue
        if isinstance(node, exp.DML | exp.DDL):
            raise Refused(f"只允许只读查询，不能含 {kind.upper()}")
        if kind not in ALLOWED_NODES:
            raise Refused(f"查询台不支持的语法：{kind}")


def review(
    sql: str,
    dialect: str,
    schema: dict[str, list[str]],
    classification: dict[str, dict[str, str]],
    *,
    tables: Iterable[str] | None = None,
    mapping: Mapping | None = None,
    params: dict[str, Any] | None = None,
    limit: int | None = None,
) -> Plan | Refusal:
    """Judge ``sql`` (written with logical names, in the target's dialect) for the console: a Plan to run, or a
    Refusal saying why not. ``tables``: the logical tables the user's grant allows (all of ``schema`` if None).
    ``limit``: the rows execution will fetch; what runs asks for no more than that and one (to say it was cut)."""
    try:
        return _review(sql, dialect, schema, classification, tables, mapping, params, limit)
    except Refused as exc:
        return Refusal(exc.reason)
    except RecursionError:
        return Refusal("查询嵌套过深")
    except Exception as exc:  # noqa: BLE001 — what the reviewer cannot follow is refused, never run
        return Refusal(f"无法审查此查询（{type(exc).__name__}），为安全起见不予执行")


def _cap(tree: exp.Expression, rows: int) -> None:
    """The outermost query asks for at most ``rows`` rows (a smaller LIMIT of its own is kept)."""
    part = tree.args.get("limit")
    value = part.args.get("expression") if isinstance(part, exp.Limit) else None
    if isinstance(value, exp.Literal) and value.is_int and int(value.this) <= rows:
        return
    if isinstance(part, exp.Limit):
        part.set("expression", exp.Literal.number(rows))
    else:
        tree.set("limit", exp.Limit(expression=exp.Literal.number(rows)))


def _review(sql, dialect, schema, classification, tables, mapping, params, limit=None) -> Plan:
    if dialect not in DIALECTS or DIALECTS[dialect] not in ("postgres", "mysql", "sqlite"):
        raise Refused(f"查询台暂不支持 {dialect} 数据库")
    read = DIALECTS[dialect]
    text = sql or ""
    if not text.strip():
        raise Refused("请填写 SQL")
    if len(text) > MAX_SQL:
        raise Refused(f"SQL 过长（超过 {MAX_SQL // 1000} K 字符）")
    if "\x00" in text:
        raise Refused("SQL 中含有空字符")
    if re.search(r"/\*[mM]?!", text):
        raise Refused("不允许 MySQL / MariaDB 的可执行注释 /*! … */")
    try:
        statements = [s for s in sqlglot.parse(text, read=read) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise Refused(_parse_error(exc)) from None
    except sqlglot.errors.SqlglotError:
        raise Refused("SQL 无法解析（引号未闭合或含有无法识别的字符）") from None
    if len(statements) != 1:
        raise Refused(f"只能有一条查询语句（现有 {len(statements)} 条，请去掉分号分隔的其他语句）")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.SetOperation | exp.Subquery):
        kind = type(tree).__name__
        raise Refused(f"只允许只读的 SELECT 查询（收到的是 {FORBIDDEN_WHAT.get(kind, kind.upper())}）")
    check_nodes(tree)
    reviewer = Reviewer(schema, classification, set(schema) if tables is None else set(tables))
    outs = reviewer.query(tree, {}, None)
    if not outs:
        raise Refused("查询没有输出列")
    masked, sources = {}, {}
    for i, (_, lin) in enumerate(outs):
        if lin.classified:
            kinds = lin.kinds
            masked[i] = next(iter(kinds)) if len(kinds) == 1 else "mixed"
            sources[i] = sorted(f"{s.table}.{s.column}" for s in lin.srcs)
    names = _output_names(tree)
    placeholders = list(tree.find_all(exp.Placeholder))
    for node in placeholders:
        if not params or node.name not in params:
            raise Refused(f"参数 :{node.name} 未提供值")
        value = params[node.name]
        node.replace(
            exp.Literal.number(value) if isinstance(value, int | float) else exp.Literal.string(str(value))
        )
    # Names were resolved without regard to case: what runs names them the same way on every engine (a quoted
    # "PERSON_INFO" or MySQL's case-sensitive table names would otherwise reach another table than the one judged).
    for ident in tree.find_all(exp.Identifier):
        if isinstance(ident.this, str):
            ident.set("this", ident.this.lower())
    if limit is not None:
        _cap(tree, int(limit) + 1)
    if mapping:
        tree = apply_mapping(tree, mapping, {t: set(c) for t, c in schema.items()})
    rendered = tree.sql(dialect=read, comments=False)
    return Plan(rendered, names, masked, sources, sorted(reviewer.read))


def _output_names(tree: exp.Expression) -> list[str]:
    while isinstance(tree, exp.SetOperation | exp.Subquery):
        tree = tree.this
    return [p.alias_or_name or p.sql() for p in tree.expressions]


# --- masking ----------------------------------------------------------------------------------------------------

# An ID number (its check character may be X), else an account-like run, else a mobile number; only an ID's own
# last character may be a letter, so an account number followed by "X" is still an account number.
SHAPE = re.compile(r"(?<!\d)(\d{17}[\dXx](?![\dXx])|\d{16,19}(?!\d)|1[3-9]\d{9}(?!\d))")


def mask_as(kind: str, value: Any) -> Any:
    """A value of a classified column, masked by its kind."""
    if value is None:
        return None
    text = str(plain(value))
    if kind == "id":
        return _keep(text, 6, 2)
    if kind == "account":
        return _keep(text, 4, 4)
    if kind == "phone":
        return _keep(text, 3, 4)
    if kind == "name":
        return _keep(text, 1, 0)
    return "*" * min(max(len(text), 6), 12)


def _shape_one(match: re.Match) -> str:
    run = match.group(0)
    if len(run) == 11:
        return _keep(run, 3, 4)
    if len(run) == 18:
        return _keep(run, 6, 2)
    return _keep(run, 4, 4)


def mask_shape(value: Any) -> tuple[Any, bool]:
    """The second lock: any ID-number-, mobile- or account-shaped digit run in any cell is masked."""
    if value is None or isinstance(value, bool):
        return value, False
    if isinstance(value, str) and len(value) < 11:  # the shortest shape is an 11-digit mobile number
        return value, False
    if isinstance(value, int):
        text = str(value)
        if SHAPE.search(text):
            return SHAPE.sub(_shape_one, text), True
        return value, False
    if isinstance(value, str):
        if SHAPE.search(value):
            return SHAPE.sub(_shape_one, value), True
        return value, False
    return value, False


@dataclass
class Result:
    columns: list[str]
    rows: list[list[Any]]
    masked_columns: list[int]  # positions masked by classification
    masked_cells: list[tuple[int, int]]  # (row, column) masked by value shape (the second lock)
    truncated: bool
    ms: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def mask_rows(plan: Plan, raw_rows: Iterable[tuple]) -> tuple[list[list[Any]], list[tuple[int, int]]]:
    rows, cells = [], []
    masked = plan.masked
    for r, raw in enumerate(raw_rows):
        row = []
        for c, value in enumerate(raw):
            if c in masked:
                value = mask_as(masked[c], value)
            elif value is None or isinstance(value, bool | float):
                row.append(value)
                continue
            value, hit = mask_shape(plain(value))
            if hit and c not in masked:
                cells.append((r, c))
            row.append(value)
        rows.append(row)
    return rows, cells


def explain_error(exc: Exception, timeout_s: int) -> str:
    text = (
        str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
        if str(exc).strip()
        else type(exc).__name__
    )
    text = mask_shape(text)[0]  # a value quoted in an error message is a cell like any other
    lowered = text.lower()
    if any(
        w in lowered
        for w in ("statement timeout", "canceling statement", "interrupted", "max_statement_time")
    ):
        return f"执行超时（超过 {timeout_s} 秒），已中止"
    if "read-only" in lowered or "read only" in lowered or "readonly" in lowered:
        return f"只读会话拒绝了写操作：{text}"
    if any(
        w in lowered
        for w in ("no such table", "does not exist", "doesn't exist", "unknown column", "no such column")
    ):
        return f"表或列不存在，请检查目标库的映射：{text}"
    return f"执行失败：{text}"


def execute(engine: sa.Engine, plan: Plan, *, limit: int = 200, timeout_s: int = 30) -> Result:
    """Run a reviewed plan on ``engine`` in a read-only transaction with a statement timeout; at most ``limit``
    rows (one more is fetched to know the result was cut); always rolled back; cells masked."""
    name = engine.dialect.name
    start = time.monotonic()
    raw_rows: list[tuple] = []
    truncated = False
    error = ""
    try:
        conn = engine.connect()
    except Exception as exc:  # noqa: BLE001 — a target that cannot be reached is an answer, not a crash
        text = mask_shape(
            str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300] if str(exc).strip() else ""
        )[0]
        return Result(
            plan.columns,
            [],
            sorted(plan.masked),
            [],
            False,
            0,
            f"无法连接数据库：{text or type(exc).__name__}",
        )
    with conn:
        reset = None
        try:
            if name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
            elif name in ("mysql", "mariadb"):
                # The session too: DDL commits the open transaction implicitly and would run outside a read-only
                # transaction, but not outside a read-only session.
                conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
                if getattr(conn.dialect, "_is_mariadb", False):
                    conn.exec_driver_sql(f"SET SESSION max_statement_time = {int(timeout_s)}")
                    reset = ["SET SESSION max_statement_time = DEFAULT"]
                else:
                    conn.exec_driver_sql(f"SET SESSION max_execution_time = {int(timeout_s * 1000)}")
                    reset = ["SET SESSION max_execution_time = DEFAULT"]
                reset.append("SET SESSION TRANSACTION READ WRITE")
                conn.exec_driver_sql("START TRANSACTION READ ONLY")
            elif name == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
                raw = conn.connection.dbapi_connection
                deadline = time.monotonic() + timeout_s
                raw.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
            else:
                raise Refused(f"查询台暂不支持 {name} 数据库")
            result = conn.execution_options(stream_results=True, no_parameters=True).exec_driver_sql(plan.sql)
            raw_rows = [tuple(r) for r in result.fetchmany(limit + 1)]
            result.close()
            truncated = len(raw_rows) > limit
            raw_rows = raw_rows[:limit]
        except Refused as exc:
            error = exc.reason
        except sa.exc.SQLAlchemyError as exc:
            error = explain_error(exc, timeout_s)
        finally:
            try:
                conn.rollback()
                if name == "sqlite":
                    conn.connection.dbapi_connection.set_progress_handler(None, 0)
                for statement in reset or []:
                    conn.exec_driver_sql(statement)
                conn.rollback()
            except sa.exc.SQLAlchemyError:
                conn.invalidate()
    ms = int((time.monotonic() - start) * 1000)
    rows, cells = mask_rows(plan, raw_rows)
    return Result(plan.columns, rows, sorted(plan.masked), cells, truncated, ms, error)
