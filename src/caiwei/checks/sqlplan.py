"""From a rule's logical SQL to what runs on one target: scope predicates, the target's table and column names,
counting queries that share one scan, and rendering in the target's dialect. Works on sqlglot syntax trees.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlglot
from sqlglot import exp

from .engine import DAY_DIFF_FUNCTION, NORMALIZE_FUNCTION, SOURCE_DIALECT, WHITESPACE, Rule, RuleError

# SQLAlchemy dialect name → sqlglot dialect. 达梦 (dm) speaks Oracle's SQL: no LIMIT, FETCH FIRST instead.
DIALECTS = {
    "postgresql": "postgres",
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
    "oracle": "oracle",
    "dm": "oracle",
}
PSYCOPG_PARAM = re.compile(r"%\((\w+)\)s")
CODE = re.compile(r"^[0-9A-Za-z_]{1,40}$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$#]{0,127}$")
FORBIDDEN = (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter, exp.Command, exp.Merge)


def sqlglot_dialect(dialect: str) -> str:
    try:
        return DIALECTS[dialect]
    except KeyError:
        raise RuleError(f"不支持的数据库方言 {dialect}，可选：{'、'.join(DIALECTS)}") from None


def render(tree: exp.Expression, dialect: str, pretty: bool = False) -> str:
    """SQL text for SQLAlchemy ``text()``: parameters stay ``:name`` whatever the driver's own style."""
    target = sqlglot_dialect(dialect)
    tree = expand_portable(tree, target)
    return PSYCOPG_PARAM.sub(r":\1", tree.sql(dialect=target, pretty=pretty))


# --- portable functions -----------------------------------------------------------------------------------------
# Two things plain SQL does not say the same way on every engine, written in a rule as a function of Caiwei's and
# expanded here per dialect: caiwei_norm(text, 'name') — a declared normaliser (engine.Normalizer) — and
# caiwei_day_diff(a, b) — whole days from date b to date a.

FULL_WIDTH = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " "}


def char_map(spec: dict) -> dict[str, str]:
    """Character → what it becomes ('' = deleted) for the character steps of a resolved normaliser: width folding,
    ASCII upper case, deletion. Every result is a fixed point, so the replacements may run in any order (or as one
    TRANSLATE)."""
    deleted = set(WHITESPACE if spec.get("whitespace") else "")

    def step(c: str) -> str:
        if spec.get("width"):
            c = FULL_WIDTH.get(c, c)
        if spec.get("upper") and "a" <= c <= "z":
            c = c.upper()
        return c

    deleted |= {step(c) for c in spec.get("remove") or ""}
    candidates = set(deleted) | set(spec.get("remove") or "")
    if spec.get("width"):
        candidates |= set(FULL_WIDTH)
    if spec.get("upper"):
        candidates |= {chr(c) for c in range(ord("a"), ord("z") + 1)}
    mapping = {}
    for c in sorted(candidates):
        target = step(c)
        target = "" if target in deleted else target
        if target != c:
            mapping[c] = target
    return mapping


def normalize_chars(text: str, spec: dict) -> str:
    """The character steps in Python (used to normalise the affix lists themselves)."""
    mapping = char_map(spec)
    return "".join(mapping.get(c, c) for c in text)


def _length(node: exp.Expression) -> exp.Expression:
    return exp.Length(this=node.copy())


