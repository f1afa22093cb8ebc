"""本地规则 files (issue 11 §3): a corpus of hundreds of malformed rule files, each refused whole by the command line,
the page and the API with a Chinese message naming the file, the line and the field, and nothing written; kill -9 in
the middle of an import of many rules (a real PostgreSQL, a subprocess) leaves all or none; a release that changes a
shipped rule leaves its local copies as they were, marked as based on an older shipped version.

The corpus is built from the rule file format (checks/custom.py: the fields, the one-SELECT rule, the function
allowlist, the size limit, UTF-8) applied to one valid file, field by field and line by line; the expectation of each
malformed file (which line, which field) comes from where it was broken, not from the messages.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection

import caiwei
from caiwei.accounts.roles import Role
from caiwei.audit.models import AuditEvent
from caiwei.checks import custom
from caiwei.checks import custom_services as cs
from caiwei.checks.custom_models import LocalRule, LocalRuleVersion
from caiwei.checks.engine import shipped_packs
from caiwei.conftest import PASSWORD

VALID = """id: L-FILE-001
title: 指标超支
description: 已申请支付金额超过指标金额
severity: 紧急
module: 指标管理
key: [bgt_id]
amount: over_amt
amount_title: 超支金额
evidence: [amount, pay_app_amt]
labels:
  over_amt: 超支金额
scope:
  region: b.mof_div_code
  year: b.fiscal_year
advice: 核对指标与支付明细
params:
  tolerance:
    title: 容差（元）
    default: 0
sql: |
  SELECT b.bgt_id, b.amount, b.pay_app_amt, b.pay_app_amt - b.amount AS over_amt
  FROM ba_bgt_info b
  WHERE b.pay_app_amt - b.amount > :tolerance
