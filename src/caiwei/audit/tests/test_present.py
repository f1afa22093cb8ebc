"""The audit page reads in Chinese: every key has a Chinese label (the model field's verbose name or the table of
known keys), known enumerations are in words (匿名, 系统, 网页, a ticket's status), and codes — slugs, calendar and
region codes, usernames, keys nobody has named — are inside <code>, as identifiers (the browser walk does not read
<code>). Presentation only: the stored rows are the raw values."""

import re
from html.parser import HTMLParser

import pytest
from django.apps import apps

from caiwei.audit.context import Actor, acting, acting_as
from caiwei.audit.log import audited_models_excluded, record
from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.audit.present import actor, key_label, object_type, render_value

ALLOWED = {"ID", "SM3", "CSV"}


class _Text(HTMLParser):
    """The text of #audit-events a reader sees, outside <code> (and <pre>, <kbd>, <samp>)."""

    SKIP = {"code", "pre", "kbd", "samp"}

    def __init__(self):
        super().__init__()
        self.depth, self.inside, self.skip, self.parts = 0, False, 0, []

    def handle_starttag(self, tag, attrs):
        if tag == "table" and ("id", "audit-events") in attrs:
            self.inside = True
        if self.inside:
            self.depth += tag == "table"
            self.skip += tag in self.SKIP

    def handle_endtag(self, tag):
        if self.inside:
            self.skip -= tag in self.SKIP
            self.depth -= tag == "table"
            self.inside = self.depth > 0

    def handle_data(self, data):
        if self.inside and not self.skip:
            self.parts.append(data)


def table_text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return " ".join(parser.parts)


def english_words(page: str) -> set[str]:
    text = table_text(page)
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9_\-.:]*", text)
    return {
        w
        for w in words
        if len(re.sub(r"[^A-Za-z]", "", w)) >= 2 and not re.search(r"[\d_]", w) and w not in ALLOWED
    }


@pytest.fixture
def events(users):
    # A model change with before/after: a ticket's status history row (a model whose fields Django names in
    # English), with a key nobody has named.
    record(
        AuditAction.UPDATE,
        object_type="desk.ticketchange",
        object_id="7",
        object_repr="7: new→responded",
        before={"old_status": "new", "new_status": "new", "note": "", "by_id": 3},
        after={"old_status": "new", "new_status": "responded", "note": "已电话联系", "mystery_key": "x1"},
    )
    # Settings with codes: a service-time rule's calendar and key period, a policy code.
    with acting_as(None, "setup"):
        record(
            AuditAction.CREATE,
            object_type="desk.slarule",
            object_id="1",
            object_repr="重大·故障·解决",
            after={"calendar": "workday", "key_period": "year-end", "clock": "resolution", "minutes": 120},
        )
        record(
            AuditAction.UPDATE,
            object_type="desk.slapolicy",
            object_id="1",
            object_repr="锡林郭勒盟",
            detail={"field": "regions", "change": "add", "ids": [1, 2]},
        )
    # A failed login from the web: nobody is signed in.
    with acting(Actor(ip="10.1.2.3", request_id="a" * 32, source="web", username="anonymous")):
        record(
            AuditAction.LOGIN_FAILED,
            object_type="accounts.user",
            object_repr="nosuchuser",
            actor_name="anonymous",
            detail={"reason": "用户名或密码错误"},
        )
    # A login: the username is the actor.
    record(AuditAction.LOGIN, obj=users["agent"], actor_name=users["agent"].username)
    # A system event on no model: a job exporting the seals, with nested filters.
    with acting_as(None, "job"):
        record(
            AuditAction.EXPORT,
            object_type="audit.seal",
            detail={"rows": 3, "filters": {"since": "2026-01-01", "date_to": "", "regions": ["xilingol"]}},
        )
    # A model update through the signal, with before/after of the model's own fields.
    user = users["finance"]
    user.first_name = "财务"
    user.save()


def test_labels_are_chinese_and_codes_are_code(users, client_for, events):
    page = client_for(users["auditor"]).get("/audit/").content.decode()
    # Model change: labels for English-named fields, the status in words, the unnamed key as code.
    assert "<dt>原状态</dt><dd>新建</dd>" in page
    assert "<dt>新状态</dt><dd>已响应</dd>" in page
    assert "<dt>备注</dt><dd>已电话联系</dd>" in page and "<dt>操作人</dt><dd>3</dd>" in page
    assert "<dt><code>mystery_key</code></dt><dd><code>x1</code></dd>" in page
    assert "工单状态变更 <code>7: new→responded</code>" in page
    # Codes are identifiers; a choice is its label; the m2m field is named, the change in words.
    assert "<dt>日历</dt><dd><code>workday</code></dd>" in page
    assert "<dt>关键时期</dt><dd><code>year-end</code></dd>" in page
    assert "<dt>时限</dt><dd>解决</dd>" in page
    assert "<dt>字段</dt><dd>适用区划</dd>" in page and "<dt>变更</dt><dd>添加</dd>" in page
    # Actors and channels in words; usernames as code.
    assert '<td class="text-nowrap" data-actor>匿名</td>' in page
    assert '<td class="text-nowrap" data-actor>系统（初始化）</td>' in page
    assert '<td class="text-nowrap" data-actor>系统（后台任务）</td>' in page
    assert '<td class="text-nowrap" data-actor><code>t_agent</code></td>' in page
    assert '10.1.2.3 <span class="text-muted">网页</span>' in page
    assert "<code>nosuchuser</code>" in page
    # A type that is no model, nested keys named, a list of codes.
    assert "审计封存点" in page and "<code>audit.seal</code>" not in page
    assert "截止日期：（空）" in page and "财政区划：<code>xilingol</code>" in page
    # Nothing English left outside <code> in the table.
    assert "新状态" in table_text(page) and "workday" not in table_text(page)
    assert english_words(page) == set()
    assert english_words('<table id="audit-events"><td>old status <code>ok</code></td></table>') == {
        "old",
        "status",
    }
    # The stored rows keep the raw values.
    stored = AuditEvent.objects.filter(object_type="desk.ticketchange").get()
    assert stored.after["new_status"] == "responded" and "mystery_key" in stored.after


def test_long_lists_fold(users, client_for):
    record(AuditAction.CREATE, obj=users["agent"], after={f"k{i}": i for i in range(12)})
    page = client_for(users["auditor"]).get("/audit/").content.decode()
    assert '<details class="cw-audit-fold"><summary>修改后共 12 项</summary>' in page


def test_every_audited_model_field_has_a_chinese_label():
    """A key that occurs in before/after is a concrete field of an audited model: each has a Chinese label."""
    missing = []
    excluded = audited_models_excluded()
    for model in apps.get_models():
        label = model._meta.label_lower
        if label in excluded or model._meta.auto_created:
            continue
        if "<code>" in str(object_type(label, model)):
            missing.append(label)
        missing += [
            f"{label}.{f.attname}" for f in model._meta.concrete_fields if not key_label(f.attname, model)
        ]
    assert missing == []


def test_values_are_escaped():
    assert str(render_value("<b>x</b>")) == "<code>&lt;b&gt;x&lt;/b&gt;</code>"
    assert str(render_value({"<i>": "说明<br>"})) == "<code>&lt;i&gt;</code>：说明&lt;br&gt;"
    assert str(actor("system:<x>")) == "系统（<code>&lt;x&gt;</code>）"