def _strip_affixes(node: exp.Expression, affixes: list[str], suffix: bool) -> exp.Expression:
    """CASE WHEN LENGTH(x) > n AND <x ends/starts with affix> THEN <x without it> … ELSE x END, longest first."""
    case = exp.Case()
    for affix in sorted(set(affixes), key=lambda a: (-len(a), a)):
        n = exp.Literal.number(len(affix))
        if suffix:
            start = exp.Sub(this=_length(node), expression=exp.Literal.number(len(affix) - 1))
            part = exp.Substring(this=node.copy(), start=start)
            rest = exp.Substring(
                this=node.copy(),
                start=exp.Literal.number(1),
                length=exp.Sub(this=_length(node), expression=n.copy()),
            )
        else:
            part = exp.Substring(this=node.copy(), start=exp.Literal.number(1), length=n.copy())
            rest = exp.Substring(this=node.copy(), start=exp.Literal.number(len(affix) + 1))
        condition = exp.and_(
            exp.GT(this=_length(node), expression=n.copy()),
            exp.EQ(this=part, expression=exp.Literal.string(affix)),
        )
        case = case.when(condition, rest)
    return case.else_(node.copy())


REPLACES_PER_STAGE = 20  # SQLite's parser gives up at about 35 nested calls


def _colons_last(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A colon before a word character would read as a bind parameter (SQLAlchemy text()): a pair that has a colon
    on either side goes last, where the closing quote follows it."""
    return sorted(pairs, key=lambda pair: ":" in pair)


def normalize_stages(spec: dict, dialect: str) -> list:
    """The normaliser as a list of steps, each a function of the previous step's column: character steps (one
    TRANSLATE where the engine has it, else nested REPLACE in stages of at most REPLACES_PER_STAGE), then the
    suffixes, then the prefixes."""
    mapping = char_map(spec)
    stages = []
    if mapping and dialect in ("postgres", "oracle"):
        kept = _colons_last([(c, t) for c, t in mapping.items() if t])
        dropped = _colons_last([(c, t) for c, t in mapping.items() if not t])
        source = "".join(c for c, _ in kept + dropped)
        target = "".join(t for _, t in kept)
        if dialect == "oracle":
            # Oracle's '' is NULL: a sentinel mapped to itself keeps TRANSLATE's target non-empty.
            sentinel = next(chr(c) for c in range(1, 32) if chr(c) not in mapping)
            source, target = sentinel + source, sentinel + target
        stages.append(
            lambda node: exp.func("TRANSLATE", node, exp.Literal.string(source), exp.Literal.string(target))
        )
    else:
        items = list(mapping.items())
        for i in range(0, len(items), REPLACES_PER_STAGE):

            def replace(node, chunk=items[i : i + REPLACES_PER_STAGE]):
                for c, target in chunk:
                    node = exp.func("REPLACE", node, exp.Literal.string(c), exp.Literal.string(target))
                return node

            stages.append(replace)
    for key, suffix in (("suffixes", True), ("prefixes", False)):
        affixes = [a for a in (normalize_chars(a, spec) for a in spec.get(key) or ()) if a]
        if affixes:
            stages.append(lambda node, affixes=affixes, suffix=suffix: _strip_affixes(node, affixes, suffix))
    return stages


def _norm_call(node: exp.Expression) -> exp.Anonymous | None:
    if isinstance(node, exp.Alias):
        node = node.this
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == NORMALIZE_FUNCTION:
        return node
    return None


def _layered(select: exp.Select, dialect: str, prefix: str = "caiwei_n") -> exp.Select:
    """A SELECT with ``caiwei_norm(x, …) AS k`` outputs → the same SELECT with ``x AS k`` as the first of a chain of
    common table expressions, each applying one normalising step to the column k of the one before (so no engine
    meets a deeply nested expression — SQLite's parser stops at about 35 levels, nested subqueries included — and
    each step is computed once per row)."""
    names = list(select.named_selects)
    steps: dict[str, list] = {}
    base = select.copy()
    for projection in base.expressions:
        call = _norm_call(projection)
        if call is not None:
            spec = call.expressions[1].this
            steps[projection.alias_or_name] = normalize_stages(
                json.loads(spec) if spec.startswith("{") else {}, dialect
            )
            projection.replace(exp.alias_(call.expressions[0].copy(), projection.alias_or_name))
    ctes = [(f"{prefix}0", base)]
    for i in range(max((len(v) for v in steps.values()), default=0)):
        inner = ctes[-1][0]
        projections = []
        for name in names:
            column = exp.column(name, inner)
            stage = steps.get(name, [])
            projections.append(exp.alias_(stage[i](column), name) if i < len(stage) else column)
        ctes.append((f"{prefix}{i + 1}", exp.select(*projections).from_(inner)))
    final = exp.select(*[exp.column(name, ctes[-1][0]) for name in names]).from_(ctes[-1][0])
    for name, query in ctes:
        final = final.with_(name, as_=query)
    return final


def _day_diff(a: exp.Expression, b: exp.Expression, dialect: str) -> exp.Expression:
    if dialect == "sqlite":
        return exp.Cast(
            this=exp.Sub(this=exp.func("JULIANDAY", a), expression=exp.func("JULIANDAY", b)),
            to=exp.DataType.build("INTEGER"),
        )
    if dialect == "mysql":
        return exp.Anonymous(this="DATEDIFF", expressions=[a, b])
    date = exp.DataType.build("DATE")
    return exp.paren(exp.Sub(this=exp.Cast(this=a, to=date), expression=exp.Cast(this=b, to=date.copy())))


def expand_portable(tree: exp.Expression, dialect: str) -> exp.Expression:
    """Expand caiwei_norm and caiwei_day_diff for the target's sqlglot dialect (the tree itself is left alone)."""
    names = {NORMALIZE_FUNCTION, DAY_DIFF_FUNCTION}
    if not any(str(a.this).lower() in names for a in tree.find_all(exp.Anonymous)):
        return tree

    def expand(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Anonymous):
            return node
        name = str(node.this).lower()
        if name == DAY_DIFF_FUNCTION:
            return _day_diff(*node.expressions, dialect)
        return node

    layers = iter(range(1000))

    def layer(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Select) and any(_norm_call(e) for e in node.expressions):
            return _layered(node, dialect, f"caiwei_n{next(layers)}_")
        return node

    return tree.copy().transform(layer).transform(expand)


