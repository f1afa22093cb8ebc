"""Rule files from the constraint model 由约束模型生成规则文件: one readable YAML file per constraint, in the format of
the shipped rules (PostgreSQL dialect over the logical tables, scope columns, an ``as_of`` parameter where a date may
not lie after the check date). ``write()`` writes the pack, ``check()`` lists the files that differ from the model.
"""

# ruff: noqa: S608  (rule SQL is written from the model's own table and column names, never from input)

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import sqlglot
import yaml
from sqlglot import exp

from ..engine import RULES_DIR
from ..present import COLUMN_LABELS
from . import model as m

PACK = "schema_derived"
PACK_DIR = RULES_DIR / PACK
PACK_META = {
    "title": "由表结构约束生成的规则",
    "description": (
        "由逻辑表结构的约束模型自动生成：引用存在且区划、年度、单位、要素一致；金额的正负与两位小数；"
        "日期在预算年度内、不晚于检查日、符合业务先后；代码在值集内、为末级且在使用日有效；资金流各环节笔数与金额前后一致。"
        "这些规则不手工修改：修改约束模型后用命令行重新生成。"
    ),
    "order": 8,
}
AS_OF = {"as_of": {"title": "检查日", "days_before_as_of": 0}}
SEVERITY = {"REF": "紧急", "KEY": "紧急", "AMT": "紧急", "DATE": "一般", "CODE": "一般", "FLOW": "重大"}


@dataclass
class Generated:
    """One generated rule and the constraint it stands for (the property tests use the pairing)."""

    id: str
    kind: str
    constraint: object
    data: dict

    @property
    def key_table(self) -> str:
        return self.data["_table"]


def _label(column: str) -> str:
    return COLUMN_LABELS.get(column, column)


WORDS = (
    (" IS NOT NULL", "非空"),
    (" IS NULL", "为空"),
    (" AND ", "且"),
    (" OR ", "，或 "),
    ("<>", "≠"),
    ("<=", "≤"),
    (">=", "≥"),
)


def _words(expression: str, count: str = "笔数") -> str:
    """A condition of the model in words for the rule's description: columns by their Chinese labels, ``n`` the
    count of the child rows, AND/OR/IS NULL in Chinese (the SQL itself is shown beside the rule)."""
    text = re.sub(r"\{p\}\.", "", expression)
    text = re.sub(r"\b[a-z][a-z0-9_]*\b", lambda m: count if m.group(0) == "n" else _label(m.group(0)), text)
    for word, chinese in WORDS:
        text = text.replace(word, chinese)
    return text


def _scope(table: m.Table, alias: str) -> dict[str, str]:
    scope = {}
    if table.region:
        scope["region"] = f"{alias}.{m.REGION}"
    if table.year:
        scope["year"] = f"{alias}.{m.YEAR}"
    if table.date:
        scope["date"] = f"{alias}.{table.date}"
    return scope


def _qualify(expression: str, alias: str) -> str:
    tree = sqlglot.parse_one(expression, read="postgres")
    for column in tree.find_all(exp.Column):
        if not column.table:
            column.set("table", exp.to_identifier(alias))
    return tree.sql(dialect="postgres")


def _select(*columns: str) -> str:
    seen, out = set(), []
    for c in columns:
        name = c.rsplit(" AS ", 1)[-1].rsplit(".", 1)[-1]
        if name not in seen:
            seen.add(name)
            out.append(c)
    return ", ".join(out)


def _rule(
    kind: str, table: m.Table, alias: str, title: str, description: str, source: str, sql: str, **extra
) -> dict:
    data = {
        "title": title,
        "description": description,
        "_source": source,  # written as a comment above the rule: for who maintains the model, not for finance users
        "severity": extra.pop("severity", SEVERITY[kind]),
        "module": table.module,
        "key": [table.key],
        "_table": table.name,
    }
    if extra.get("amount"):
        data["amount"] = extra.pop("amount")
    scope = extra.pop("scope", None)
    data["scope"] = _scope(table, alias) if scope is None else scope
    if not data["scope"]:
        del data["scope"]
    if ":as_of" in sql:
        data["params"] = AS_OF
    for k, v in extra.items():
        if v:
            data[k] = v
    data["sql"] = sql
    return data


def _where(conditions: list[str]) -> str:
    return "\n   OR ".join(conditions)


# --- per kind -----------------------------------------------------------------------------------------------------


