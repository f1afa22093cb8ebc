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

from caiwei.inputs import text_problem

from .engine import (
    REQUIRED,
    RULES_DIR,
    SCOPES,
    SEVERITIES,
    SOURCE_DIALECT,
    Rule,
    RuleError,
    _normalizers,
    _pair,
    _params,
    check_special_calls,
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
    "normalize",
    "pair",
)
META_KEY = "version"  # the export's version metadata: ignored on import
MARKER = "# ---- 以下为导出时附加的版本信息，导入时忽略 ----"
RULE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{1,29}$")
MAX_BYTES = 200_000  # a rule file (UTF-8) larger than this is refused before it is parsed
TOP_KEY = re.compile(r"^\t*([A-Za-z_][A-Za-z0-9_-]*)\s*:")  # a tab-indented field is still that field

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
        # Caiwei's own, expanded per dialect by the engine (declared normalisers, day differences)
        "CAIWEI_NORM",
        "CAIWEI_DAY_DIFF",
        "LEAD",
        "FIRST_VALUE",
        "LAST_VALUE",
        # conditionals and types
        "CASE",
        "EXISTS",  # a read-only predicate over a subquery (the subquery is checked like the query)
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


def key_line(text: str, name: str) -> str:
    """“第 N 行 ” of a top-level field, or "" when the text has no such field."""
    line = _key_lines(text).get(name)
    return f"第 {line} 行 " if line else ""


def strip_meta(text: str) -> str:
    """The rule itself: an exported file without the version block appended after MARKER."""
    head, sep, _ = text.partition(MARKER)
    return head.rstrip() + "\n" if sep else text


# PyYAML's own words (problem or context) → what a rule author is told; the mark says where to point: "context" at
# the start of the broken construct (an unclosed bracket or quote), "problem" where the parser gave up.
YAML_PROBLEMS = (
    ("expected a single document", "problem", "一个文件只能有一条规则（一个 YAML 文档），请去掉多余的 ---"),
    ("could not determine a constructor", "problem", "使用了不支持的 YAML 标签（!!…），请直接写出文本或数字"),
    ("found unhashable key", "problem", "字段名不能是列表或键值对"),
    ("found undefined alias", "problem", "引用了未定义的别名（*…）"),
    ("found duplicate anchor", "problem", "锚点（&…）重复"),
    (
        "found unknown escape character",
        "problem",
        "双引号文本中有无法识别的转义符（反斜杠），可改用单引号或 | 块",
    ),
    ("while scanning a quoted scalar", "context", "引号未闭合"),
    ("while parsing a flow sequence", "context", "方括号 [ ] 未闭合，或其中缺少逗号"),
    ("while parsing a flow mapping", "context", "花括号 { } 未闭合，或其中缺少逗号"),
    (
        "cannot start any token",
        "problem",
        "此处的字符不能作为值的开头（如用 Tab 缩进、以 @ 或 ` 开头），请改用空格缩进或加引号",
    ),
    (
        "mapping values are not allowed",
        "problem",
        "此处不能出现“字段: 值”：缩进不一致，或含冒号的文本没有加引号",
    ),
    ("could not find expected ':'", "problem", "缺少冒号：每个字段应写作“字段: 值”，多行文本请用 | 块"),
    ("while scanning a block scalar", "problem", "块文本（| 或 >）的写法有误"),
    ("while scanning an alias", "problem", "别名（*…）的写法有误"),
    ("while scanning an anchor", "problem", "锚点（&…）的写法有误"),
    ("while scanning a tag", "problem", "标签（!…）的写法有误"),
    ("while scanning a directive", "problem", "% 指令的写法有误"),
    ("expected <block end>", "problem", "缩进不一致：同一层的字段应从同一列开始"),
    ("while parsing a block", "problem", "缩进不一致：同一层的字段应从同一列开始"),
    ("expected the node content", "problem", "此处缺少值"),
    ("did not find expected", "problem", "列表或键值对的写法有误（缩进或“- ”）"),
)


def _field_at(text: str, line: int) -> str:
    """The top-level field whose value line ``line`` (1-based) belongs to: the last ``name:`` at column 0 above."""
    field = ""
    for number, row in enumerate(text.splitlines(), 1):
        if number > line:
            break
        found = TOP_KEY.match(row)
        if found:
            field = found.group(1)
    return field


def _where(text: str, line: int, column: int | None = None) -> str:
    """第 N 行[第 M 列][（字段 x）]: the place a message points at."""
    field = _field_at(text, line)
    return f"第 {line} 行" + (f"第 {column} 列" if column else "") + (f"（字段 {field}）" if field else "")


