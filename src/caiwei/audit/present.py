"""The audit page as an auditor reads it: every key in Chinese, known enumerations in words, codes as code.

Presentation only: what is stored and hashed stays as it is (the CSV export writes the raw values). A key is named
by its model field's verbose name when that is Chinese, else by ``KEY_LABELS``; a key named by neither is shown as
it is, inside ``<code>``. A value that is an enumeration the platform knows (a model choice, a ticket status, an
actor's channel) is shown in words; any other value without Chinese in it (a slug, a region or calendar code, a
username, a job kind) is an identifier and is shown inside ``<code>``.
"""

from __future__ import annotations

import re
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString

from .export import TIME_FORMAT, as_local

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]")
EMPTY = "（空）"
SHOWN_ITEMS = 20  # of a list value
FOLDED_AFTER = 6  # a cell with more entries than this is folded (<details>), its count in the summary

# Channels of ``context.Actor.source`` (middleware: web, api, admin; commands and jobs: acting_as(user, source)).
SOURCE_LABELS = {
    "web": "网页",
    "api": "接口",
    "admin": "配置管理",
    "cli": "命令行",
    "job": "后台任务",
    "system": "系统",
    "setup": "初始化",
    "mail": "邮件收取",
    "audit": "审计",
}
# Actor names that are no account: the middleware's "anonymous", the default "system", and "system:<source>".
ACTOR_LABELS = {"anonymous": "匿名", "system": "系统"}

# Keys of ``detail``, of nested JSON, and of model fields whose verbose name is not Chinese (fields named by Django
# or a third-party app, desk's history rows), in words. Model fields with a Chinese verbose name need no entry.
KEY_LABELS = {
    # detail keys written by record() callers
    "action": "操作",
    "operation": "操作",
    "event": "事件",
    "reason": "原因",
    "ok": "是否成功",
    "message": "结果",
    "url": "连接",
    "until": "锁定至",
    "failures": "失败次数",
    "unknown_account": "账号不存在",
    "tokens_revoked": "作废的令牌数",
    "rows": "行数",
    "filters": "筛选条件",
    "capability": "所需权限",
    "field": "字段",
    "change": "变更",
    "ids": "涉及编号",
    "continued_after": "接续的行",
    "year": "年度",
    "warnings": "提示",
    "n": "数量",
    "kind": "类型",
    "subject": "对象账号",
    "proposer": "提议人",
    "approver": "批准人",
    "month": "月份",
    "format": "格式",
    "file": "文件",
    # filters and job parameters
    "since": "起始日期",
    "until_date": "截止日期",
    "date_from": "起始日期",
    "date_to": "截止日期",
    "q": "关键字",
    "actor": "操作人",
    "ip": "来源地址",
    "object_type": "对象类型",
    "source": "途径",
    "run": "检查记录",
    "regions": "财政区划",
    "region": "财政区划",
    "rules": "检查规则",
    "rule": "规则",
    "target": "检查对象",
    "database": "数据库",
    "page": "页码",
    "limit": "条数",
    "offset": "起始位置",
    "intact": "完整",
    "broken_seq": "断裂的行",
    "checked": "已校验行数",
    "count": "数量",
    "total": "总数",
    # fields without a Chinese verbose name
    "id": "编号",
    "pk": "编号",
    "user": "用户",
    "username": "用户名",
    "name": "名称",
    "password": "密码",
    "secret": "密文",
    "last_login": "最近登录",
    "created_at": "创建时间",
    "created_by": "创建人",
    "updated_at": "修改时间",
    "at": "时间",
    "detail": "详情",
    "ticket": "工单",
    "severity": "严重程度",
    "assignee": "处理人",
    "status": "状态",
    "old_status": "原状态",
    "new_status": "新状态",
    "old_tier": "原处理层级",
    "new_tier": "新处理层级",
    "from_user": "原处理人",
    "to_user": "新处理人",
    "by": "操作人",
    "note": "备注",
    "author": "留言人",
    "comment": "留言",
    "text": "内容",
    "read": "已读",
    "order": "厂商工单",
    "content_type": "文件类型",
    "message_id": "邮件 Message-ID",
    "schedule": "检查计划",
    "job": "后台任务",
    "last_run": "最近一次检查",
    "key_hash": "令牌摘要",
    "sha256": "内容摘要（SHA-256）",
    "tri_admin": "三员标记",
    "failed_logins": "连续失败次数",
    "locked_until": "锁定至",
    # django-otp's authenticator (otp_totp.totpdevice)
    "confirmed": "已确认",
    "key": "密钥",
    "step": "时间步长（秒）",
    "t0": "起始时刻",
    "digits": "位数",
    "tolerance": "容许偏差（步）",
    "drift": "时钟偏移（步）",
    "last_t": "最近使用的时间步",
    "last_used_at": "最近使用时间",
    "throttling_failure_timestamp": "最近验证失败时间",
    "throttling_failure_count": "连续验证失败次数",
}