def ref_rule(ref: m.Ref) -> dict:
    child, parent = m.TABLES[ref.child], m.TABLES[ref.parent]
    c, p = child.alias, "q" if child.alias == "p" else "p"
    pkey = ref.parent_key or parent.key
    labels = {f"parent_{pc}": f"{parent.title}的{_label(pc)}" for _, pc in ref.agree}
    outputs = [f"{c}.{child.key}", f"{c}.{ref.column}"]
    outputs += [f"{c}.{cc}" for cc, _ in ref.agree] + [f"{p}.{pc} AS parent_{pc}" for _, pc in ref.agree]
    disagree = [f"{c}.{cc} IS DISTINCT FROM {p}.{pc}" for cc, pc in ref.agree]
    names = "、".join(_label(cc) for cc, _ in ref.agree)
    if ref.via:
        v = "w"
        outputs.insert(2, f"{v}.{ref.via.to}")
        sql = (
            f"SELECT {_select(*outputs)}\nFROM {child.name} {c}\n"
            f"JOIN {ref.via.table} {v} ON {v}.{ref.via.key} = {c}.{ref.column}\n"
            f"JOIN {parent.name} {p} ON {p}.{pkey} = {v}.{ref.via.to}\nWHERE {_where(disagree)}"
        )
        title = f"{child.title}与{parent.title}的{names}不一致"
        description = f"{child.title}经{m.TABLES[ref.via.table].title}对应的{parent.title}，其{names}应与{child.title}相同。"
    else:
        missing = f"{p}.{pkey} IS NULL"
        where = _where([missing, *disagree])
        if ref.nullable:
            where = f"{c}.{ref.column} IS NOT NULL AND ({where})"
        sql = (
            f"SELECT {_select(*outputs)}\nFROM {child.name} {c}\n"
            f"LEFT JOIN {parent.name} {p} ON {p}.{pkey} = {c}.{ref.column}\nWHERE {where}"
        )
        what = f"不存在或{names}不一致" if ref.agree else "不存在"
        title = f"{ref.title}{what}"
        description = f"{child.title}的{_label(ref.column)}引用的{parent.title}应存在" + (
            f"，且{names}与{child.title}相同。" if ref.agree else "。"
        )
    return _rule(
        "REF",
        child,
        c,
        title,
        description,
        ref.source,
        sql,
        labels=labels,
        evidence=[ref.column, *(f"parent_{pc}" for _, pc in ref.agree)],
        advice=f"核对{child.title}的{_label(ref.column)}，改为正确的{parent.title}，或补齐缺失的{parent.title}。",
    )


def unique_rule(u: m.Unique) -> dict:
    t = m.TABLES[u.table]
    a = t.alias
    cols = ", ".join(u.columns)
    on = " AND ".join(f"d.{col} = {a}.{col}" for col in u.columns)
    sql = (
        f"SELECT {_select(f'{a}.{t.key}', *(f'{a}.{col}' for col in u.columns), 'd.n AS duplicates')}\n"
        f"FROM {t.name} {a}\n"
        f"JOIN (SELECT {cols}, COUNT(*) AS n FROM {t.name} GROUP BY {cols} HAVING COUNT(*) > 1) d ON {on}"
    )
    names = "、".join(_label(col) for col in u.columns)
    return _rule(
        "KEY",
        t,
        a,
        u.title,
        f"{t.title}的{names}应唯一。",
        u.source,
        sql,
        labels={"duplicates": "重复条数"},
        evidence=[*u.columns, "duplicates"],
        advice=f"查明重复的{t.title}，作废多余的一条或更正编号。",
    )


def amount_rule(amt: m.Amount) -> dict:
    t = m.TABLES[amt.table]
    a, col = t.alias, f"{t.alias}.{amt.column}"
    sign = f"{col} <= 0" if amt.sign == "positive" else f"{col} < 0"
    sql = (
        f"SELECT {_select(f'{a}.{t.key}', col)}\nFROM {t.name} {a}\nWHERE {sign} OR ROUND({col}, 2) <> {col}"
    )
    rule_text = "应大于零" if amt.sign == "positive" else "不能为负"
    return _rule(
        "AMT",
        t,
        a,
        f"{amt.title}{'为负或为零' if amt.sign == 'positive' else '为负'}或超过两位小数",
        f"{t.title}的{amt.title}{rule_text}，且以元为单位保留两位小数。",
        amt.source,
        sql,
        amount=amt.column,
        evidence=[amt.column],
        advice=f"核对原始单据，更正{amt.title}。",
    )


def relation_rule(rel: m.RowRelation) -> dict:
    t = m.TABLES[rel.table]
    a = t.alias
    left, right = _qualify(rel.left, a), _qualify(rel.right, a)
    op = "<>" if rel.op == "=" else ">"
    sql = (
        f"SELECT {_select(f'{a}.{t.key}', *(f'{a}.{c}' for c in rel.columns))}\nFROM {t.name} {a}\n"
        f"WHERE ROUND({left}, 2) {op} ROUND({right}, 2)"
    )
    return _rule(
        "AMT",
        t,
        a,
        rel.title,
        f"{t.title}中应有 {_words(rel.left)} {rel.op} {_words(rel.right)}。",
        rel.source,
        sql,
        evidence=list(rel.columns),
        advice="按明细重算并更正金额。",
    )


