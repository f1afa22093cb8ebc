"""本地规则的校验: a rule written by O&M staff, in the YAML of a shipped rule, judged before it is saved.

Plain Python (no Django). A rule file is refused, with the field or line named in Chinese, unless
- it is YAML with the shipped fields (id, title, severity, module, key, sql …) and nothing else (``version`` is
  the export's metadata and is ignored);
- its SQL parses (sqlglot, PostgreSQL dialect) as exactly one read-only SELECT: no INSERT/UPDATE/DELETE/DDL,
  no ``SELECT … INTO``, no ``FOR UPDATE``, no data-changing statement inside a CTE, no second statement;
- it reads only the logical tables of the sandbox schema (sandbox/schema.py), never a schema-qualified table or a
  table function;
- every function it calls is in ``ALLOWED_FUNCTIONS`` (aggregates, arithmetic, string, date, CASE, COALESCE …);
- its key, amount and evidence columns are in the output, and every ``:param`` is declared.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import sqlglot
import yaml
from sqlglot import exp

from .engine import (
    REQUIRED,
    RULES_DIR,
    SCOPES,
    SEVERITIES,
    SOURCE_DIALECT,
    Rule,
    RuleError,
    _params,
    shipped_packs,
)

LOCAL_PACK = "local"
LOCAL_PACK_TITLE = "本地规则"
FIELDS = (
    "id",
    "title",
    "description",
    "severity",
    "module",
    "key",
    "amount",
    "amount_title",
    "evidence",
    "labels",
    "scope",
    "advice",
    "sql",
    "params",
)
META_KEY = "version"  # the export's version metadata: ignored on import
MARKER = "# ---- 以下为导出时附加的版本信息，导入时忽略 ----"
RULE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{1,29}$")

# Functions a rule may call, by sqlglot's name for them (an unknown function is sqlglot's Anonymous, named as written).
ALLOWED_FUNCTIONS = frozenset(
    {
        # logic (sqlglot counts AND/OR as functions)
        "AND",
        "OR",
        "XOR",
        # aggregates
        "COUNT",
        "COUNT_IF",
        "SUM",
        "AVG",
        "MIN",
        "MAX",
        "STDDEV",
        "STDDEV_POP",
        "STDDEV_SAMP",
        "VARIANCE",
        "VARIANCE_POP",
        "GROUP_CONCAT",
        "STRING_AGG",
        "BOOL_AND",
        "BOOL_OR",
        "LOGICAL_AND",
        "LOGICAL_OR",
        # window functions
        "ROW_NUMBER",
        "RANK",
        "DENSE_RANK",
        "NTILE",
        "LAG",
        "LEAD",
        "FIRST_VALUE",
        "LAST_VALUE",
        # conditionals and types
        "CASE",
        "IF",
        "COALESCE",
        "NULLIF",
        "GREATEST",
        "LEAST",
        "CAST",
        "TRY_CAST",
        # arithmetic
        "ABS",
        "ROUND",
        "CEIL",
        "FLOOR",
        "MOD",
        "POW",
        "POWER",
        "SIGN",
        "SQRT",
        "TRUNC",
        "LN",
        "LOG",
        "EXP",
        # strings
        "LENGTH",
        "CHAR_LENGTH",
        "UPPER",
        "LOWER",
        "TRIM",
        "LTRIM",
        "RTRIM",
        "SUBSTRING",
        "SUBSTR",
        "STR_POSITION",
        "CONCAT",
        "CONCAT_WS",
        "REPLACE",
        "TRANSLATE",
        "LEFT",
        "RIGHT",
        "LPAD",
        "RPAD",
        "PAD",
        "INITCAP",
        "REVERSE",
        "REGEXP_LIKE",
        "REGEXP_REPLACE",
        "REGEXP_EXTRACT",
        "SPLIT_PART",
        "TO_CHAR",
        "TO_NUMBER",
        "ASCII",
        "CHR",
        # dates
        "CURRENT_DATE",
        "CURRENT_TIMESTAMP",
        "EXTRACT",
        "DATE_TRUNC",
        "TIMESTAMP_TRUNC",
        "DATE_ADD",
        "DATE_SUB",
        "DATE_DIFF",
        "DATEDIFF",
        "TS_OR_DS_ADD",
        "TS_OR_DS_TO_DATE",
        "STR_TO_DATE",
        "STR_TO_TIME",
        "TIME_TO_STR",
        "TO_DATE",
        "DATE",
        "YEAR",
        "MONTH",
        "DAY",
        "LAST_DAY",
        "MAKE_DATE",
        "DATE_FROM_PARTS",
    }
)
_FORBIDDEN_NAMES = (
    "Insert",
    "Update",
    "Delete",
    "Create",
    "Drop",
    "Alter",
    "Command",
    "Merge",
    "TruncateTable",
    "Copy",
    "Into",
    "Lock",
    "Set",
    "Use",
    "Grant",
    "Revoke",
)
FORBIDDEN = tuple(getattr(exp, n) for n in _FORBIDDEN_NAMES if hasattr(exp, n))
WHAT = {
    "Insert": "INSERT",
    "Update": "UPDATE",
    "Delete": "DELETE",
    "Create": "CREATE",
    "Drop": "DROP",
    "Alter": "ALTER",
    "Merge": "MERGE",
    "TruncateTable": "TRUNCATE",
    "Copy": "COPY",
    "Into": "SELECT … INTO",
    "Lock": "FOR UPDATE / FOR SHARE",
}


class RuleInvalid(RuleError):
    """A rule file that may not be saved: every problem, each naming its field or line."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("；".join(self.problems))