"""
LINES = VALID.splitlines()
TOP = {m.group(1): i for i, row in enumerate(LINES, 1) if (m := re.match(r"^(\w+):", row))}
SINGLE = [f for f, i in TOP.items() if LINES[i - 1].split(":", 1)[1].strip()]  # fields written on one line
ENGLISH = re.compile(
    r"\b(expected|found|while|could not|codec|can't|decode|position|invalid|Traceback|allowed|"
    r"scanning|parsing|character|error)\b",
    re.IGNORECASE,
)


@dataclass
class Bad:
    name: str
    data: bytes
    line: int | None  # the line the message must name (None: the file has no such line, e.g. a missing field)
    field: str | None  # the field the message must name (None: none applies, e.g. a file that is a list)
    text_only: bool = True  # False: only as bytes (a wrong encoding cannot travel as JSON text)


def _block(field: str) -> tuple[int, int]:
    """First and last line (1-based) of a top-level field with its indented continuation."""
    start = TOP[field]
    end = start
    while end < len(LINES) and LINES[end].startswith(" "):
        end += 1
    return start, end


def _set(field: str, value: str) -> str:
    """VALID with ``field`` (and its indented continuation) written as ``field: value`` (raw YAML) on its line."""
    start, end = _block(field)
    return "\n".join([*LINES[: start - 1], f"{field}: {value}", *LINES[end:]]) + "\n"


def _without(*fields: str) -> str:
    drop = set()
    for f in fields:
        start, end = _block(f)
        drop |= set(range(start, end + 1))
    return "\n".join(row for i, row in enumerate(LINES, 1) if i not in drop) + "\n"


def _sql(sql: str) -> str:
    start, end = _block("sql")
    return "\n".join(LINES[: start - 1] + ["sql: |", *("  " + s for s in sql.splitlines())]) + "\n"


def corpus() -> list[Bad]:
    bad: list[Bad] = []

    def add(name: str, text: str | bytes, line, field, text_only=True):
        data = text.encode("utf-8") if isinstance(text, str) else text
        bad.append(Bad(f"{len(bad) + 1:03d}-{name}.yaml", data, line, field, text_only))

    # --- bad YAML, at every top-level field ------------------------------------------------------------------
    for field, line in TOP.items():
        lines = list(LINES)
        value = lines[line - 1].split(":", 1)[1].strip()
        add(f"yaml-bracket-{field}", _set(field, "[未闭合, 的方括号"), line, field)
        add(f"yaml-brace-{field}", _set(field, "{a: 1, b"), line, field)
        add(f"yaml-quote-{field}", _set(field, '"未闭合的引号'), line, field)
        add(f"yaml-colon-{field}", _set(field, "甲: 乙"), line, field)
        add(f"yaml-tag-{field}", _set(field, '!!python/object/apply:os.system ["ls"]'), line, field)
        add(f"yaml-anchor-{field}", _set(field, f"&a {value or 'x'}"), line, field)
        add(f"yaml-escape-{field}", _set(field, '"反斜杠\\q"'), line, field)
        add(f"yaml-nul-{field}", _set(field, f"{value}\x00"), line, field)
        if line > 1:
            tabbed = list(LINES)
            tabbed[line - 1] = "\t" + tabbed[line - 1]
            add(f"yaml-tab-{field}", "\n".join(tabbed) + "\n", line, field)
            above = [f for f, i in TOP.items() if i < line][-1]  # a “---” line belongs to the field above it
            two = list(LINES)
            two.insert(line - 1, "---")
            add(f"yaml-document-{field}", "\n".join(two) + "\n", line, above)
        twice = list(LINES)
        start, end = _block(field)
        twice[end:end] = LINES[start - 1 : end]  # the field written a second time, right after itself
        add(f"duplicate-field-{field}", "\n".join(twice) + "\n", end + 1, field)

    # --- wrong types --------------------------------------------------------------------------------------------
    for field in ("id", "title", "description", "severity", "module", "amount", "amount_title", "advice"):
        add(f"type-list-{field}", _set(field, "[甲, 乙]"), TOP[field], field)
        add(f"type-map-{field}", _set(field, "{甲: 1}"), TOP[field], field)
    for field, values in {
        "key": ["{bgt_id: 1}", "[1, 2]", "[[bgt_id]]"],
        "evidence": ["amount", "{amount: 1}", "[1, 2]"],
        "severity": ["很急", "1", "true"],
        "id": ["1坏编号", "'L X'", "L-" + "X" * 30, "'-L'"],
        "title": ["长" * 101],
        "module": ["模" * 21],
    }.items():
        for i, value in enumerate(values):
            add(f"type-{field}-{i}", _set(field, value), TOP[field], field)
    for i, block in enumerate(
        [
            "labels: [甲, 乙]",
            "labels: 甲",
            "labels:\n  over_amt: [超支, 金额]",
            "scope: [b.mof_div_code]",
            "scope:\n  owner: b.agency_code",
            "scope:\n  region: 1 +",
            "params: [tolerance]",
            "params:\n  tolerance:\n    unknown: 1",
            "params:\n  tolerance:\n    days_before_as_of: 三十",
            "params:\n  tolerance:\n    month_end_before_as_of: 3",
            "params:\n  tolerance:\n    default: [1, 2]",
            "params:\n  tolerance:\n    title: [甲]",
        ]
    ):
        field = block.split(":", 1)[0]
        start, end = _block(field)
        text = "\n".join(LINES[: start - 1] + block.splitlines() + LINES[end:]) + "\n"
        add(f"type-{field}-{i}", text, start, field)

    # --- missing and empty fields ---------------------------------------------------------------------------
    required = ("id", "title", "severity", "module", "key", "sql")
    for i, field in enumerate(required):
        add(f"missing-{field}", _without(field), None, field)
        for other in required[i + 1 :]:
            add(f"missing-{field}-{other}", _without(field, other), None, other)
    for field in ("id", "title", "severity", "module", "key"):
        add(f"empty-{field}", _set(field, ""), TOP[field], field)
        add(f"empty-quoted-{field}", _set(field, '""'), TOP[field], field)
    add("empty-sql", _sql(""), TOP["sql"], "sql")

    # --- SQL that is not one read-only SELECT -------------------------------------------------------------------
    for i, sql in enumerate(
        [
            "INSERT INTO ba_bgt_info (bgt_id) VALUES ('x')",
            "UPDATE ba_bgt_info SET amount = 0",
            "DELETE FROM ba_bgt_info",
            "DROP TABLE ba_bgt_info",
            "CREATE TABLE stolen AS SELECT bgt_id FROM ba_bgt_info",
            "TRUNCATE ba_bgt_info",
            "ALTER TABLE ba_bgt_info ADD COLUMN x INT",
            "MERGE INTO ba_bgt_info t USING ba_bgt_info s ON t.bgt_id = s.bgt_id WHEN MATCHED THEN DELETE",
            "COPY ba_bgt_info TO '/tmp/x.csv'",
            "GRANT ALL ON ba_bgt_info TO public",
            "SET search_path = public",
            "SELECT bgt_id, amount INTO stolen FROM ba_bgt_info",
            "SELECT bgt_id, amount FROM ba_bgt_info FOR UPDATE",
            "SELECT bgt_id, amount FROM ba_bgt_info; SELECT 1",
            "SELECT bgt_id, amount FROM ba_bgt_info; DROP TABLE ba_bgt_info",
            "WITH x AS (DELETE FROM ba_bgt_info RETURNING bgt_id) SELECT bgt_id FROM x",
            "VALUES (1, 2)",
            "SELEC bgt_id FROM ba_bgt_info",
            "SELECT bgt_id, (amount FROM ba_bgt_info",
            "EXPLAIN SELECT bgt_id FROM ba_bgt_info",
            "CALL refresh_all()",
        ]
    ):
        add(f"sql-statement-{i}", _sql(sql), TOP["sql"], "sql")

    # --- functions outside the allowlist ------------------------------------------------------------------------
    for fn in (
        "pg_read_file('/etc/passwd')",
        "pg_ls_dir('.')",
        "pg_sleep(10)",
        "sleep(10)",
        "benchmark(1000000, md5('x'))",
        "load_file('/etc/passwd')",
        "lo_import('/etc/passwd')",
        "current_setting('data_directory')",
        "set_config('a.b', 'c', false)",
        "pg_terminate_backend(1)",
        "version()",
        "inet_server_addr()",
        "txid_current()",
        "dblink_exec('x', 'DROP TABLE y')",
        "xp_cmdshell('dir')",
        "sys_exec('id')",
        "my_udf(bgt_id)",
        "query_to_xml('select 1', true, true, '')",
    ):
        sql = f"SELECT b.bgt_id, b.amount, {fn} AS x FROM ba_bgt_info b"
        add(f"sql-function-{fn.split('(')[0]}", _sql(sql), TOP["sql"], "sql")
    for i, sql in enumerate(
        [
            "SELECT bgt_id, amount FROM secret_salaries",
            "SELECT bgt_id, amount FROM pg_catalog.pg_authid",
            "SELECT bgt_id, amount FROM other_db.ba_bgt_info",
            "SELECT * FROM ba_bgt_info",
            "SELECT b.* FROM ba_bgt_info b",
            "SELECT amount FROM ba_bgt_info",
            "SELECT bgt_id FROM ba_bgt_info",
            "SELECT bgt_id, amount, pay_app_amt AS over_amt FROM ba_bgt_info WHERE amount > :limit",
            "SELECT t.bgt_id FROM generate_series(1, 10) AS t(bgt_id)",
        ]
    ):
        add(f"sql-reads-{i}", _sql(sql), TOP["sql"], "sql")

    # --- huge files ---------------------------------------------------------------------------------------------
    big = custom.MAX_BYTES
    add("huge-description", _set("description", "长" * big), TOP["description"], "description")
    add("huge-title", _set("title", "x" * (big + 10)), TOP["title"], "title")
    padded = "\n".join("  -- 注释" + str(i) for i in range(big // 8))
    start = TOP["sql"]
    text = VALID + padded + "\n"
    over = text.encode("utf-8")[:big].count(b"\n") + 1
    add("huge-sql-comments", text, over, "sql")
    labels = "labels:\n" + "".join(f"  c{i}: 列{i}\n" for i in range(big // 10))
    text = _without("labels") + labels
    over = text.encode("utf-8")[:big].count(b"\n") + 1
    add("huge-labels", text, over, "labels")
    add("huge-megabyte", VALID + "#" * (5 * big) + "\n", len(LINES) + 1, "sql")

    # --- wrong encodings (files only: JSON carries text) ------------------------------------------------------
    for encoding in ("gbk", "gb18030", "big5"):
        data = VALID.replace("指标超支", "指标超支").encode(encoding, "replace")
        add(f"encoding-{encoding}", data, TOP["title"], "title", text_only=False)
    add("encoding-utf16le", b"\xff\xfe" + VALID.encode("utf-16-le"), 1, None, text_only=False)
    add("encoding-utf16be", b"\xfe\xff" + VALID.encode("utf-16-be"), 1, None, text_only=False)
    for field in ("advice", "module", "sql"):
        raw = VALID.encode("utf-8")
        lines = raw.split(b"\n")
        lines[TOP[field] - 1] += b" \xff\xfe"  # bytes that are no UTF-8
        add(f"encoding-bytes-{field}", b"\n".join(lines), TOP[field], field, text_only=False)
    truncated = VALID.encode("utf-8") + "尾".encode()[:2]
    add("encoding-truncated", truncated, len(LINES) + 1, "sql", text_only=False)
    add(
        "encoding-latin1", _set("advice", "café").encode("latin-1", "replace"), TOP["advice"], "advice", False
    )

    # --- not a rule at all --------------------------------------------------------------------------------------
    add("shape-list", "- id: L-X\n- title: 列表\n", 1, None)
    add("shape-scalar", "只是一句话\n", 1, None)
    add("shape-empty", "", 1, None)
    add("shape-blank", "   \n\n  \n", 1, None)
    add("shape-comments", "# 只有注释\n# 没有字段\n", 1, None)
    add("unknown-field", VALID + "owner: 某人\n", len(LINES) + 1, "owner")
    add("unknown-fields", VALID + "owner: 某人\nsql2: SELECT 1\n", len(LINES) + 1, "owner")

    # --- ids of shipped rules (every shipped rule: a release must never be shadowed) -------------------------
    for pack in shipped_packs().values():
        for rule in pack.rules:
            add(f"shipped-{rule.id}", _set("id", rule.id), TOP["id"], "id")
    return bad


CORPUS = corpus()


def test_the_corpus_is_large_and_its_base_is_valid():
    assert len(CORPUS) >= 300
    assert custom.check_text(VALID).id == "L-FILE-001"  # each file is refused for what was broken in it
    assert len({b.name for b in CORPUS}) == len(CORPUS)


def _named(messages: list[str], name: str) -> list[str]:
    return [m for m in messages if name in m]


def _judge(bad: Bad, messages: list[str]) -> str | None:
    """What is wrong with the refusal of ``bad`` (None when it is as required)."""
    own = _named(messages, bad.name)
    if not own:
        return f"没有提到文件名：{messages}"
    text = "；".join(own)
    if not re.search(r"[\u4e00-\u9fff]", text.replace(bad.name, "")):
        return f"不是中文：{text}"
    english = ENGLISH.search(text.replace(bad.name, ""))
    if english:
        return f"含英文原文“{english.group(0)}”：{text}"
    if bad.line is not None and f"第 {bad.line} 行" not in text:
        return f"没有指出第 {bad.line} 行：{text}"
    if bad.field is not None and f"字段 {bad.field}" not in text:
        return f"没有指出字段 {bad.field}：{text}"
    return None


def _rows() -> tuple[int, int, int]:
    return (
        LocalRule.objects.count(),
        LocalRuleVersion.objects.count(),
        AuditEvent.objects.filter(object_type="checks.localrule").count(),
    )


@pytest.fixture
def people(make_user):
    return {
        "engineer": make_user("f_engineer", Role.ENGINEER, regions=("152500000",)),
        "pm": make_user("f_pm", Role.PROJECT_MANAGER, regions=("152500000",)),
    }


GOOD_FILE = ("好文件.yaml", VALID.replace("L-FILE-001", "L-FILE-900").encode("utf-8"))


def test_every_malformed_file_is_refused_with_file_line_and_field(people):
    """Each file alone, and each beside a good file: refused whole, nothing written."""
    before = _rows()
    wrong = {}
    for bad in CORPUS:
        for files in ([(bad.name, bad.data)], [GOOD_FILE, (bad.name, bad.data)]):
            try:
                cs.import_files(people["engineer"], files)
            except ValidationError as exc:
                problem = _judge(bad, exc.messages)
            else:
                problem = "被接受了"
            if problem:
                wrong[bad.name] = problem
    assert wrong == {}
    assert _rows() == before == (0, 0, 0)


def test_duplicate_ids_across_the_files_of_one_import(people, make_user, regions):
    engineer = people["engineer"]
    before = _rows()
    for i, rule_id in enumerate(("L-DUP-001", "L-DUP-002", "Ldup_3")):
        text = VALID.replace("L-FILE-001", rule_id)
        other = text.replace("指标超支", f"指标超支（另一份 {i}）")
        with pytest.raises(ValidationError) as info:
            cs.import_files(engineer, [("甲.yaml", text), GOOD_FILE, ("乙.yaml", other)])
        (message,) = _named(info.value.messages, "乙.yaml")
        assert f"第 {TOP['id']} 行 字段 id" in message and rule_id in message and "甲.yaml" in message
    assert _rows() == before
    # One import that fails while writing (the second file's id is taken by a rule the importer may not see, of
    # another county): nothing of the first file stays either.
    cs.create_rule(engineer, VALID.replace("L-FILE-001", "L-TAKEN-1"), region=regions["152502000"])
    county = make_user("f_county", Role.ENGINEER, regions=("152501000",))
    before = _rows()
    with pytest.raises(ValidationError) as info:
        cs.import_files(county, [GOOD_FILE, ("被占用.yaml", VALID.replace("L-FILE-001", "L-TAKEN-1"))])
    (message,) = info.value.messages
    assert message.startswith("被占用.yaml：第 1 行 字段 id") and "其他区划" in message
    assert _rows() == before


def test_command_line_refuses_the_corpus_whole(people, tmp_path, monkeypatch):
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    good = tmp_path / GOOD_FILE[0]
    good.write_bytes(GOOD_FILE[1])
    paths = []
    for bad in CORPUS:
        path = tmp_path / bad.name
        path.write_bytes(bad.data)
        paths.append(path)
    before = _rows()
    with pytest.raises(CommandError) as info:
        call_command("checks", "rules", "import", str(good), *map(str, paths), "--actor", "f_engineer")
    messages = str(info.value).splitlines()
    assert messages[-1] == "以上文件均未写入任何内容"
    wrong = {b.name: p for b in CORPUS if (p := _judge(b, messages))}
    assert wrong == {}
    assert _rows() == before
    # One malformed file of each kind beside the good file, each import on its own: still nothing written.
    kinds = {}
    for bad, path in zip(CORPUS, paths, strict=True):
        kinds.setdefault(bad.name.split("-")[1], (bad, path))
    assert len(kinds) >= 9
    for bad, path in kinds.values():
        with pytest.raises(CommandError) as info:
            call_command("checks", "rules", "import", str(good), str(path), "--actor", "f_engineer")
        assert _judge(bad, str(info.value).splitlines()) is None
    assert _rows() == before
    call_command("checks", "rules", "import", str(good), "--actor", "f_engineer", stdout=io.StringIO())
    assert LocalRule.objects.get().rule_id == "L-FILE-900"


def test_page_and_api_refuse_the_corpus_whole(people, client_for, token_for, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    client = client_for(people["engineer"])
    before = _rows()
    wrong = {}
    step = (
        settings.DATA_UPLOAD_MAX_NUMBER_FILES - 1
    )  # a form takes this many files at once (and the good one)
    for start in range(0, len(CORPUS), step):
        chunk = CORPUS[start : start + step]
        uploads = [SimpleUploadedFile(GOOD_FILE[0], GOOD_FILE[1])]
        uploads += [SimpleUploadedFile(b.name, b.data) for b in chunk]
        page = client.post(reverse("checks:local_rule_import"), {"file": uploads}, follow=True)
        shown = [str(m) for m in page.context["messages"]]
        assert len(shown) == 1 and shown[0].endswith("（未写入任何内容）")
        messages = shown[0].removesuffix("（未写入任何内容）").split("；")
        wrong |= {b.name: p for b in chunk if (p := _judge(b, messages))}
    assert wrong == {}
    assert _rows() == before
    too_many = [SimpleUploadedFile(f"{i}.yaml", GOOD_FILE[1]) for i in range(step + 2)]
    page = client.post(reverse("checks:local_rule_import"), {"file": too_many}, follow=True)
    assert [str(m) for m in page.context["messages"]] == [f"一次最多导入 {step + 1} 个文件，请分批导入"]
    assert _rows() == before

    auth = token_for(people["engineer"])
    wrong = {}
    for bad in [b for b in CORPUS if b.text_only]:
        text = bad.data.decode("utf-8")
        answer = client.post(
            "/api/checks/local-rules/import",
            {
                "files": [
                    {"name": GOOD_FILE[0], "text": GOOD_FILE[1].decode()},
                    {"name": bad.name, "text": text},
                ]
            },
            content_type="application/json",
            **auth,
        )
        if answer.status_code != 400:
            wrong[bad.name] = f"HTTP {answer.status_code}"
        elif problem := _judge(bad, answer.json()["errors"]["__all__"]):
            wrong[bad.name] = problem
    assert wrong == {}
    assert _rows() == before


# --- shipped rules updated by a release ----------------------------------------------------------------------------


def test_a_release_changes_a_shipped_rule_and_the_local_copy_stays(people, tmp_path, monkeypatch, settings):
    """“Shipped rules are updated by releases without overwriting local copies”: the rules directory is copied, a
    copy of QUOTA-001 is made from it, then the shipped file is changed as a release would; the local copy keeps its
    text and versions, and is marked as based on an older shipped version (page, API, command line)."""
    import shutil

    from caiwei.checks import engine

    rules = tmp_path / "rules"
    shutil.copytree(engine.RULES_DIR, rules)
    monkeypatch.setattr(engine, "RULES_DIR", rules)
    monkeypatch.setattr(custom, "RULES_DIR", rules)
    engine.shipped_packs.cache_clear()
    try:
        copy = cs.copy_shipped(people["engineer"], "QUOTA-001")
        local = copy.rule
        original = custom.shipped_file("QUOTA-001")
        assert original.is_relative_to(rules) and local.source_hash == custom.text_hash(original.read_text())
        assert not cs.shipped_changed(local)
        page = client_for_user(people["engineer"]).get(f"/checks/local/{local.pk}/").content.decode()
        assert "data-shipped-changed" not in page
        before = (copy.text, list(local.versions.values_list("number", "sha256")))

        # The release: a stricter condition and new advice in the shipped file.
        released = original.read_text(encoding="utf-8").replace("advice:", "advice: （新版）", 1)
        assert released != original.read_text(encoding="utf-8")
        original.write_text(released, encoding="utf-8")
        engine.shipped_packs.cache_clear()
        assert "（新版）" in engine.shipped_rule("QUOTA-001").advice

        local.refresh_from_db()
        assert (local.latest.text, list(local.versions.values_list("number", "sha256"))) == before
        assert "（新版）" not in local.latest.text
        assert cs.shipped_changed(local)  # based on an older shipped version
        assert local.source_hash != custom.shipped_hash("QUOTA-001")

        page = client_for_user(people["engineer"]).get(f"/checks/local/{local.pk}/").content.decode()
        assert "data-shipped-changed" in page and "本地副本未被覆盖" in page
        out = io.StringIO()
        call_command("checks", "rules", "list", "--pack", "local", stdout=out)
        assert "L-QUOTA-001" in out.getvalue() and "出厂规则已更新" in out.getvalue()
    finally:
        engine.shipped_packs.cache_clear()


def client_for_user(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


# --- kill -9 in the middle of an import --------------------------------------------------------------------------


def _many(folder, count: int) -> list[str]:
    paths = []
    for i in range(count):
        path = folder / f"rule-{i:04d}.yaml"
        path.write_text(VALID.replace("L-FILE-001", f"L-KILL-{i:04d}"), encoding="utf-8")
        paths.append(str(path))
    return paths


def _writer_in_transaction(cursor, application: str) -> bool:
    """The import's server session holds the lock of an insert into the local rules (its transaction is open)."""
    cursor.execute(
        "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE a.application_name = %s AND l.relation = 'checks_localrule'::regclass"
        " AND l.mode = 'RowExclusiveLock'",
        [application],
    )
    return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_kill_9_during_an_import_leaves_all_or_none(make_user, regions, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("需要 PostgreSQL（DATABASE_URL）")
    make_user("k_engineer", Role.ENGINEER, regions=("152500000",))
    paths = _many(tmp_path, 200)
    settings_dict = connection.settings_dict
    url = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:"
        f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
    )
    application = f"caiwei-kill-{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": f"{url}?application_name={application}",
        "DJANGO_SETTINGS_MODULE": "caiwei.settings_test",
        "CAIWEI_PASSWORD": PASSWORD,
        # The code under test, whichever checkout it is: the folder that holds this caiwei package.
        "PYTHONPATH": os.pathsep.join(
            [str(Path(caiwei.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    command = [
        sys.executable,
        "-m",
        "caiwei.cli",
        "checks",
        "rules",
        "import",
        *paths,
        "--actor",
        "k_engineer",
    ]
    counts = []
    for attempt in range(2):
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seen = False
        with connection.cursor() as cursor:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and process.poll() is None:
                if _writer_in_transaction(cursor, application):
                    seen = True
                    time.sleep(0.05 + 0.3 * attempt)  # a few rules into the transaction
                    break
                time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=30)
        assert seen, (out.decode()[-2000:], err.decode()[-2000:])
        with connection.cursor() as cursor:  # the server ends the dead client's session and rolls it back
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                cursor.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s", [application]
                )
                if cursor.fetchone()[0] == 0:
                    break
                time.sleep(0.05)
        rules = LocalRule.objects.filter(rule_id__startswith="L-KILL-").count()
        versions = LocalRuleVersion.objects.filter(rule__rule_id__startswith="L-KILL-").count()
        counts.append((process.returncode, rules, versions))
        assert process.returncode == -signal.SIGKILL
        assert (rules, versions) in ((0, 0), (200, 200)), counts
    assert counts[0][1:] == (0, 0)  # killed while the transaction was open: nothing
    done = subprocess.run(command, env=env, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert LocalRule.objects.filter(rule_id__startswith="L-KILL-").count() == 200
    assert LocalRuleVersion.objects.filter(rule__rule_id__startswith="L-KILL-").count() == 200