def date_rule(d: m.DateRule) -> dict:
    t = m.TABLES[d.table]
    a, col = t.alias, f"{t.alias}.{d.column}"
    conditions, parts = [], []
    if d.in_year:
        conditions.append(f"CAST(TO_CHAR({col}, 'YYYY') AS INT) <> {a}.{m.YEAR}")
        parts.append("不在预算年度内")
    if d.not_after_as_of:
        conditions.append(f"{col} > CAST(:as_of AS DATE)")
        parts.append("晚于检查日")
    for other in d.after:
        conditions.append(f"{a}.{other} IS NULL OR {col} < {a}.{other}")
        parts.append(f"早于{_label(other)}")
    where = _where(conditions)
    if d.nullable:
        where = f"{col} IS NOT NULL AND ({where})"
    outputs = [f"{a}.{t.key}", col, *(f"{a}.{o}" for o in d.after)]
    if d.in_year:
        outputs.append(f"{a}.{m.YEAR}")
    sql = f"SELECT {_select(*outputs)}\nFROM {t.name} {a}\nWHERE {where}"
    return _rule(
        "DATE",
        t,
        a,
        f"{d.title}{'、'.join(parts)}",
        f"{t.title}的{d.title}不能{'、'.join(parts)}。",
        d.source,
        sql,
        evidence=[c.rsplit(".", 1)[-1] for c in outputs[1:]],
        advice=f"核对原始单据，更正{d.title}。",
    )


def date_order_rule(o: m.DateOrder) -> dict:
    child, parent = m.TABLES[o.child], m.TABLES[o.parent]
    c, p = child.alias, "q"
    ccol, pcol = f"{c}.{o.column}", f"{p}.{o.parent_column}"
    if o.op == ">=":
        where = f"{pcol} IS NULL OR {ccol} < {pcol}"
    elif o.op == "=":
        where = f"{ccol} IS DISTINCT FROM {pcol}"
    else:  # month
        where = f"CAST(TO_CHAR({ccol}, 'MM') AS INT) <> {pcol}"
    sql = (
        f"SELECT {_select(f'{c}.{child.key}', f'{c}.{o.on[0]}', ccol, f'{pcol} AS parent_{o.parent_column}')}\n"
        f"FROM {child.name} {c}\nJOIN {parent.name} {p} ON {p}.{o.on[1]} = {c}.{o.on[0]}\nWHERE {where}"
    )
    return _rule(
        "DATE",
        child,
        c,
        o.title,
        f"{child.title}的{_label(o.column)}应与其{parent.title}的{_label(o.parent_column)}相符。",
        o.source,
        sql,
        labels={f"parent_{o.parent_column}": f"{parent.title}的{_label(o.parent_column)}"},
        evidence=[o.column, f"parent_{o.parent_column}"],
        advice="核对业务单据的日期先后。",
    )


def code_rule(code: m.Code) -> dict:
    t = m.TABLES[code.table]
    a, col = t.alias, f"{t.alias}.{code.column}"
    element = m.ELEMENT_TITLES[code.element]
    leaf = " OR e.is_leaf <> 1" if code.leaf else ""

    def where_missing(condition: str) -> str:
        return f"WHERE {col} IS NOT NULL AND ({condition})" if code.nullable else f"WHERE {condition}"

    if t.year:
        # The set holds several years: a code unknown in every year is not in the set; its leaf flag is the one of
        # the row's own year (a code of another year only is reported by the validity rules).
        sql = (
            f"SELECT {_select(f'{a}.{t.key}', col, f'{a}.{m.YEAR}', 'e.is_leaf')}\nFROM {t.name} {a}\n"
            f"LEFT JOIN {code.element} e ON e.code = {col} AND e.fiscal_year = {a}.{m.YEAR}\n"
            f"LEFT JOIN (SELECT DISTINCT code FROM {code.element}) s ON s.code = {col}\n"
            + where_missing(f"s.code IS NULL{leaf}")
        )
        where = "任一年度值集"
    else:
        sql = (
            f"SELECT {_select(f'{a}.{t.key}', col, 'e.is_leaf')}\nFROM {t.name} {a}\n"
            f"LEFT JOIN {code.element} e ON e.code = {col}\n" + where_missing(f"e.code IS NULL{leaf}")
        )
        where = ""
    return _rule(
        "CODE",
        t,
        a,
        f"{t.title}的{element}不在值集内{'或非末级' if code.leaf else ''}",
        f"{t.title}的{_label(code.column)}{'不为空时' if code.nullable else ''}应为 {code.element} 中的代码"
        + (f"（{where}）" if where else "")
        + ("，且在本行预算年度的值集中为末级" if code.leaf and t.year else "，且为末级" if code.leaf else "")
        + "。",
        code.source,
        sql,
        evidence=[code.column, "is_leaf"],
        advice="按部标值集更正代码；业务数据只能挂末级代码。",
        severity="紧急",
    )