def bind_normalizers(rule: Rule, tree: exp.Expression, params: dict[str, Any]) -> exp.Expression:
    """Write each caiwei_norm call's resolved normaliser (lists from the bound parameters) into the call."""
    if not rule.normalize:
        return tree
    tree = tree.copy()
    for call in tree.find_all(exp.Anonymous):
        if str(call.this).lower() == NORMALIZE_FUNCTION:
            spec = rule.normalize[call.expressions[1].this].resolve(params)
            call.expressions[1].replace(exp.Literal.string(json.dumps(spec, ensure_ascii=False)))
    return tree


# --- scope ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """范围: regions (finance region codes), a fiscal year and a date window, for incremental runs."""

    regions: tuple[str, ...] = ()
    year: int | None = None
    date_from: date | None = None
    date_to: date | None = None

    def __post_init__(self):
        bad = [c for c in self.regions if not CODE.match(c)]
        if bad:
            raise RuleError(f"区划代码格式不正确：{'、'.join(bad)}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "regions": list(self.regions),
            "year": self.year,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> Scope:
        data = data or {}
        return cls(
            regions=tuple(data.get("regions") or ()),
            year=int(data["year"]) if data.get("year") else None,
            date_from=date.fromisoformat(data["date_from"]) if data.get("date_from") else None,
            date_to=date.fromisoformat(data["date_to"]) if data.get("date_to") else None,
        )

    def describe(self) -> str:
        parts = []
        if self.regions:
            parts.append("区划 " + "、".join(self.regions))
        if self.year:
            parts.append(f"{self.year} 年度")
        if self.date_from or self.date_to:
            parts.append(f"日期 {self.date_from or '…'} 至 {self.date_to or '…'}")
        return "；".join(parts) or "全部数据"


def _column(text: str) -> exp.Expression:
    return sqlglot.parse_one(text, read=SOURCE_DIALECT)


def with_scope(rule: Rule, tree: exp.Select, scope: Scope) -> exp.Select:
    """Add the scope's predicates to the rule's outer WHERE, on the columns the rule names for them."""
    conditions = []
    if scope.regions and "region" in rule.scope:
        codes = [exp.Literal.string(c) for c in scope.regions]
        conditions.append(exp.In(this=_column(rule.scope["region"]), expressions=codes))
    if scope.year and "year" in rule.scope:
        conditions.append(exp.EQ(this=_column(rule.scope["year"]), expression=exp.Literal.number(scope.year)))
    if "date" in rule.scope:
        for bound, cls in ((scope.date_from, exp.GTE), (scope.date_to, exp.LTE)):
            if bound:
                value = exp.Cast(this=exp.Literal.string(bound.isoformat()), to=exp.DataType.build("DATE"))
                conditions.append(cls(this=_column(rule.scope["date"]), expression=value))
    tree = tree.copy()
    for condition in conditions:
        tree = tree.where(condition, append=True, copy=False)
    return tree


# --- mapping ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mapping:
    """映射: the target's real names for the logical tables and columns of DOMAIN.md (identity when empty)."""

    tables: dict[str, str] = field(default_factory=dict)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    schema: str = ""

    @classmethod
    def from_dict(cls, data: dict | None) -> Mapping:
        data = data or {}
        if not isinstance(data, dict):
            raise RuleError('映射应为 JSON 对象：{"tables": {…}, "columns": {…}}')
        unknown = set(data) - {"tables", "columns", "schema"}
        if unknown:
            raise RuleError(f"映射中有未知的键 {'、'.join(sorted(unknown))}，只能是 tables、columns、schema")
        raw_tables, raw_columns = data.get("tables") or {}, data.get("columns") or {}
        if not isinstance(raw_tables, dict) or not all(isinstance(v, str) for v in raw_tables.values()):
            raise RuleError('映射中的 tables 应为“逻辑表名: 实际表名”的键值对，如 {"pay_voucher": "zf_zfsq"}')
        if not isinstance(raw_columns, dict) or not all(
            isinstance(cols, dict) and all(isinstance(v, str) for v in cols.values())
            for cols in raw_columns.values()
        ):
            raise RuleError("映射中的 columns 应为“逻辑表名: {逻辑列名: 实际列名}”的键值对")
        if not isinstance(data.get("schema") or "", str):
            raise RuleError("映射中的 schema 应为文本")
        tables = {str(k): v for k, v in raw_tables.items()}
        columns = {str(t): {str(k): v for k, v in cols.items()} for t, cols in raw_columns.items()}
        schema = data.get("schema") or ""
        names = [*tables.values(), *(c for cols in columns.values() for c in cols.values())] + (
            [schema] if schema else []
        )
        bad = [n for n in names if not IDENT.match(n)]
        if bad:
            raise RuleError(f"映射中的表名或列名不合法：{'、'.join(bad)}")
        return cls(tables, columns, schema)

    def as_dict(self) -> dict:
        return {"tables": self.tables, "columns": self.columns, "schema": self.schema}

    def __bool__(self) -> bool:
        return bool(self.tables or self.columns or self.schema)


def _sources(select: exp.Select) -> dict[str, str | None]:
    """Alias → logical table for the FROM and JOIN items of one SELECT (None for a derived table)."""
    items = []
    if select.args.get("from_"):
        items.append(select.args["from_"].this)
    items += [j.this for j in select.args.get("joins") or []]
    found: dict[str, str | None] = {}
    for item in items:
        if isinstance(item, exp.Table):
            found[item.alias_or_name] = item.name
        elif item.alias:
            found[item.alias] = None
    return found


def _owner(column: exp.Column, known: dict[str, set[str]]) -> str | None:
    """The logical table a column belongs to, looking outwards through enclosing SELECTs (correlation)."""
    select = column.find_ancestor(exp.Select)
    while select is not None:
        sources = _sources(select)
        if column.table:
            if column.table in sources:
                return sources[column.table]
        else:
            tables = [t for t in sources.values() if t]
            if len(sources) == 1 and tables:
                return tables[0]
            having = [t for t in tables if column.name in known.get(t, ())]
            if having:
                return having[0]
        select = select.parent.find_ancestor(exp.Select) if select.parent else None
    return None


def apply_mapping(tree: exp.Expression, mapping: Mapping, known: dict[str, set[str]]) -> exp.Expression:
    """Rename logical tables and columns to the target's; output columns keep their logical names."""
    if not mapping:
        return tree
    tree = tree.copy()
    renames: list[tuple[exp.Column, str]] = []
    for column in tree.find_all(exp.Column):
        owner = _owner(column, known)
        physical = mapping.columns.get(owner or "", {}).get(column.name)
        if physical and physical != column.name:
            renames.append((column, physical))
    for column, physical in renames:
        logical = column.name
        parent = column.parent
        column.set("this", exp.to_identifier(physical))
        if isinstance(parent, exp.Select) and column in parent.expressions:
            column.replace(exp.alias_(column.copy(), logical))
    for table in tree.find_all(exp.Table):
        physical = mapping.tables.get(table.name)
        if physical or mapping.schema:
            if not table.alias:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name)))
            table.set("this", exp.to_identifier(physical or table.name))
            if mapping.schema:
                table.set("db", exp.to_identifier(mapping.schema))
    return tree