# Object types whose model has no Chinese verbose name, and those that are no model (exports, seals).
OBJECT_LABELS = {
    "otp_totp.totpdevice": "动态口令设备",
    "otp_static.staticdevice": "备用口令设备",
    "jobs.workerbeat": "后台进程心跳",
    "desk.ticketchange": "工单状态变更",
    "desk.ticketassignment": "工单分派",
    "desk.ticketcomment": "工单留言",
    "desk.escalation": "工单升级",
    "desk.notification": "站内通知",
    "desk.vendorfollowup": "厂商工单跟进",
    "desk.ticketattachment": "工单附件",
    "desk.monthly_report": "运维月报",
    "checks.run": "检查结果",
    "checks.ruleresult": "检查规则结果",
    "audit.seal": "审计封存点",
    "sandbox.manifest": "演练库清单",
    "sandbox.bank_file": "演练银行回单文件",
    "auth.group": "用户组",
}

# Values of a key that are an enumeration kept elsewhere than in the field's choices: (app, model, field).
CHOICES_FROM = {
    ("desk.ticketchange", "old_status"): ("desk", "ticket", "status"),
    ("desk.ticketchange", "new_status"): ("desk", "ticket", "status"),
}
# Values of a key in words (the m2m signal's change, an actor's channel).
VALUE_WORDS = {
    "change": {"add": "添加", "remove": "移除", "clear": "清空"},
    "source": SOURCE_LABELS,
}


def model_for(object_type: str):
    try:
        return apps.get_model(object_type) if object_type.count(".") == 1 else None
    except (LookupError, ValueError):
        return None


def _field(model, key: str):
    if model is None:
        return None
    try:
        return model._meta.get_field(key)
    except FieldDoesNotExist:
        return None


def _field_label(model, key: str) -> str | None:
    field = _field(model, key)
    label = str(getattr(field, "verbose_name", "") or "")
    return label if CJK.search(label) else None


def key_label(key: str, model=None, detail: bool = False) -> str | None:
    """The Chinese name of ``key``: the model field's (before/after) or the table's (detail) first; None if
    neither names it."""
    names = [key, key.removesuffix("_id")] if key.endswith("_id") else [key]
    from_model = [_field_label(model, k) for k in names]
    from_table = [KEY_LABELS.get(k) for k in names]
    for label in (from_table + from_model) if detail else (from_model + from_table):
        if label:
            return label
    return None


def render_key(key: Any, model=None, detail: bool = False) -> SafeString:
    label = key_label(str(key), model, detail)
    return conditional_escape(label) if label else format_html("<code>{}</code>", key)


def _choice(model, key: str, value: Any) -> str | None:
    if isinstance(value, (dict, list, bool)) or value in (None, ""):
        return None
    label = None
    if model is not None:
        source = CHOICES_FROM.get((model._meta.label_lower, key))
        field = _field(apps.get_model(source[0], source[1]), source[2]) if source else _field(model, key)
        try:
            label = dict(field.flatchoices).get(value) if field is not None else None
        except TypeError:  # an unhashable value
            label = None
    if label is None:
        label = VALUE_WORDS.get(key, {}).get(str(value))
    return str(label) if label is not None else None