def code_tree_rule(tree: m.CodeTree) -> dict:
    name = tree.table
    t = m.Table(name, m.ELEMENT_TITLES[name], "code", "e", "基础信息", region=False, year=False)
    # Each fiscal year's set is a tree of its own: parent and children are looked up in the same year.
    sql = (
        f"SELECT e.code, e.fiscal_year, e.parent_code, e.is_leaf, e.level_no, pa.level_no AS parent_level,"
        f" k.n AS children\n"
        f"FROM {name} e\nLEFT JOIN {name} pa ON pa.code = e.parent_code AND pa.fiscal_year = e.fiscal_year\n"
        f"LEFT JOIN (SELECT parent_code, fiscal_year, COUNT(*) AS n FROM {name} WHERE parent_code IS NOT NULL"
        f" GROUP BY parent_code, fiscal_year) k"
        f" ON k.parent_code = e.code AND k.fiscal_year = e.fiscal_year\n"
        "WHERE (e.parent_code IS NOT NULL AND pa.code IS NULL)\n"
        "   OR (e.parent_code IS NULL AND e.level_no <> 1)\n"
        "   OR (pa.code IS NOT NULL AND e.level_no <> pa.level_no + 1)\n"
        "   OR (e.is_leaf = 1 AND k.n IS NOT NULL)\n"
        "   OR (e.is_leaf <> 1 AND k.n IS NULL)"
    )
    return _rule(
        "CODE",
        t,
        "e",
        f"{t.title}代码树的上级、末级标识或级次不一致",
        f"{t.title}（每个年度的值集各自成树）的上级代码应存在于同一年度，末级标识应与有无下级一致，级次应为上级级次加一。",
        tree.source,
        sql,
        labels={"parent_level": "上级级次", "children": "下级个数"},
        evidence=["fiscal_year", "parent_code", "is_leaf", "level_no", "parent_level", "children"],
        advice="按部标值集修正代码树（上级、末级标识、级次），再下发。",
    )


def code_valid_rule(v: m.CodeValid) -> dict:
    t = m.TABLES[v.table]
    a, col = t.alias, f"{t.alias}.{v.column}"
    element = m.ELEMENT_TITLES[v.element]
    # The element row of the row's own year; a code absent from that year's set but present in last year's was
    # retired this year (CodeRetired); one present only in other years is of another year (reported here).
    conditions = ["e.is_enabled <> 1", "e.code IS NULL AND o.code IS NULL AND s.code IS NOT NULL"]
    outputs = [f"{a}.{t.key}", col, f"{a}.{m.YEAR}", "e.is_enabled", "s.code_year"]
    what = "已停用、不属于本年度"
    if v.date:
        conditions.append(f"{a}.{v.date} < e.start_date OR {a}.{v.date} > e.end_date")
        outputs += [f"{a}.{v.date}", "e.start_date", "e.end_date"]
        what += "或使用日期不在有效期内"
    sql = (
        f"SELECT {_select(*outputs)}\nFROM {t.name} {a}\n"
        f"LEFT JOIN {v.element} e ON e.code = {col} AND e.fiscal_year = {a}.{m.YEAR}\n"
        f"LEFT JOIN {v.element} o ON o.code = {col} AND o.fiscal_year = {a}.{m.YEAR} - 1\n"
        f"LEFT JOIN (SELECT code, MAX(fiscal_year) AS code_year FROM {v.element} GROUP BY code) s ON s.code = {col}\n"
        f"WHERE {_where(conditions)}"
    )
    return _rule(
        "CODE",
        t,
        a,
        f"{t.title}的{element}在使用日不可用",
        f"{t.title}的{_label(v.column)}应为 {v.element} 中本行预算年度值集里启用"
        + ("、且在使用日期处于有效期内的代码" if v.date else "的代码")
        + "；只出现在其他年度（上年以外）值集中的代码不能使用。",
        v.source,
        sql,
        labels={
            "is_enabled": "代码启用标识",
            "code_year": "值集中该代码的最近年度",
            "start_date": "代码有效期起",
            "end_date": "代码有效期止",
        },
        evidence=[c.rsplit(" AS ", 1)[-1].rsplit(".", 1)[-1] for c in outputs[1:]],
        advice=f"代码{what}：改用本年度启用且在有效期内的代码，或核对值集的启停与有效期设置。",
        severity="紧急",
    )


