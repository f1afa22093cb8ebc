"""Bank files written from the sandbox parse back to the totals the database holds, except where a fault says."""

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from caiwei.conftest import scratch_db
from caiwei.sandbox.bankfiles import BankFileError, read_bank_file, read_pboc_clearing
from caiwei.sandbox.generator import GenerateSpec, parse_faults
from caiwei.sandbox.service import run_generate

CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def db_url_pg():
    from caiwei.sandbox.tests.test_generator import _server

    name = scratch_db("caiwei_sandbox_bank_test")
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        return _server(url, f"CREATE DATABASE {name}")
    except sa.exc.ProgrammingError:
        return url  # exists already


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sandbox(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bank")
    url = f"sqlite:///{tmp / 'sandbox.sqlite3'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("db_url_pg")
    # Every layout is present (4–6 banks) and the two bank-file faults are injected.
    spec = GenerateSpec(
        payments=4000, seed=2, faults=parse_faults("voucher_missing_at_bank=1,bank_line_no_voucher=1")
    )
    manifest = run_generate(url, spec, bank_dir=tmp / "files")
    return url, tmp / "files", manifest


def read_all(folder: Path):
    daily, monthly = defaultdict(list), defaultdict(list)
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.parent.name != "pboc":
            kind, lines = read_bank_file(path)
            (daily if kind == "daily" else monthly)[path.parent.name].extend(lines)
    return daily, monthly


def test_every_format_is_written(sandbox):
    url, folder, _ = sandbox
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        formats = {r[0]: r[1] for r in conn.execute(sa.text("SELECT bank_code, file_format FROM ele_bank"))}
    engine.dispose()
    suffixes = {p.suffix for p in folder.rglob("*") if p.is_file() and p.parent.name != "pboc"}
    expected = {
        {"csv_gbk": ".csv", "xlsx": ".xlsx", "fixed_width": ".txt", "xml_gbk": ".xml"}[f]
        for f in formats.values()
    }
    assert suffixes == expected
    for path in folder.rglob("*.csv"):
        raw = path.read_bytes()
        raw.decode("gbk")
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
        break


def test_files_match_database_except_faults(sandbox):
    url, folder, manifest = sandbox
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        db = {
            r[0]: (r[1], r[2], money(r[3]), str(r[4])[:7])
            for r in conn.execute(
                sa.text(
                    "SELECT pay_cert_no, bank_code, agent_business_no, xpay_amt, xpay_date FROM pay_voucher_bill"
                    " WHERE xpay_date IS NOT NULL"
                )
            )
        }
        clearing = defaultdict(lambda: [0, Decimal(0)])
        for bank, day, count, amount in conn.execute(
            sa.text("SELECT bank_code, lqd_date, vou_count, amount FROM pay_clearing")
        ):
            clearing[(bank, str(day)[:7])][0] += count
            clearing[(bank, str(day)[:7])][1] += money(amount)
    engine.dispose()
    daily, monthly = read_all(folder)
    missing = set(manifest.keys("voucher_missing_at_bank", "bank_file"))
    extra = set(manifest.keys("bank_line_no_voucher", "bank_file"))
    assert len(missing) == 1 and len(extra) == 1
    for lines in (daily, monthly):
        in_files = {line.pay_cert_no: line for bank_lines in lines.values() for line in bank_lines}
        # Every voucher the bank paid is in its files, but the one the fault removed ...
        assert set(db) - {n for n in in_files if n in db} == missing
        # ... and every line has a voucher, but the one the fault added.
        assert {line.agent_business_no for n, line in in_files.items() if n not in db} == extra
        for number, line in in_files.items():
            if number in db:
                bank, agent_no, amount, _ = db[number]
                assert (line.bank_code, line.agent_business_no, line.amount) == (bank, agent_no, amount)
    # Monthly totals per bank equal the database's, give or take exactly the faulted lines.
    per_month = defaultdict(Decimal)
    for bank, lines in monthly.items():
        for line in lines:
            per_month[(bank, f"{line.pay_date:%Y-%m}")] += line.amount
    expected = defaultdict(Decimal)
    for number, (bank, _, amount, month) in db.items():
        if number not in missing:
            expected[(bank, month)] += amount
    for bank, lines in monthly.items():
        for line in lines:
            if line.agent_business_no in extra:
                expected[(bank, f"{line.pay_date:%Y-%m}")] += line.amount
    assert per_month == expected
    pboc = {
        (t.bank_code, t.month): [t.count, t.amount]
        for t in read_pboc_clearing(folder / "pboc" / "clearing-2026.xml")
    }
    assert pboc == {k: v for k, v in clearing.items()}


@pytest.mark.parametrize(
    ("suffix", "corrupt", "message"),
    [
        (
            ".csv",
            lambda raw: raw.replace(
                b"\r\n", "\r\n20260105,X,Y,1,a,2,b,abc,u,152500000,成功,\r\n".encode("gbk"), 1
            ),
            "第 2 行“金额”",
        ),
        (".txt", lambda raw: raw.replace(b"\r\nD|", b"\r\nD|0", 1)[:-60], "记录长度"),
        (".xml", lambda raw: raw.replace(b"<PayAmt>", b"<PayAmt>x", 1), "“PayAmt”"),
    ],
)
def test_malformed_files_name_row_and_field(sandbox, tmp_path, suffix, corrupt, message):
    _, folder, _ = sandbox
    source = next(p for p in folder.rglob(f"*{suffix}") if p.parent.name != "pboc")
    bad = tmp_path / source.name
    bad.write_bytes(corrupt(source.read_bytes()))
    with pytest.raises(BankFileError, match=message) as info:
        read_bank_file(bad)
    assert source.name in str(info.value)