def render_text(text: str) -> SafeString:
    """A stored string: as it is when it has Chinese in it or no letters (numbers, dates); else an identifier."""
    if CJK.search(text) or not LATIN.search(text):
        return conditional_escape(text)
    return format_html("<code>{}</code>", text)


def render_value(value: Any, model=None, key: str = "", detail: bool = False) -> SafeString:
    """A stored JSON value for reading: times in Beijing time, 是/否, choices in words, nested data compact."""
    if value is None or value == "":
        return conditional_escape(EMPTY)
    if isinstance(value, bool):
        return conditional_escape("是" if value else "否")
    label = _choice(model, key, value)
    if label is not None:
        return conditional_escape(label)
    if key == "field" and isinstance(value, str) and model is not None:
        name = key_label(value, model)  # the m2m signal names the field changed
        if name:
            return conditional_escape(name)
    moment = as_local(value)
    if moment is not None:
        return conditional_escape(moment.strftime(TIME_FORMAT))
    if isinstance(value, dict):
        if not value:
            return conditional_escape(EMPTY)
        return format_html_join(
            "；",
            "{}：{}",
            (
                (render_key(k, model, detail=True), render_value(v, model, str(k), True))
                for k, v in value.items()
            ),
        )
    if isinstance(value, list):
        if not value:
            return conditional_escape(EMPTY)
        shown = format_html_join(
            "、", "{}", ((render_value(v, model, key, detail),) for v in value[:SHOWN_ITEMS])
        )
        return format_html("{}……（共 {} 项）", shown, len(value)) if len(value) > SHOWN_ITEMS else shown
    if isinstance(value, (int, float)):
        return conditional_escape(str(value))
    return render_text(str(value))


def entries(data: Any, model=None, detail: bool = False) -> list[tuple[SafeString, SafeString]]:
    """(label, value) pairs of a JSON object from the chain, for a key/value list on the page."""
    if data in (None, {}, ""):
        return []
    if not isinstance(data, dict):
        return [(conditional_escape("内容"), render_value(data, model, detail=detail))]
    return [(render_key(k, model, detail), render_value(v, model, str(k), detail)) for k, v in data.items()]


def actor(name: str) -> SafeString:
    """The actor: 匿名 / 系统 / 系统（途径） for no account, else the username as an identifier."""
    if name in ACTOR_LABELS:
        return conditional_escape(ACTOR_LABELS[name])
    if name.startswith("system:"):
        via = name.removeprefix("system:")
        label = SOURCE_LABELS.get(via)
        return format_html("系统（{}）", label) if label else format_html("系统（<code>{}</code>）", via)
    return format_html("<code>{}</code>", name) if name else conditional_escape("-")


def source(value: str) -> SafeString:
    if not value:
        return conditional_escape("")
    label = SOURCE_LABELS.get(value)
    return conditional_escape(label) if label else format_html("<code>{}</code>", value)


def object_type(value: str, model=None) -> SafeString:
    if model is not None and CJK.search(str(model._meta.verbose_name)):
        return conditional_escape(str(model._meta.verbose_name))
    if value in OBJECT_LABELS:
        return conditional_escape(OBJECT_LABELS[value])
    return format_html("<code>{}</code>", value) if value else conditional_escape("")


def present(event) -> dict:
    model = model_for(event.object_type)
    before = entries(event.before, model)
    after = entries(event.after, model)
    detail = entries(event.detail, model, detail=True)
    return {
        "event": event,
        "actor": actor(event.actor),
        "source": source(event.source),
        "type_label": object_type(event.object_type, model),
        "repr": render_text(event.object_repr) if event.object_repr else "",
        "before": before,
        "after": after,
        "detail": detail,
        "fold_before": len(before) > FOLDED_AFTER,
        "fold_after": len(after) > FOLDED_AFTER,
        "fold_detail": len(detail) > FOLDED_AFTER,
    }