def account_kind_rule(k: m.AccountKind) -> dict:
    t = m.TABLES["pay_voucher"]
    denied = " OR ".join(f"SUBSTR(p.dep_bgt_eco_code, 1, {len(d)}) = '{d}'" for d in k.denied)
    sql = (
        "SELECT p.pay_app_id, p.payee_acct_no, p.payee_acct_name, y.acct_kind, p.dep_bgt_eco_code, p.pay_amt\n"
        "FROM pay_voucher p\nJOIN pay_payee_info y ON y.payee_acct_no = p.payee_acct_no\n"
        f"WHERE y.acct_kind = '{k.kind}' AND ({denied})"
    )
    return _rule(
        "CODE",
        t,
        "p",
        k.title,
        f"收款账户性质为{k.kind}的支付，其部门预算经济分类不能以 {'、'.join(k.denied)} 开头。",
        k.source,
        sql,
        amount="pay_amt",
        labels={"acct_kind": "收款账户性质"},
        evidence=["payee_acct_no", "payee_acct_name", "acct_kind", "dep_bgt_eco_code"],
        advice="核对收款人：购置类支出应付给供应商的单位账户；确属个人垫付的，按报销流程办理。",
        severity="重大",
    )


def pay_out_only_rule(o: m.PayOutOnly) -> dict:
    t, acct = m.TABLES["pay_voucher"], m.TABLES[o.table]
    sql = (
        f"SELECT p.pay_app_id, p.payee_acct_no, p.payee_acct_name, w.{o.kind_column}, p.pay_amt\n"
        f"FROM pay_voucher p\nJOIN {o.table} w ON w.{o.column} = p.payee_acct_no\n"
        f"WHERE w.{o.kind_column} = '{o.kind}'"
    )
    return _rule(
        "CODE",
        t,
        "p",
        o.title,
        f"{o.kind}账户只付不收：支付申请的收款账号不能是{acct.title}中{_label(o.kind_column)}为{o.kind}的账户。",
        o.source,
        sql,
        amount="pay_amt",
        evidence=["payee_acct_no", "payee_acct_name", o.kind_column],
        advice="核对收款人：零余额账户只用于支付，收款应为供应商、个人或单位的实有资金账户；从收款人信息中删除该账户。",
        severity="重大",
    )


def enum_rule(e: m.Enum) -> dict:
    t = m.TABLES[e.table]
    a = t.alias
    values = ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in e.values)
    sql = f"SELECT {_select(f'{a}.{t.key}', f'{a}.{e.column}')}\nFROM {t.name} {a}\nWHERE {a}.{e.column} NOT IN ({values})"
    return _rule(
        "CODE",
        t,
        a,
        e.title,
        f"{t.title}的{e.label or _label(e.column)}只能取 {values}。",
        e.source,
        sql,
        labels={e.column: e.label} if e.label else {},
        evidence=[e.column],
        advice="更正为规定的取值。",
    )


def _count_sql(template: str, n: str, alias: str) -> str:
    return re.sub(r"\bn\b", n, template).format(p=alias)


def flow_rule(f: m.Flow) -> dict:
    parent, child = m.TABLES[f.parent], m.TABLES[f.child]
    p = parent.alias
    pcol, ccol = f.on
    n = "COALESCE(d.n, 0)"
    summed = f"({f.sign}) * {f.sum_child}" if f.sign else f.sum_child
    aggregates = ["COUNT(*) AS n"] + ([f"SUM({summed}) AS s"] if f.sum_child else [])
    conditions = []
    if f.count:
        conditions.append(f"NOT ({_count_sql(f.count, n, p)})")
    child_sum = "COALESCE(d.s, 0) - COALESCE(r.s, 0)" if f.less else "COALESCE(d.s, 0)"
    if f.sum_child:
        s, col = f"ROUND({child_sum}, 2)", f"ROUND({p}.{f.sum_parent}, 2)"
        op = {"=": "<>", "<=": ">", ">=": "<"}[f.sum_op]
        conditions.append(f"{s} {op} {col}")
    where = _where(conditions)
    if f.when:
        where = f"{_count_sql(f.when, n, p)} AND ({where})"
    outputs = [f"{p}.{parent.key}", *(f"{p}.{e}" for e in f.evidence), f"{n} AS child_count"]
    if f.sum_child:
        outputs.append(f"{child_sum} AS child_sum")
    less = f"LEFT JOIN ({f.less}) r ON r.k = {p}.{pcol}\n" if f.less else ""
    sql = (
        f"SELECT {_select(*outputs)}\nFROM {parent.name} {p}\n"
        f"LEFT JOIN (SELECT {ccol} AS k, {', '.join(aggregates)} FROM {child.name}"
        f" WHERE {ccol} IS NOT NULL GROUP BY {ccol}) d ON d.k = {p}.{pcol}\n{less}WHERE {where}"
    )
    parts = []
    if f.count:
        parts.append(f"对应的{child.title}笔数应满足 {_words(f.count)}")
    if f.sum_child:
        signed = "（按类型计正负）" if f.sign else ""
        less_words = f"减去{f.less_title}" if f.less else ""
        parts.append(
            f"{child.title}的{_label(f.sum_child)}{signed}之和{less_words} {f.sum_op} {parent.title}的{_label(f.sum_parent)}"
        )
    return _rule(
        "FLOW",
        parent,
        p,
        f.title,
        f"每张{parent.title}"
        + (f"（{_words(f.when, f'{child.title}笔数')} 的）" if f.when else "")
        + f"：{'；'.join(parts)}。",
        f.source,
        sql,
        labels={
            "child_count": f"{child.title}笔数",
            "child_sum": f"{child.title}{_label(f.sum_child)}合计"
            + (f"（减去{f.less_title}）" if f.less else ""),
        },
        evidence=[*f.evidence, "child_count", *(["child_sum"] if f.sum_child else [])],
        advice=f"逐笔核对{parent.title}与{child.title}，查明缺失、重复或拆分的记录。",
    )