# --- planning ---------------------------------------------------------------------------------------------------


@dataclass
class Planned:
    """One rule made ready for a target: its tree (scoped and mapped) and its bound parameters."""

    rule: Rule
    tree: exp.Select
    params: dict[str, Any]

    def listing(self, dialect: str) -> str:
        """The SQL that lists every failing row, parameters written in, to copy into a SQL client."""
        tree = self.tree.copy()
        for node in list(tree.find_all(exp.Placeholder)):
            value = self.params.get(node.name)
            literal = (
                exp.Literal.number(value)
                if isinstance(value, int | float)
                else exp.Literal.string(str(value))
            )
            node.replace(literal)
        return render(tree, dialect, pretty=True)


def plan(
    rule: Rule,
    *,
    as_of: date,
    scope: Scope | None = None,
    mapping: Mapping | None = None,
    known: dict[str, set[str]] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Planned:
    tree = rule.tree
    if any(tree.find(kind) for kind in FORBIDDEN):
        raise RuleError(f"规则 {rule.id}：只允许查询语句")
    tree = with_scope(rule, tree, scope or Scope())
    tree = apply_mapping(tree, mapping or Mapping(), known or {})
    params = rule.bind(as_of, overrides)
    tree = bind_normalizers(rule, tree, params)
    return Planned(rule, tree, params)


def _frame(tree: exp.Select) -> exp.Select | None:
    """The rule's FROM/JOIN frame when its failing rows are exactly the frame's rows passing its WHERE."""
    if any(
        tree.args.get(k)
        for k in ("group", "having", "distinct", "limit", "offset", "order", "with", "qualify")
    ):
        return None
    if not tree.args.get("where"):
        return None
    if any(node.find(exp.AggFunc, exp.Window) for node in tree.expressions):
        return None
    if tree.args["where"].find(exp.Exists, exp.Subquery, exp.Select):
        # A condition over a subquery (NOT EXISTS …) is a semi/anti join when the rule runs alone; inside one
        # aggregate's CASE the database evaluates it row by row (measured: 5.3 s against 1.6 s at 1 M payments).
        return None
    frame = tree.copy()
    frame.set("where", None)
    frame.set("expressions", [exp.Literal.number(1)])
    return frame


def _prefixed(node: exp.Expression, prefix: str) -> exp.Expression:
    node = node.copy()
    for placeholder in node.find_all(exp.Placeholder):
        placeholder.set("this", f"{prefix}{placeholder.name}")
    return node


def _amount_expr(planned: Planned) -> exp.Expression | None:
    if not planned.rule.amount:
        return None
    for projection in planned.tree.expressions:
        if projection.alias_or_name == planned.rule.amount:
            return projection.unalias() if isinstance(projection, exp.Alias) else projection
    return None


@dataclass
class CountQuery:
    """One counting query: for each of its rules, the number of failing rows and the money involved."""

    rules: list[Planned]
    sql: str
    params: dict[str, Any]
    columns: list[tuple[str, str | None]]  # (count column, amount column) per rule, in order


def count_queries(planned: list[Planned], dialect: str, combine: bool = True) -> list[CountQuery]:
    """Group rules over the same frame into one aggregate (one scan); the rest each get COUNT(*) over the rule."""
    groups: dict[str, list[tuple[Planned, exp.Select]]] = {}
    alone: list[Planned] = []
    for p in planned:
        frame = _frame(p.tree) if combine else None
        if frame is None:
            alone.append(p)
        else:
            groups.setdefault(render(frame, dialect), []).append((p, frame))
    queries = []
    for members in groups.values():
        if len(members) == 1:
            alone.append(members[0][0])
            continue
        frame = members[0][1].copy()
        projections, params, columns = [], {}, []
        for i, (p, _) in enumerate(members):
            prefix = f"r{i}_"
            condition = _prefixed(p.tree.args["where"].this, prefix)
            projections.append(
                exp.alias_(
                    exp.func(
                        "SUM", exp.If(this=condition, true=exp.Literal.number(1), false=exp.Literal.number(0))
                    ),
                    f"c{i}",
                )
            )
            amount = _amount_expr(p)
            if amount is not None:
                amount = _prefixed(amount, prefix)
                projections.append(
                    exp.alias_(exp.func("SUM", exp.If(this=condition.copy(), true=amount)), f"a{i}")
                )
            columns.append((f"c{i}", f"a{i}" if amount is not None else None))
            params.update({f"{prefix}{k}": v for k, v in p.params.items()})
        frame.set("expressions", projections)
        queries.append(CountQuery([p for p, _ in members], render(frame, dialect), params, columns))
    for p in alone:
        select = [exp.alias_(exp.Count(this=exp.Star()), "c0")]
        if p.rule.amount:
            select.append(exp.alias_(exp.func("SUM", exp.column(p.rule.amount, "f")), "a0"))
        query = exp.select(*select).from_(p.tree.subquery("f"))
        queries.append(
            CountQuery([p], render(query, dialect), dict(p.params), [("c0", "a0" if p.rule.amount else None)])
        )
    return queries


def _agency(mapping: Mapping | None) -> tuple[exp.Table, str, str]:
    """The budget-unit code set ele_agency on the target, aliased ``a``: (table, code column, name column)."""
    mapping = mapping or Mapping()
    columns = mapping.columns.get("ele_agency", {})
    table = exp.table_(mapping.tables.get("ele_agency", "ele_agency"), db=mapping.schema or None, alias="a")
    return table, columns.get("agency_code", "agency_code"), columns.get("agency_name", "agency_name")


def units_query(p: Planned, dialect: str, mapping: Mapping | None = None, limit: int = 20) -> str | None:
    """Failing rows per budget unit 按预算单位, with the unit's name, for rules that report ``agency_code``."""
    if "agency_code" not in p.tree.named_selects:
        return None
    agency, code, name = _agency(mapping)
    amount = exp.func("SUM", exp.column(p.rule.amount, "f")) if p.rule.amount else exp.null()
    query = (
        exp.select(
            exp.alias_(exp.column("agency_code", "f"), "agency_code"),
            exp.alias_(exp.func("MAX", exp.column(name, "a")), "agency_name"),
            exp.alias_(exp.Count(this=exp.Star()), "n"),
            exp.alias_(amount, "amount"),
        )
        .from_(p.tree.subquery("f"))
        .join(agency, on=f"a.{code} = f.agency_code", join_type="left")
        .group_by(exp.column("agency_code", "f"))
        .order_by(exp.Ordered(this=exp.Count(this=exp.Star()), desc=True))
        .limit(limit)
    )
    return render(query, dialect)


COUNT_COLUMN, AMOUNT_COLUMN = "caiwei_n", "caiwei_amount"


def counted_rows_query(p: Planned, dialect: str, limit: int) -> str:
    """The failing rows, capped, each carrying the total count (and money) over all of them: one execution of an
    expensive rule gives both the count and the rows."""
    projections = ["f.*", f"COUNT(*) OVER () AS {COUNT_COLUMN}"]
    if p.rule.amount:
        projections.append(f"SUM(f.{p.rule.amount}) OVER () AS {AMOUNT_COLUMN}")
    return render(exp.select(*projections).from_(p.tree.subquery("f")).limit(limit), dialect)


def agency_names_query(count: int, dialect: str, mapping: Mapping | None = None) -> str:
    """Names of ``count`` budget units given as parameters :u0, :u1, …"""
    agency, code, name = _agency(mapping)
    query = (
        exp.select(
            exp.alias_(exp.column(code, "a"), "agency_code"), exp.alias_(exp.column(name, "a"), "agency_name")
        )
        .from_(agency)
        .where(
            exp.In(
                this=exp.column(code, "a"), expressions=[exp.Placeholder(this=f"u{i}") for i in range(count)]
            )
        )
    )
    return render(query, dialect)


def groupable(p: Planned) -> bool:
    """Whether a rule's rows can be fetched in a shared scan: it shares a frame and names all its columns."""
    return _frame(p.tree) is not None and not any(
        isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
        for e in p.tree.expressions
    )


@dataclass
class GroupRows:
    sql: str
    params: dict[str, Any]
    members: list[tuple[Planned, str, list[tuple[str, str]]]]  # rule, its flag column, (output name, alias)


def group_rows_query(members: list[Planned], dialect: str, limit: int) -> GroupRows:
    """One scan of the shared frame for the rows failing any of ``members``, with a flag column per rule."""
    frame = _frame(members[0].tree)
    projections, params, conditions, layout = [], {}, [], []
    for i, p in enumerate(members):
        prefix = f"r{i}_"
        condition = _prefixed(p.tree.args["where"].this, prefix)
        conditions.append(condition.copy())
        flag = f"caiwei_f{i}"
        projections.append(
            exp.alias_(exp.If(this=condition, true=exp.Literal.number(1), false=exp.Literal.number(0)), flag)
        )
        aliases = []
        for j, projection in enumerate(p.tree.expressions):
            alias = f"caiwei_{i}_{j}"
            value = projection.unalias() if isinstance(projection, exp.Alias) else projection
            projections.append(exp.alias_(_prefixed(value, prefix), alias))
            aliases.append((projection.alias_or_name, alias))
        layout.append((p, flag, aliases))
        params.update({f"{prefix}{k}": v for k, v in p.params.items()})
    frame.set("expressions", projections)
    frame.set("where", exp.Where(this=exp.or_(*conditions)))
    return GroupRows(render(frame.limit(limit), dialect), params, layout)


def rows_query(p: Planned, dialect: str, limit: int) -> str:
    """The failing rows themselves, capped: keys for the diff and the first few as the sample."""
    return render(exp.select("*").from_(p.tree.subquery("f")).limit(limit), dialect)


def bare_count(p: Planned, dialect: str) -> str:
    """COUNT(*) over the rule's own SQL, as a person would run it: the baseline of bench/checks.py."""
    return render(exp.select(exp.Count(this=exp.Star())).from_(p.tree.subquery("f")), dialect)
