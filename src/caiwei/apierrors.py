"""Request validation errors of the API in Chinese: each names where (请求体、查询参数……) and which field, and what
is wrong with it, from pydantic's error type (never its English text)."""

from __future__ import annotations

from typing import Any

SOURCES = {
    "body": "请求体字段",
    "query": "查询参数",
    "path": "路径参数",
    "header": "请求头",
    "cookie": "Cookie",
    "form": "表单字段",
    "file": "文件",
}

# pydantic error type → a Chinese phrase; {name} takes a value from the error's ctx.
PHRASES = {
    "missing": "必须填写",
    "extra_forbidden": "是未知字段",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数，不能有小数",
    "int_parsing_size": "整数超出允许范围",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "finite_number": "应为有限的数字（不能是 NaN 或 Infinity）",
    "decimal_type": "应为数字",
    "decimal_parsing": "应为数字",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "string_type": "应为文本",
    "string_unicode": "含有无法识别的字符",
    "string_sub_type": "应为文本",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "string_pattern_mismatch": "格式不正确",
    "bytes_type": "应为文本",
    "date_type": "应为日期（YYYY-MM-DD）",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）",
    "date_from_datetime_inexact": "应为日期，不能带时刻",
    "datetime_type": "应为时间（ISO 8601，如 2026-09-30T17:30:00+08:00）",
    "datetime_parsing": "应为时间（ISO 8601，如 2026-09-30T17:30:00+08:00）",
    "datetime_from_date_parsing": "应为时间（ISO 8601，如 2026-09-30T17:30:00+08:00）",
    "datetime_object_invalid": "不是有效的时间",
    "time_type": "应为时刻（HH:MM）",
    "time_parsing": "应为时刻（HH:MM）",
    "timezone_naive": "不能带时区",
    "timezone_aware": "应带时区",
    "list_type": "应为列表",
    "tuple_type": "应为列表",
    "set_type": "应为列表",
    "dict_type": "应为键值对（JSON 对象）",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "dataclass_type": "应为 JSON 对象",
    "json_invalid": "不是合法的 JSON",
    "json_type": "应为 JSON 文本",
    "literal_error": "应为 {expected} 之一",
    "enum": "应为 {expected} 之一",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应不小于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应不大于 {le}",
    "multiple_of": "应为 {multiple_of} 的倍数",
    "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "union_tag_invalid": "类型不正确",
    "union_tag_not_found": "类型不正确",
    "uuid_type": "应为 UUID",
    "uuid_parsing": "应为 UUID",
    "url_type": "应为网址",
    "url_parsing": "应为网址",
    "none_required": "应为空",
    "is_instance_of": "类型不正确",
}


def field_name(loc: tuple | list) -> tuple[str, str]:
    """(where, field) of an error location: ("body", "data", "items", 0, "x") → ("请求体字段", "items[0].x")."""
    parts = list(loc)
    source = str(parts.pop(0)) if parts else ""
    if source == "body" and len(parts) > 1:
        parts.pop(0)  # the operation's parameter name ("data"), not a field the caller sent
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return SOURCES.get(source, source or "参数"), name


def phrase(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        text = str(ctx.get("error") or "")
        # our own validators raise ValueError with a Chinese message; pydantic prefixes "Value error, "
        return text.removeprefix("Value error, ").removeprefix("Assertion failed, ") or "值不正确"
    template = PHRASES.get(kind)
    if template is None:
        return "值不正确"
    try:
        return template.format(**{k: _plain(v) for k, v in ctx.items()})
    except (KeyError, IndexError, ValueError):
        return template.split("{")[0].rstrip() or "值不正确"


def _plain(value: Any) -> str:
    text = str(value)
    return text.replace("'", "").replace(" or ", "、").replace(", ", "、")


def explain(errors: list[dict[str, Any]]) -> tuple[str, dict[str, list[str]]]:
    """A one-line Chinese detail and the messages per field (keys as the caller wrote them)."""
    by_field: dict[str, list[str]] = {}
    lines = []
    for error in errors:
        where, name = field_name(error.get("loc") or ())
        text = phrase(error)
        if not name and error.get("type") == "missing":
            line = (
                f"{where.removesuffix('字段')}：缺少请求内容"
                if where == "请求体字段"
                else f"{where}：必须填写"
            )
        else:
            line = f"{where}“{name}”：{text}" if name else f"{where}：{text}"
        lines.append(line)
        by_field.setdefault(name or "__all__", []).append(text)
    return "；".join(lines) or "请求参数不正确", by_field