def plan_control_rules() -> list[tuple[str, object, dict]]:
    source = m.PlanControl().source
    pay, plan = m.TABLES["pay_voucher"], m.TABLES["pay_plan_voucher"]
    first = _rule(
        "FLOW",
        pay,
        "p",
        "计划控制的指标支付未挂用款计划，或仅指标控制的支付挂了计划",
        "指标为计划控制（双控）时，其支付申请应对应用款计划；仅指标控制时不应对应计划。",
        source,
        "SELECT p.pay_app_id, p.bgt_id, p.plan_id, b.is_plan_control, p.pay_amt\nFROM pay_voucher p\n"
        "JOIN ba_bgt_info b ON b.bgt_id = p.bgt_id\n"
        "WHERE (b.is_plan_control = 1 AND p.plan_id IS NULL)\n   OR (b.is_plan_control <> 1 AND p.plan_id IS NOT NULL)",
        amount="pay_amt",
        evidence=["plan_id", "is_plan_control"],
        advice="按指标的控制方式补挂或撤销用款计划。",
    )
    second = _rule(
        "FLOW",
        plan,
        "pl",
        "用款计划所属的指标不是计划控制",
        "只有计划控制（双控）的指标才编制用款计划。",
        source,
        "SELECT pl.plan_id, pl.bgt_id, b.is_plan_control, pl.plan_amt\nFROM pay_plan_voucher pl\n"
        "JOIN ba_bgt_info b ON b.bgt_id = pl.bgt_id\nWHERE b.is_plan_control <> 1",
        amount="plan_amt",
        evidence=["bgt_id", "is_plan_control"],
        advice="核对指标的控制方式或撤销多余的计划。",
    )
    return [("FLOW", m.PlanControl(), first), ("FLOW", m.PlanControl(), second)]


def carry_year_rule() -> tuple[str, object, dict]:
    co = m.TABLES["ba_bgt_carryovers"]
    data = _rule(
        "DATE",
        co,
        "co",
        "结转年度不是来源指标的下一年度",
        "结转结余记入来源指标年度的下一年度。",
        m.CarryYear().source,
        "SELECT co.carry_id, co.ori_bgt_id, co.next_year, b.fiscal_year\nFROM ba_bgt_carryovers co\n"
        "JOIN ba_bgt_info b ON b.bgt_id = co.ori_bgt_id\nWHERE co.next_year <> b.fiscal_year + 1",
        evidence=["next_year", "fiscal_year"],
        advice="更正结转年度。",
    )
    return ("DATE", m.CarryYear(), data)


def code_retired_rule(v: m.CodeRetired) -> dict:
    t = m.TABLES[v.table]
    a, col = t.alias, f"{t.alias}.{v.column}"
    element = m.ELEMENT_TITLES[v.element]
    sql = (
        f"SELECT {_select(f'{a}.{t.key}', col, f'{a}.{m.YEAR}', 'o.name AS code_name')}\nFROM {t.name} {a}\n"
        f"JOIN {v.element} o ON o.code = {col} AND o.fiscal_year = {a}.{m.YEAR} - 1\n"
        f"LEFT JOIN {v.element} e ON e.code = {col} AND e.fiscal_year = {a}.{m.YEAR}\nWHERE e.code IS NULL"
    )
    return _rule(
        "CODE",
        t,
        a,
        f"{t.title}使用本年已取消的{element}",
        f"{t.title}的{_label(v.column)}在上一年度的 {v.element} 值集中有、在本行预算年度的值集中已没有：代码本年已取消。",
        v.source,
        sql,
        labels={"code_name": "代码名称（上年值集）"},
        evidence=[v.column, m.YEAR, "code_name"],
        advice="按本年度值集的新旧代码对照改用本年代码（常见于沿用上年指标或结转时未转换代码）。",
        severity="紧急",
    )