def logical_tables() -> dict[str, set[str]]:
    from .runner import logical_columns

    return logical_columns()


def _key_lines(text: str) -> dict[str, int]:
    """The line of each top-level key (1-based), for messages."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}


def strip_meta(text: str) -> str:
    """The rule itself: an exported file without the version block appended after MARKER."""
    head, sep, _ = text.partition(MARKER)
    return head.rstrip() + "\n" if sep else text


def load_data(text: str) -> dict:
    """The YAML of a rule file as a dict, or RuleInvalid naming the line."""
    if not text or not text.strip():
        raise RuleInvalid(["规则文件为空"])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Where the broken construct starts (an unclosed bracket) rather than where the parser gave up.
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        where = f"第 {mark.line + 1} 行第 {mark.column + 1} 列：" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RuleInvalid([f"{where}YAML 格式错误（{problem}）"]) from exc
    if not isinstance(data, dict):
        raise RuleInvalid(["规则文件应为“字段: 值”的键值对（id、title、sql ……）"])
    return data


def check_text(text: str) -> Rule:
    """The rule of a file, judged in full; RuleInvalid lists what is wrong."""
    text = strip_meta(text)
    data = load_data(text)
    lines = _key_lines(text)

    def at(name: str) -> str:
        return f"第 {lines[name]} 行 " if name in lines else ""

    problems: list[str] = []
    unknown = sorted(str(k) for k in data if k not in FIELDS and k != META_KEY)
    if unknown:
        problems.append(
            "；".join(f"{at(k)}未知字段 {k}" for k in unknown) + f"（可用字段：{'、'.join(FIELDS)}）"
        )
    missing = [k for k in REQUIRED if not data.get(k)]
    if missing:
        problems.append(f"缺少字段 {'、'.join(missing)}")
        raise RuleInvalid(problems)
    for name in (
        "id",
        "title",
        "severity",
        "module",
        "sql",
        "description",
        "advice",
        "amount",
        "amount_title",
    ):
        if name in data and data[name] is not None and not isinstance(data[name], str | int):
            problems.append(f"{at(name)}字段 {name} 应为文本")
    if problems:
        raise RuleInvalid(problems)
    rule_id = str(data["id"]).strip()
    if not RULE_ID.match(rule_id):
        problems.append(f"{at('id')}字段 id：“{rule_id}”应以字母开头，只含字母、数字、-、_，2～30 个字符")
    if len(str(data["title"])) > 100:
        problems.append(f"{at('title')}字段 title：不超过 100 个字")
    if len(str(data["module"])) > 20:
        problems.append(f"{at('module')}字段 module：不超过 20 个字")
    if data["severity"] not in SEVERITIES:
        problems.append(f"{at('severity')}字段 severity：“{data['severity']}”应为 {'、'.join(SEVERITIES)}")
    key = data["key"] if isinstance(data["key"], list) else [data["key"]]
    if not all(isinstance(k, str) and k for k in key):
        problems.append(f"{at('key')}字段 key：应为输出列名或列名的列表")
    evidence = data.get("evidence") or []
    if not isinstance(evidence, list) or not all(isinstance(c, str) for c in evidence):
        problems.append(f"{at('evidence')}字段 evidence：应为输出列名的列表")
        evidence = []
    labels = data.get("labels") or {}
    if not isinstance(labels, dict):
        problems.append(f"{at('labels')}字段 labels：应为“列名: 中文名”的键值对")
        labels = {}
    scope = data.get("scope") or {}
    if not isinstance(scope, dict) or set(scope) - set(SCOPES):
        problems.append(
            f"{at('scope')}字段 scope：只能包含 {'、'.join(SCOPES)}，值为列名（如 v.mof_div_code）"
        )
        scope = {}
    params = ()
    try:
        params = _params(data.get("params"), f"{at('params')}字段 params")
    except (RuleError, TypeError) as exc:
        problems.append(
            str(exc) if isinstance(exc, RuleError) else f"{at('params')}字段 params：设置有误（{exc}）"
        )
    amount = str(data.get("amount") or "")
    sql = str(data["sql"]).strip().rstrip(";").strip()
    sql_problems = check_sql(sql, [str(k) for k in key], amount, list(evidence), {p.name for p in params})
    problems += [f"{at('sql')}字段 sql：{p}" for p in sql_problems]
    for name, column in scope.items():
        try:
            node = sqlglot.parse_one(str(column), read=SOURCE_DIALECT)
        except sqlglot.errors.ParseError:
            node = None
        if not isinstance(node, exp.Column):
            problems.append(f"{at('scope')}字段 scope.{name}：“{column}”应为列名（如 v.mof_div_code）")
    if problems:
        raise RuleInvalid(problems)
    return Rule(
        id=rule_id,
        title=str(data["title"]),
        severity=data["severity"],
        module=str(data["module"]),
        key=tuple(str(k) for k in key),
        sql=sql,
        description=str(data.get("description") or ""),
        advice=str(data.get("advice") or ""),
        pack=LOCAL_PACK,
        params=params,
        scope={k: str(v) for k, v in scope.items()},
        amount=amount,
        labels={str(k): str(v) for k, v in labels.items()},
        evidence=tuple(evidence),
        amount_title=str(data.get("amount_title") or ""),
    )


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    return node.sql_name().upper()


def check_sql(
    sql: str, key: list[str], amount: str = "", evidence: list[str] = (), declared: set[str] = ()
) -> list[str]:
    """What is wrong with a rule's SQL (empty when nothing is)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=SOURCE_DIALECT) if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if getattr(exc, "errors", None) else {}
        where = f"第 {first['line']} 行第 {first['col']} 列附近：" if first.get("line") else ""
        return [f"SQL 无法解析（{where}{first.get('description') or exc}）"]
    except sqlglot.errors.SqlglotError as exc:
        return [f"SQL 无法解析（{exc}）"]
    if len(statements) != 1:
        return [f"只能有一条 SELECT 语句（现有 {len(statements)} 条，请去掉分号分隔的其他语句）"]
    tree = statements[0]
    problems = []
    forbidden = sorted(
        {WHAT.get(type(n).__name__, type(n).__name__.upper()) for n in tree.find_all(*FORBIDDEN)}
    )
    if forbidden:
        problems.append(f"只允许只读查询，不能含 {'、'.join(forbidden)}")
    if not isinstance(tree, exp.Select):
        problems.append("应为一条 SELECT 语句")
        return problems
    functions = sorted({_function_name(f) for f in tree.find_all(exp.Func)} - ALLOWED_FUNCTIONS)
    if functions:
        problems.append(
            f"不允许的函数 {'、'.join(functions)}（只可用聚合、算术、字符串、日期、CASE、COALESCE 等，见 docs/checks.md）"
        )
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    known = logical_tables()
    unknown_tables, qualified = set(), set()
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table function: its name is judged with the functions above
        name = table.name.lower()
        if table.args.get("db") or table.args.get("catalog"):
            qualified.add(table.sql(dialect=SOURCE_DIALECT))
        elif name not in known and name not in ctes:
            unknown_tables.add(table.name)
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            problems.append("FROM 中不能调用函数（表函数），只能使用逻辑表")
            break
    if qualified:
        problems.append(f"不能指定模式或库名：{'、'.join(sorted(qualified))}（请写逻辑表名）")
    if unknown_tables:
        problems.append(
            f"未知的表 {'、'.join(sorted(unknown_tables))}（只能查询演练库的逻辑表，见 DOMAIN.md）"
        )
    outputs = set(tree.named_selects)
    if "*" in outputs or any(
        isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
        for e in tree.expressions
    ):
        problems.append("输出列不能用 *，请逐列写出（以便核对主键列）")
    else:
        absent = [k for k in [*key, amount] if k and k not in outputs]
        if absent:
            problems.append(f"主键或金额列 {'、'.join(absent)} 不在查询结果的列中")
        absent = [c for c in evidence if c not in outputs]
        if absent:
            problems.append(f"证据列 {'、'.join(absent)} 不在查询结果的列中")
    placeholders = {p.name for p in tree.find_all(exp.Placeholder)}
    undeclared = sorted(placeholders - set(declared))
    if undeclared:
        problems.append(f"参数 {'、'.join(undeclared)} 未在 params 中声明")
    return problems


# --- shipped rules as the start of a local copy -------------------------------------------------------------------


def shipped_file(rule_id: str):
    """The shipped rule file of ``rule_id`` (a Path), or None."""
    for name, pack in shipped_packs().items():
        if any(r.id == rule_id for r in pack.rules):
            for path in sorted((RULES_DIR / name).glob("*.yaml")):
                if path.name == "pack.yaml":
                    continue
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
                if str(data.get("id")) == rule_id:
                    return path
    return None


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shipped_hash(rule_id: str) -> str:
    path = shipped_file(rule_id)
    return text_hash(path.read_text(encoding="utf-8")) if path else ""


def copy_of_shipped(rule_id: str, new_id: str) -> str:
    """The shipped file's text (comments kept) under a new id: the start of a local copy."""
    path = shipped_file(rule_id)
    if path is None:
        raise RuleError(f"没有编号为 {rule_id} 的出厂规则")
    text = path.read_text(encoding="utf-8")
    return re.sub(r"^id:.*$", f"id: {new_id}", text, count=1, flags=re.MULTILINE)


def meta_block(meta: dict[str, Any]) -> str:
    return f"\n{MARKER}\n" + yaml.safe_dump({META_KEY: meta}, allow_unicode=True, sort_keys=False)
