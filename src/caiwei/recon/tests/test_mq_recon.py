"""The message link as a reconciliation source: the journal 报文日志 is read whole or refused whole, and the link's
breaks follow from the rule — per bank and direction, every number missing between the lowest and the highest
sequence number seen is a gap (one break per run of missing numbers), every number seen more than once a duplicate;
a voucher without a receipt after the wait is a missing receipt, unless it went to the dead-letter queue."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caiwei.recon.engine import Tolerance, create_inputs, load_business_days, reconcile
from caiwei.recon.sources import load_mq

T0 = datetime(2026, 7, 13, 9, 0)


def connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    create_inputs(con)
    load_business_days(con, [date(2026, 7, 13), date(2026, 7, 14)])
    return con


def write(path, records) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def msg(direction, bank, seq, cert, minute=0, **more) -> dict:
    vt = {"voucher": "5201", "receipt": "2301", "dead": "5201"}[direction]
    when = (T0 + timedelta(minutes=minute)).isoformat() + "+08:00"
    return {
        "direction": direction,
        "bank": bank,
        "seq": seq,
        "vt_code": vt,
        "pay_cert_no": cert,
        "time": when,
        **more,
    }


def breaks(tmp_path, records, wait=0, now=None):
    write(tmp_path / "j.jsonl", records)
    con = connection()
    loaded = load_mq(con, [tmp_path / "j.jsonl"], tmp_path)
    assert loaded.refused == [] and loaded.messages == len(records)
    result = reconcile(con, Tolerance(receipt_minutes=wait), date(2026, 7, 14), mq_now=now)
    return con, result


def seq_of(con, ids) -> list[tuple]:
    return con.execute(
        "SELECT bank_code, direction, seq FROM mq WHERE msg_id IN (SELECT unnest(?::BIGINT[])) ORDER BY msg_id",
        [ids],
    ).fetchall()


links = st.dictionaries(
    st.tuples(st.sampled_from(["B102", "B103", "B104"]), st.sampled_from(["voucher", "receipt"])),
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(links=links, data=st.data())
def test_gaps_and_duplicates_follow_the_rule(tmp_path, links, data):
    records = []
    for (bank, direction), seqs in links.items():
        for n, seq in enumerate(seqs):
            records.append(msg(direction, bank, seq, f"C{seq:04d}", n % 5))
    records = data.draw(st.permutations(records))  # the journal's order does not matter
    # Every voucher has its receipt (of the same bank), so only the sequence checks can break.
    answered = {(r["bank"], r["pay_cert_no"]) for r in records if r["direction"] == "receipt"}
    for r in [r for r in records if r["direction"] == "voucher"]:
        if (r["bank"], r["pay_cert_no"]) not in answered:
            r["pay_cert_no"] = "R-" + r["pay_cert_no"]
            records.append(msg("receipt", r["bank"], 10_000 + len(records), r["pay_cert_no"]))
    con, result = breaks(tmp_path, records)

    expected_missing, expected_dups = set(), {}
    for link in {(r["bank"], r["direction"]) for r in records}:
        seen = Counter(r["seq"] for r in records if (r["bank"], r["direction"]) == link)
        low, high = min(seen), max(seen)
        expected_missing |= {(*link, s) for s in range(low, high + 1) if s not in seen}
        expected_dups |= {(*link, s): n for s, n in seen.items() if n > 1}
    got_missing, got_dups = set(), {}
    for b in result.breaks:
        assert b["kind"] in ("mq_seq_gap", "mq_seq_duplicate"), b
        rows = seq_of(con, b["messages"])
        if b["kind"] == "mq_seq_gap":
            # the numbers either side, both seen: a whole run of missing numbers
            (bank, direction, before), (_, _, after) = sorted(rows, key=lambda r: r[2])
            assert after - before >= 2
            run = {(bank, direction, s) for s in range(before + 1, after)}
            assert not run & got_missing
            got_missing |= run
            label = "凭证报文" if direction == "voucher" else "回单报文"
            span = f"{before + 1}" if after - before == 2 else f"{before + 1}–{after - 1}"
            assert b["note"].startswith(f"{bank} {label} 缺第 {span} 号")
        else:
            assert len({r[:3] for r in rows}) == 1
            got_dups[rows[0]] = len(rows)
    assert got_missing == expected_missing
    assert got_dups == expected_dups


@pytest.mark.parametrize(
    ("seqs", "gaps", "duplicates"),
    [
        ([1, 2, 3], [], []),
        ([3, 4, 5], [], []),  # the lowest number seen starts the link: nothing before it is missing
        ([1, 3], ["缺第 2 号"], []),
        ([1, 5, 2], ["缺第 3–4 号（共 2 个）"], []),
        ([1, 2, 2, 3], [], ["第 2 号出现 2 次"]),
        ([2, 2, 2, 5, 7], ["缺第 3–4 号（共 2 个）", "缺第 6 号"], ["第 2 号出现 3 次"]),
        ([7], [], []),
    ],
)
def test_gap_and_duplicate_table(tmp_path, seqs, gaps, duplicates):
    records = [msg("voucher", "B102", s, "C1") for s in seqs] + [msg("receipt", "B102", 1, "C1")]
    _, result = breaks(tmp_path, records)
    assert sorted(b["note"] for b in result.breaks if b["kind"] == "mq_seq_gap") == sorted(
        f"B102 凭证报文 {g}" for g in gaps
    )
    assert [b["note"] for b in result.breaks if b["kind"] == "mq_seq_duplicate"] == [
        f"B102 凭证报文 {d}" for d in duplicates
    ]


def test_receipts_dead_letters_and_the_wait(tmp_path):
    records = [
        msg("voucher", "B102", 1, "A", 0),
        msg("voucher", "B102", 2, "B", 1),  # no receipt
        msg("voucher", "B102", 3, "C", 2),  # dead letter
        msg("voucher", "B102", 4, "D", 50),  # no receipt yet, sent ten minutes before the last message
        msg("voucher", "B103", 1, "E", 3),  # its receipt came from another bank: not its receipt
        msg("receipt", "B102", 1, "A", 5),
        msg("receipt", "B104", 1, "E", 6),
        msg("dead", "B102", 3, "C", 7),
        msg("voucher", "B104", 1, "F", 60),
        msg("receipt", "B104", 2, "F", 60),
    ]
    _, result = breaks(tmp_path, records, wait=30)
    kinds = {(b["kind"], tuple(b["vouchers"])) for b in result.breaks}
    assert kinds == {
        ("mq_receipt_missing", ("B",)),
        ("mq_receipt_missing", ("E",)),
        ("mq_dead_letter", ("C",)),
    }
    assert result.mq_in_transit == 1 and result.mq_receipted == 2
    # Counted back from a later time, the last voucher's wait is over too.
    _, later = breaks(tmp_path, records, wait=30, now=datetime(2026, 7, 13, 3, 0))  # UTC = 11:00 in Beijing
    assert ("mq_receipt_missing", ["D"]) in [(b["kind"], b["vouchers"]) for b in later.breaks]
    assert later.mq_in_transit == 0


def test_a_voucher_answered_after_a_dead_letter_is_no_break(tmp_path):
    records = [
        msg("voucher", "B102", 1, "A"),
        msg("dead", "B102", 1, "A"),
        msg("voucher", "B102", 2, "A"),  # sent again
        msg("receipt", "B102", 1, "A"),
    ]
    _, result = breaks(tmp_path, records)
    assert result.breaks == []


def test_times_without_offset_are_china_standard_time(tmp_path):
    write(tmp_path / "j.jsonl", [msg("voucher", "B1", 1, "A") | {"time": "2026-07-13T09:00:00"}])
    con = connection()
    load_mq(con, [tmp_path / "j.jsonl"], tmp_path)
    assert con.execute("SELECT sent_at FROM mq").fetchone()[0] == datetime(2026, 7, 13, 1, 0)


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ("{not json", "行", "不是合法的 JSON"),
        ("[1, 2]", "行", "JSON 对象"),
        (
            '{"direction": "voucher", "bank": "B1", "seq": 1, "time": "2026-07-13T09:00:00"}',
            "支付凭证号",
            "缺少",
        ),
        (
            '{"direction": "sent", "bank": "B1", "seq": 1, "pay_cert_no": "A", "time": "2026-07-13"}',
            "方向",
            "应为",
        ),
        (
            '{"direction": "voucher", "bank": "B 1", "seq": 1, "pay_cert_no": "A", "time": "2026-07-13"}',
            "银行",
            "编码",
        ),
        (
            '{"direction": "voucher", "bank": "B1", "seq": "1", "pay_cert_no": "A", "time": "2026-07-13"}',
            "序号",
            "正整数",
        ),
        (
            '{"direction": "voucher", "bank": "B1", "seq": 0, "pay_cert_no": "A", "time": "2026-07-13"}',
            "序号",
            "正整数",
        ),
        (
            '{"direction": "voucher", "bank": "B1", "seq": true, "pay_cert_no": "A", "time": "2026-07-13"}',
            "序号",
            "正整数",
        ),
        (
            '{"direction": "voucher", "bank": "B1", "seq": 1, "pay_cert_no": "", "time": "2026-07-13"}',
            "支付凭证号",
            "非空",
        ),
        (
            '{"direction": "voucher", "bank": "B1", "seq": 1, "pay_cert_no": "A", "time": "昨天"}',
            "时间",
            "ISO 8601",
        ),
    ],
)
def test_a_bad_journal_is_refused_whole(tmp_path, line, field, problem):
    good = json.dumps(msg("voucher", "B1", 1, "A"))
    (tmp_path / "bad.jsonl").write_text(f"{good}\n\n{line}\n{good}\n", encoding="utf-8")
    write(tmp_path / "good.jsonl", [msg("voucher", "B2", 1, "B"), msg("receipt", "B2", 1, "B")])
    con = connection()
    loaded = load_mq(con, [tmp_path / "bad.jsonl", tmp_path / "good.jsonl"], tmp_path)
    assert loaded.journals == 1 and loaded.messages == 2
    (refused,) = loaded.refused
    assert (refused["file"], refused["line"], refused["field"]) == ("bad.jsonl", 3, field)
    assert problem in refused["problem"] and refused["offset"] == len(good) + 2
    assert con.execute("SELECT count(*), min(bank_code) FROM mq").fetchone() == (
        2,
        "B2",
    )  # nothing of the bad one
    assert list(tmp_path.glob("mq-*")) == [] and list(tmp_path.glob(".mq-*")) == []


def test_a_journal_in_gbk_is_refused(tmp_path):
    (tmp_path / "j.jsonl").write_bytes(
        json.dumps(msg("voucher", "B1", 1, "财政"), ensure_ascii=False).encode("gbk")
    )
    con = connection()
    loaded = load_mq(con, [tmp_path / "j.jsonl"], tmp_path)
    assert loaded.refused[0]["problem"] == "不是 UTF-8 编码的文字"


# --- kept by the platform and on the command line -----------------------------------------------------------------

MQ_KINDS = {"mq_seq_gap", "mq_seq_duplicate", "mq_receipt_missing", "mq_dead_letter"}


def link_journal(path, fill_gap: bool = False) -> None:
    """B102's vouchers 1–7 with 3 and 5–6 missing and 4 sent twice; C4 never answered,
    C2 dead-lettered; written a day ago, so the default wait is long over."""
    seqs = [1, 2, 3, 4, 4, 7] if fill_gap else [1, 2, 4, 4, 7]
    records = [msg("voucher", "B102", s, f"C{s}") for s in seqs]
    answered = [s for s in (1, 3, 7) if s in seqs]
    records += [msg("receipt", "B102", n, f"C{s}") for n, s in enumerate(answered, start=1)]
    records.append(msg("dead", "B102", 2, "C2"))
    for r in records:  # a day before now, whatever day the test runs
        r["time"] = (datetime.now().astimezone() - timedelta(days=1)).isoformat()
    write(path, records)


@pytest.fixture(scope="module")
def recon_sandbox(tmp_path_factory):
    """A small sandbox with its bank files (bank-file faults, so the link's breaks come among others)."""
    from caiwei.recon.tests.test_services import FAULTS
    from caiwei.sandbox.generator import GenerateSpec, parse_faults
    from caiwei.sandbox.service import run_generate

    tmp = tmp_path_factory.mktemp("recon-mq")
    url = f"sqlite:///{tmp / 'sandbox.sqlite3'}"
    manifest = run_generate(
        url, GenerateSpec(payments=1500, seed=2, faults=parse_faults(FAULTS)), bank_dir=tmp / "files"
    )
    return url, tmp / "files", manifest


def test_link_breaks_are_kept_carried_and_cleared(recon_sandbox, regions, tmp_path):
    from caiwei.recon.models import ReconBreak
    from caiwei.recon.services import run_reconciliation
    from caiwei.recon.sources import sandbox_files
    from caiwei.recon.tests.test_services import new_run

    url, folder, _ = recon_sandbox
    region = regions["152500000"]

    def run(journal):
        return run_reconciliation(
            new_run(region), book_url=url, bank_files=sandbox_files(folder, url), mq_journals=[journal]
        )

    link_journal(tmp_path / "a.jsonl")
    first = run(tmp_path / "a.jsonl")
    assert first.sources["mq"] == {
        "journals": 1,
        "messages": 8,
        "refused": [],
        "receipted": 2,  # C1 and C7
        "in_transit": 0,
    }
    found = ReconBreak.objects.filter(first_run=first, kind__in=MQ_KINDS)
    assert sorted((b.kind, b.note) for b in found) == [
        ("mq_dead_letter", "B102 死信：凭证报文第 2 号"),
        ("mq_receipt_missing", "B102 凭证报文第 4 号"),
        ("mq_seq_duplicate", "B102 凭证报文 第 4 号出现 2 次"),
        ("mq_seq_gap", "B102 凭证报文 缺第 3 号"),
        ("mq_seq_gap", "B102 凭证报文 缺第 5–6 号（共 2 个）"),
    ]
    dup = found.get(kind="mq_seq_duplicate")
    assert dup.vouchers == ["C4"] and [x["line"] for x in dup.lines] == [3, 4]
    assert {x["file"] for x in dup.lines} == {"a.jsonl"} and {x["seq"] for x in dup.lines} == {4}

    second = run(tmp_path / "a.jsonl")
    assert ReconBreak.objects.filter(first_run=second).count() == 0  # the same five, carried
    assert ReconBreak.objects.filter(last_run=second, kind__in=MQ_KINDS).count() == 5

    link_journal(tmp_path / "b.jsonl", fill_gap=True)  # voucher 3 found in the journal (and answered)
    run(tmp_path / "b.jsonl")
    gaps = {b.note: b.state for b in ReconBreak.objects.filter(kind="mq_seq_gap")}
    assert gaps == {
        "B102 凭证报文 缺第 3 号": ReconBreak.State.CLEARED,
        "B102 凭证报文 缺第 5–6 号（共 2 个）": ReconBreak.State.OPEN,
    }


def test_command_line_mq_option(recon_sandbox, regions, tmp_path, monkeypatch):
    from io import StringIO

    from django.core.management import CommandError, call_command

    url, folder, _ = recon_sandbox
    link_journal(tmp_path / "link.jsonl")
    args = ["recon", "run", "--db", url, "--files", str(folder), "--region", "152500000"]
    args += ["--from", "2026-01-01", "--to", "2026-12-31"]
    out = StringIO()
    monkeypatch.setattr("sys.stdout", out)
    call_command(*args, "--mq", str(tmp_path), "--mq-wait", "0", "--json")  # a folder: its *.jsonl
    data = json.loads(out.getvalue())
    assert data["status"] == "done" and data["sources"]["mq"]["messages"] == 8
    link = [b for b in data["breaks"] if b["kind"] in MQ_KINDS]
    assert len(link) == 5 and all(b["reason"] and b["note"] for b in link)
    assert {b["kind"] for b in data["breaks"]} >= MQ_KINDS | {"bank_only", "amount"}
    with pytest.raises(CommandError, match="报文日志路径"):
        call_command(*args, "--mq")
    with pytest.raises(CommandError, match="报文日志不存在"):
        call_command(*args, "--mq", str(tmp_path / "none.jsonl"))