def cover_rule(c: m.Cover) -> dict:
    child, parent = m.TABLES[c.child], m.TABLES[c.parent]
    a = child.alias
    match = " AND ".join(f"x.{col} = {a}.{col}" for col in c.match)
    sql = (
        f"SELECT {_select(f'{a}.{child.key}', f'{a}.{c.column}', *(f'{a}.{col}' for col in c.match))}\n"
        f"FROM {child.name} {a}\nWHERE {a}.{c.column} IS NOT NULL AND NOT EXISTS (\n"
        f"  SELECT 1 FROM {parent.name} x WHERE x.{c.column} = {a}.{c.column} AND {match})"
    )
    names = "、".join(_label(col) for col in c.match)
    return _rule(
        "FLOW",
        child,
        a,
        c.title,
        f"{child.title}所用{_label(c.column)}的{parent.title}中，应有一条{names}都与{child.title}相同。",
        c.source,
        sql,
        evidence=[c.column, *c.match],
        advice=f"核对{child.title}的要素与所用计划的明细；按明细调整要素，或先补报对应要素的计划明细。",
    )


def not_below_paid_rule(c: m.NotBelowPaid) -> dict:
    t = m.TABLES["ba_bgt_adjust"]
    reduction = "adjust_kind = '调减' OR transfer_dir = '调出'"
    sql = (
        "SELECT aj.adjust_id, aj.bgt_id, aj.adjust_kind, aj.transfer_dir, aj.adjust_amt, aj.adjust_date,"
        " b.ori_amount, COALESCE(a.net, 0) AS net_adjusted, COALESCE(q.paid, 0) AS paid_by_date,"
        " b.ori_amount + COALESCE(a.net, 0) - COALESCE(q.paid, 0) AS available_after\n"
        "FROM ba_bgt_adjust aj\nJOIN ba_bgt_info b ON b.bgt_id = aj.bgt_id\n"
        "LEFT JOIN (SELECT x.adjust_id AS k,"
        " SUM(CASE WHEN y.adjust_kind = '调减' OR y.transfer_dir = '调出' THEN -y.adjust_amt ELSE y.adjust_amt END) AS net"
        f" FROM ba_bgt_adjust x JOIN ba_bgt_adjust y ON y.bgt_id = x.bgt_id AND y.adjust_date <= x.adjust_date"
        f" WHERE x.{reduction.replace(' OR ', ' OR x.')} GROUP BY x.adjust_id) a ON a.k = aj.adjust_id\n"
        "LEFT JOIN (SELECT x.adjust_id AS k, SUM(pv.pay_amt) AS paid"
        " FROM ba_bgt_adjust x JOIN pay_voucher pv ON pv.bgt_id = x.bgt_id AND pv.pay_app_date <= x.adjust_date"
        f" WHERE x.{reduction.replace(' OR ', ' OR x.')} GROUP BY x.adjust_id) q ON q.k = aj.adjust_id\n"
        f"WHERE (aj.{reduction.replace(' OR ', ' OR aj.')})\n"
        "  AND ROUND(b.ori_amount + COALESCE(a.net, 0) - COALESCE(q.paid, 0), 2) < 0"
    )
    return _rule(
        "FLOW",
        t,
        "aj",
        "调减后指标低于调减日已支付的金额",
        "指标调减（含调剂调出）后，截至调整日期的指标金额（年初数加截至当日的各项调整）不能少于截至当日已申请支付的金额。",
        c.source,
        sql,
        amount="adjust_amt",
        evidence=["adjust_kind", "transfer_dir", "adjust_amt", "ori_amount", "net_adjusted", "paid_by_date"],
        advice="核对调减文件与支付进度：调减不能超过指标当时的可用余额；确需调减的，先核减或退回相应支付。",
        severity="重大",
    )


RULE_FOR = {
    m.Ref: ("REF", ref_rule),
    m.Unique: ("KEY", unique_rule),
    m.Amount: ("AMT", amount_rule),
    m.RowRelation: ("AMT", relation_rule),
    m.DateRule: ("DATE", date_rule),
    m.DateOrder: ("DATE", date_order_rule),
    m.Code: ("CODE", code_rule),
    m.CodeTree: ("CODE", code_tree_rule),
    m.Enum: ("CODE", enum_rule),
    m.Flow: ("FLOW", flow_rule),
    m.CodeValid: ("CODE", code_valid_rule),
    m.AccountKind: ("CODE", account_kind_rule),
    m.PayOutOnly: ("CODE", pay_out_only_rule),
    m.CodeRetired: ("CODE", code_retired_rule),
    m.Cover: ("FLOW", cover_rule),
    m.NotBelowPaid: ("FLOW", not_below_paid_rule),
}