def _too_large(text: str) -> RuleInvalid:
    # The line where the file crosses the limit (counted on the text, which is what the author sees).
    line = text.encode("utf-8")[:MAX_BYTES].count(b"\n") + 1
    return RuleInvalid([f"{_where(text, line)}起超过上限：规则文件不能超过 {MAX_BYTES // 1000} KB"])


def decode(data: bytes) -> str:
    """The text of an uploaded or read rule file: UTF-8 (a BOM is allowed) and not over MAX_BYTES; else
    RuleInvalid naming the line (and field) where the problem is."""
    if len(data) > MAX_BYTES:
        raise _too_large(data[: MAX_BYTES + 1].decode("utf-8", "replace"))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise RuleInvalid(["第 1 行：文件是 UTF-16 编码，请另存为 UTF-8 后再导入"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        try:
            data.decode("gb18030")
            guess = "（可能是 GBK 等中文编码）"
        except UnicodeDecodeError:
            guess = ""
        text = data.decode("utf-8", "replace")
        raise RuleInvalid(
            [f"{_where(text, line, column)}：不是 UTF-8 编码的文本{guess}，请另存为 UTF-8 后再导入"]
        ) from exc


VALUE = re.compile(r"^\s*(?:- )?(?:[^\s:#][^:#]*:\s+)?(.*)$")


def _unclosed(text: str, last: int) -> tuple[int, int, str] | None:
    """The first line up to ``last`` whose flow value ([…], {…}) or quoted value is not closed on that line:
    where an author left a bracket or a quote open (PyYAML only notices much further down)."""
    for number, row in enumerate(text.splitlines()[:last], 1):
        value = VALUE.match(row).group(1).rstrip()
        column = len(row) - len(row.lstrip()) + 1 + row.lstrip().find(value) if value else 0
        if value[:1] in "[{":
            depth, quote = 0, ""
            for char in value:
                if quote:
                    quote = "" if char == quote else quote
                elif char in "\"'":
                    quote = char
                elif char in "[{":
                    depth += 1
                elif char in "]}":
                    depth -= 1
            if depth > 0:
                what = "方括号 [ ] 未闭合" if value[0] == "[" else "花括号 { } 未闭合"
                return number, column, what
        elif value[:1] in "\"'" and value.find(value[0], 1) == -1:
            return number, column, "引号未闭合"
    return None


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    said = f"{getattr(exc, 'context', '') or ''} {getattr(exc, 'problem', '') or ''}"
    words, prefer = "YAML 格式错误", "problem"
    for pattern, mark_kind, chinese in YAML_PROBLEMS:
        if pattern in said:
            words, prefer = chinese, mark_kind
            break
    else:
        if isinstance(exc, yaml.reader.ReaderError):
            words = "含有不允许的控制字符（如 NUL），请删去"
    marks = [getattr(exc, "context_mark", None), getattr(exc, "problem_mark", None)]
    mark = (marks[0] or marks[1]) if prefer == "context" else (marks[1] or marks[0])
    if mark is not None and not isinstance(exc, yaml.constructor.ConstructorError):
        open_at = _unclosed(text, mark.line + 1)
        if open_at is not None and open_at[0] <= mark.line + 1:
            line, column, words = open_at
            return f"{_where(text, line, column)}：{words}"
    if mark is not None:
        return f"{_where(text, mark.line + 1, mark.column + 1)}：{words}"
    position = getattr(exc, "position", None)  # ReaderError: an offset in the text
    if position is not None:
        line = text.count("\n", 0, position) + 1
        return f"{_where(text, line, position - (text.rfind(chr(10), 0, position) + 1) + 1)}：{words}"
    return f"第 1 行：{words}"


def _no_aliases(text: str) -> None:
    """Anchors and aliases (&a / *a) are refused: a few lines of them expand to a huge value."""
    for token in yaml.scan(text):
        if isinstance(token, yaml.AliasToken | yaml.AnchorToken):
            mark = token.start_mark
            raise RuleInvalid(
                [
                    f"{_where(text, mark.line + 1, mark.column + 1)}：不支持 YAML 锚点与别名（&…、*…），请直接写出内容"
                ]
            )


def _no_duplicate_keys(text: str, node: yaml.Node, path: str = "") -> None:
    """A field given twice: PyYAML would keep the last silently; refused, naming both lines."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in seen:
                raise RuleInvalid(
                    [f"第 {line} 行 字段 {path}{name} 重复（第一次在第 {seen[name]} 行），请只保留一处"]
                )
            seen[name] = line
            _no_duplicate_keys(text, value, f"{path}{name}.")
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _no_duplicate_keys(text, item, path)


def load_data(text: str) -> dict:
    """The YAML of a rule file as a dict, or RuleInvalid naming the line (and the field)."""
    if len(text) > MAX_BYTES // 4 and len(text.encode("utf-8")) > MAX_BYTES:
        raise _too_large(text)
    if not text or not text.strip():
        raise RuleInvalid(["第 1 行：规则文件为空"])
    for number, row in enumerate(text.lstrip("\ufeff").split("\n"), 1):  # what no stored text may hold
        problem = text_problem(row, multiline=True)
        if problem:
            raise RuleInvalid([f"{_where(text, number)}：{problem}，请删去"])
    try:
        _no_aliases(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _no_duplicate_keys(text, node)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleInvalid([_yaml_problem(exc, text)]) from exc
    if not isinstance(data, dict):
        raise RuleInvalid(["第 1 行：规则文件应为“字段: 值”的键值对（id、title、sql ……）"])
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
    absent = [k for k in REQUIRED if k not in data]
    if absent:
        names = "、".join(f"字段 {k}" for k in absent)
        problems.append(f"缺少{names}（全文 {len(text.splitlines())} 行中没有）")
    empty = [k for k in REQUIRED if k in data and (data[k] is None or data[k] in ("", [], {}))]
    problems += [f"{at(k)}字段 {k} 为空" for k in empty]
    if problems:
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
    elif any(r.id == rule_id for pack in shipped_packs().values() for r in pack.rules):
        problems.append(
            f"{at('id')}字段 id：{rule_id} 是出厂规则的编号，本地规则请另取编号（如 L-{rule_id}）"
        )
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
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        problems.append(f"{at('labels')}字段 labels：应为“列名: 中文名”的键值对（中文名为文本）")
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
        problems.append(str(exc) if isinstance(exc, RuleError) else f"{at('params')}字段 params：设置有误")
    problems += [f"{at('params')}字段 params.{p.name}：{m}" for p in params for m in _param_problems(p)]
    amount = str(data.get("amount") or "")
    sql = str(data["sql"]).strip().rstrip(";").strip()
    sql_problems = check_sql(sql, [str(k) for k in key], amount, list(evidence), {p.name for p in params})
    problems += [f"{at('sql')}字段 sql：{p}" for p in sql_problems]
    normalize, pair = {}, {}
    if not sql_problems:
        tree = sqlglot.parse_one(sql, read=SOURCE_DIALECT)
        outputs = {str(c.alias_or_name) for c in tree.selects}
        try:
            normalize = _normalizers(data.get("normalize"), params, f"{at('normalize')}字段 normalize")
            check_special_calls(tree, normalize, f"{at('sql')}字段 sql")
            pair = _pair(data.get("pair"), outputs, f"{at('pair')}字段 pair")
        except RuleError as exc:
            problems.append(str(exc))
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
        normalize=normalize,
        pair=pair,
    )


def _param_problems(p) -> list[str]:
    problems = []
    if not isinstance(p.title, str):
        problems.append("title 应为文本")
    if p.default is not None and not isinstance(p.default, str | int | float):
        problems.append("default 应为文本或数字")
    if p.days_before_as_of is not None and (
        not isinstance(p.days_before_as_of, int) or isinstance(p.days_before_as_of, bool)
    ):
        problems.append("days_before_as_of 应为整数（天数）")
    if not isinstance(p.month_end_before_as_of, bool):
        problems.append("month_end_before_as_of 应为 true 或 false")
    return problems


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    return node.sql_name().upper()


SQL_PROBLEMS = (  # sqlglot's description of a parse error → Chinese
    ("Expecting )", "缺少右括号“)”"),
    ("Expecting (", "缺少左括号“(”"),
    ("Invalid expression / Unexpected token", "此处的词不合语法（拼写错误，或缺少逗号、运算符）"),
    ("Required keyword", "语句不完整（如 WHERE、ON 之后缺少条件）"),
    ("Expected table name", "缺少表名"),
    ("Unexpected end", "语句不完整"),
)


def _sql_problem(description: str) -> str:
    for pattern, chinese in SQL_PROBLEMS:
        if description.startswith(pattern):
            return chinese
    return "语法错误"


def check_sql(
    sql: str, key: list[str], amount: str = "", evidence: list[str] = (), declared: set[str] = ()
) -> list[str]:
    """What is wrong with a rule's SQL (empty when nothing is)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=SOURCE_DIALECT) if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if getattr(exc, "errors", None) else {}
        near = f"“{first['highlight']}”" if first.get("highlight") else ""
        where = f"SQL 第 {first['line']} 行第 {first['col']} 列{near}附近：" if first.get("line") else ""
        return [f"SQL 无法解析（{where}{_sql_problem(first.get('description') or '')}）"]
    except sqlglot.errors.SqlglotError:
        return ["SQL 无法解析（引号未闭合或含有无法识别的字符）"]
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