def rule_for(constraint) -> tuple[str, dict]:
    """The kind and rule data of one constraint, by its class."""
    kind, make = RULE_FOR[type(constraint)]
    return kind, make(constraint)


def generate(model: m.Model = m.MODEL) -> list[Generated]:
    """Every rule of the model, numbered per kind in the model's order."""
    items: list[tuple[str, object, dict]] = []
    items += [("REF", r, ref_rule(r)) for r in model.refs]
    items += [("KEY", u, unique_rule(u)) for u in model.uniques]
    items += [("AMT", a, amount_rule(a)) for a in model.amounts]
    items += [("AMT", r, relation_rule(r)) for r in model.relations]
    items += [("DATE", d, date_rule(d)) for d in model.dates]
    items += [("DATE", o, date_order_rule(o)) for o in model.date_orders]
    items.append(carry_year_rule())
    items += [("CODE", c, code_rule(c)) for c in model.codes]
    items += [("CODE", t, code_tree_rule(t)) for t in model.code_trees]
    items += [("CODE", e, enum_rule(e)) for e in model.enums]
    items += [("FLOW", f, flow_rule(f)) for f in model.flows]
    items += plan_control_rules()
    # Appended after every earlier rule of their kind, so the numbers of the existing rules stay the same.
    items += [("CODE", v, code_valid_rule(v)) for v in model.code_validity]
    items += [("CODE", k, account_kind_rule(k)) for k in model.account_kinds]
    items += [("CODE", o, pay_out_only_rule(o)) for o in model.pay_out_only]
    for kind, constraints in model.sections:
        for c in constraints:
            own_kind, data = rule_for(c)
            items.append((kind or own_kind, c, data))
    counters: dict[str, int] = {}
    result = []
    for kind, constraint, data in items:
        counters[kind] = counters.get(kind, 0) + 1
        rule_id = f"GEN-{kind}-{counters[kind]:03d}"
        result.append(Generated(rule_id, kind, constraint, {"id": rule_id, **data}))
    return result


# --- files ------------------------------------------------------------------------------------------------------

FIELDS = (
    "id",
    "title",
    "description",
    "severity",
    "module",
    "key",
    "amount",
    "scope",
    "params",
    "labels",
    "evidence",
    "advice",
)


def _dump(key: str, value) -> str:
    if isinstance(value, list):  # key: [a, b]; mappings in block style
        inner = yaml.safe_dump(value, allow_unicode=True, width=10_000, default_flow_style=True)
        return f"{key}: {inner.strip()}"
    text = yaml.safe_dump(
        {key: value}, allow_unicode=True, width=10_000, sort_keys=False, default_flow_style=False
    )
    return text.rstrip("\n")


def render(g: Generated) -> str:
    lines = [
        "# 由 checks/schema/model.py 生成，请勿手工修改：修改模型后执行 caiwei checks generate-rules",
        f"# 约束来源：{g.data['_source']}",
    ]
    for key in FIELDS:
        if key in g.data and g.data[key] not in (None, "", [], {}):
            lines.append(_dump(key, g.data[key]))
    lines.append("sql: |")
    lines += [f"  {line}" if line else "" for line in g.data["sql"].splitlines()]
    return "\n".join(lines) + "\n"


def files(model: m.Model = m.MODEL) -> dict[str, str]:
    """File name → content, pack.yaml included."""
    out = {
        "pack.yaml": _dump("title", PACK_META["title"])
        + "\n"
        + _dump("description", PACK_META["description"])
        + "\n"
        + _dump("order", PACK_META["order"])
        + "\n"
    }
    for g in generate(model):
        out[f"{g.id.lower()}.yaml"] = render(g)
    return out


def write(folder: Path | None = None) -> list[str]:
    """Write the pack; remove generated files the model no longer has. Returns the files changed."""
    folder = folder or PACK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    wanted = files()
    changed = []
    for name, text in wanted.items():
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(name)
    for path in folder.glob("*.yaml"):
        if path.name not in wanted:
            path.unlink()
            changed.append(path.name)
    return sorted(changed)


def check(folder: Path | None = None) -> list[str]:
    """The files that differ from what the model generates (missing, changed or extra)."""
    folder = folder or PACK_DIR
    wanted = files()
    differ = [
        n
        for n, t in wanted.items()
        if not (folder / n).exists() or (folder / n).read_text(encoding="utf-8") != t
    ]
    differ += [p.name for p in folder.glob("*.yaml") if p.name not in wanted] if folder.exists() else []
    return sorted(differ)
