"""The master-data pack 主数据语义检查 (MD-001…011) rule by rule: a clean sandbox gives no finding; each test breaks
the condition one rule states (and only that) by direct SQL on a copy, and asserts the rule flags exactly the rows
broken — and that a change inside the rule's tolerance or outside its scope is not flagged. Independent of the fault
injector (only a clean sandbox is generated). SQLite; the three engines are covered by test_engine.py."""

import sqlite3
from datetime import date, timedelta

import pytest

from caiwei.checks.engine import find_rule, select_rules
from caiwei.checks.runner import Options, run_url
from caiwei.sandbox.generator import GenerateSpec, generate

AS_OF = date(2026, 12, 31)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    path = tmp_path_factory.mktemp("master_data") / "clean.sqlite3"
    generate(f"sqlite:///{path}", GenerateSpec(payments=1200, seed=17, regions="152500000:1"))
    outcomes = run_url(f"sqlite:///{path}", select_rules("master_data"), Options(as_of=AS_OF))
    assert [(o.rule.id, o.count, o.error) for o in outcomes if o.count or o.error] == []
    assert len(outcomes) == 11
    return path


class Copy(sqlite3.Connection):
    """A connection to the working copy that knows its file (the rules run on the file)."""

    path = None


@pytest.fixture
def db(clean, tmp_path):
    work = tmp_path / "work.sqlite3"
    source, conn = sqlite3.connect(clean), sqlite3.connect(work, factory=Copy)
    source.backup(conn)
    source.close()
    conn.path = work
    yield conn
    conn.close()


def flagged(conn, rule_id: str, **params) -> set[str]:
    conn.commit()
    options = Options(as_of=AS_OF, params={rule_id: params} if params else {})
    (outcome,) = run_url(f"sqlite:///{conn.path}", [find_rule(rule_id)], options)
    assert not outcome.error, outcome.error
    return {str(k[0]) for k in outcome.keys}


def one(conn, sql: str, params=()):
    return conn.execute(sql, params).fetchone()


def test_md001_status_and_dates(db):
    serving = one(db, "SELECT person_id FROM person_info WHERE status = '在职' ORDER BY person_id")[0]
    db.execute("UPDATE person_info SET leave_date = '2026-05-01' WHERE person_id = ?", (serving,))
    left = one(db, "SELECT person_id FROM person_info WHERE status = '离职' ORDER BY person_id")[0]
    db.execute("UPDATE person_info SET leave_date = NULL WHERE person_id = ?", (left,))
    moved = one(db, "SELECT person_id FROM person_info WHERE status = '调出' ORDER BY person_id")[0]
    db.execute(
        "UPDATE person_info SET leave_date = '2027-02-01', status_date = '2027-02-01' WHERE person_id = ?",
        (moved,),
    )
    assert flagged(db, "MD-001") == {serving, left, moved}


def test_md002_ages_from_the_id_number(db):
    pid, iden = one(db, "SELECT person_id, iden_no FROM person_info WHERE status = '在职' ORDER BY person_id")
    born = date(int(iden[6:10]), int(iden[10:12]), int(iden[12:14]))
    db.execute(
        "UPDATE person_info SET entry_date = ? WHERE person_id = ?",
        ((born + timedelta(days=365 * 15)).isoformat(), pid),
    )
    retiree, r_iden = one(
        db, "SELECT person_id, iden_no FROM person_info WHERE status = '退休' ORDER BY person_id"
    )
    r_born = date(int(r_iden[6:10]), int(r_iden[10:12]), int(r_iden[12:14]))
    day = r_born + timedelta(days=365 * 45 + 20)
    db.execute(
        "UPDATE person_info SET leave_date = ?, status_date = ? WHERE person_id = ?",
        (day.isoformat(), day.isoformat(), retiree),
    )
    assert flagged(db, "MD-002") == {pid, retiree}
    garbled = one(db, "SELECT person_id FROM person_info WHERE status = '在职' ORDER BY person_id DESC")[0]
    db.execute(
        "UPDATE person_info SET iden_no = SUBSTR(iden_no, 1, 8) || 'X' || SUBSTR(iden_no, 10), entry_date = '1900-01-01'"
        " WHERE person_id = ?",
        (garbled,),
    )
    assert flagged(db, "MD-002") == {pid, retiree}  # a birth date that is no number is PERSON-002's matter
    assert flagged(db, "MD-002", min_entry_age=14, min_retire_age=40) == set()  # the parameters decide


def test_md003_paid_outside_the_service_period(db):
    pid = one(
        db,
        "SELECT d.person_id FROM pay_salary_detail d JOIN person_info h ON h.person_id = d.person_id"
        " WHERE h.status = '在职' AND h.leave_date IS NULL GROUP BY d.person_id HAVING COUNT(DISTINCT d.run_id) = 12"
        " ORDER BY d.person_id",
    )[0]
    db.execute(
        "UPDATE person_info SET entry_date = '2026-11-20', status_date = '2026-11-20' WHERE person_id = ?",
        (pid,),
    )
    before_entry = {
        r[0]
        for r in db.execute(
            "SELECT DISTINCT run_id FROM pay_salary_detail WHERE person_id = ? AND run_id NOT LIKE '%202611' AND run_id NOT LIKE '%202612'",
            (pid,),
        )
    }
    assert len(before_entry) == 10 and flagged(db, "MD-003") == before_entry
    db.execute(
        "UPDATE person_info SET entry_date = '2010-01-01', status_date = '2026-07-31', status = '调出', leave_date = '2026-07-31' WHERE person_id = ?",
        (pid,),
    )
    after_leave = {
        r[0]
        for r in db.execute(
            "SELECT run_id FROM pay_salary_run WHERE pay_month > 7 AND agency_code = (SELECT agency_code FROM person_info WHERE person_id = ?)",
            (pid,),
        )
    }
    assert flagged(db, "MD-003") == after_leave  # the month of leaving itself is paid


def test_md004_a_person_of_another_agency(db):
    run_id, agency = one(db, "SELECT run_id, agency_code FROM pay_salary_run ORDER BY run_id")
    stranger = one(
        db,
        "SELECT person_id FROM person_info WHERE agency_code <> ? AND status = '在职' ORDER BY person_id",
        (agency,),
    )[0]
    db.execute("INSERT INTO pay_salary_detail VALUES (?, ?, '01', 3000.00)", (run_id, stranger))
    assert flagged(db, "MD-004") == {run_id}


def test_md005_item_against_its_monthly_standard(db):
    run_id, pid, item = one(
        db, "SELECT run_id, person_id, item_code FROM pay_salary_detail ORDER BY run_id DESC"
    )
    where = "WHERE run_id = ? AND person_id = ? AND item_code = ?"
    db.execute(f"UPDATE pay_salary_detail SET amount = ROUND(amount * 1.1, 2) {where}", (run_id, pid, item))  # noqa: S608
    assert flagged(db, "MD-005") == set()  # within the 20 % tolerance
    db.execute(f"UPDATE pay_salary_detail SET amount = ROUND(amount * 1.3, 2) {where}", (run_id, pid, item))  # noqa: S608
    assert flagged(db, "MD-005") == {run_id}
    assert flagged(db, "MD-005", tolerance=0.5) == set()


def test_md006_head_count_and_total(db):
    first, second = [r[0] for r in db.execute("SELECT run_id FROM pay_salary_run ORDER BY run_id LIMIT 2")]
    db.execute("UPDATE pay_salary_run SET head_count = head_count + 1 WHERE run_id = ?", (first,))
    db.execute("UPDATE pay_salary_run SET total_amt = total_amt - 0.01 WHERE run_id = ?", (second,))
    assert flagged(db, "MD-006") == {first, second}


def test_md007_a_class_that_is_not_depreciated(db):
    klass = one(
        db,
        "SELECT a.asset_class_code FROM asset_depr d JOIN asset_card a ON a.asset_id = d.asset_id ORDER BY 1",
    )[0]
    db.execute("UPDATE ele_asset_class SET is_depreciable = 0 WHERE code = ?", (klass,))
    expected = {
        r[0]
        for r in db.execute(
            "SELECT DISTINCT d.asset_id FROM asset_depr d JOIN asset_card a ON a.asset_id = d.asset_id WHERE a.asset_class_code = ?",
            (klass,),
        )
    }
    assert expected and flagged(db, "MD-007") == expected


def test_md008_before_booking_or_after_disposal(db):
    asset_id, first = one(
        db,
        "SELECT asset_id, MIN(depr_period) FROM asset_depr GROUP BY asset_id HAVING COUNT(*) > 3 ORDER BY asset_id",
    )
    db.execute("UPDATE asset_card SET book_date = ? WHERE asset_id = ?", (f"{first}-01", asset_id))
    assert flagged(db, "MD-008") == set()  # booked in the month depreciation starts: allowed
    year, month = map(int, first.split("-"))
    later = date(year + month // 12, month % 12 + 1, 1)
    db.execute(
        "UPDATE asset_card SET book_date = ?, acquire_date = ? WHERE asset_id = ?",
        (later.isoformat(), later.isoformat(), asset_id),
    )
    other, last = one(
        db,
        "SELECT asset_id, MAX(depr_period) FROM asset_depr WHERE asset_id <> ? GROUP BY asset_id HAVING COUNT(*) > 3 ORDER BY asset_id",
        (asset_id,),
    )
    db.execute(
        "UPDATE asset_card SET status = '已处置', disposal_date = ? WHERE asset_id = ?", (f"{last}-15", other)
    )
    assert flagged(db, "MD-008") == {asset_id, other}


def test_md009_monthly_amount_against_original_and_life(db):
    asset_id, period = one(db, "SELECT asset_id, depr_period FROM asset_depr ORDER BY asset_id, depr_period")
    where = "WHERE asset_id = ? AND depr_period = ?"
    db.execute(f"UPDATE asset_depr SET amount = ROUND(amount * 1.03, 2) {where}", (asset_id, period))  # noqa: S608
    assert flagged(db, "MD-009") == set()  # within 5 %
    db.execute(f"UPDATE asset_depr SET amount = amount * 2 {where}", (asset_id, period))  # noqa: S608
    assert flagged(db, "MD-009") == {asset_id}


def test_md010_registration_numbers_across_units(db):
    a, a_agency, a_no = one(db, "SELECT asset_id, agency_code, asset_no FROM asset_card ORDER BY asset_id")
    same_unit = one(
        db,
        "SELECT asset_id FROM asset_card WHERE agency_code = ? AND asset_id <> ? ORDER BY asset_id",
        (a_agency, a),
    )[0]
    db.execute("UPDATE asset_card SET asset_no = ? WHERE asset_id = ?", (a_no, same_unit))
    assert flagged(db, "MD-010") == set()  # one unit: ASSET-002's matter
    region = one(db, "SELECT mof_div_code FROM asset_card WHERE asset_id = ?", (a,))[0]
    b, plate = one(
        db,
        "SELECT asset_id, plate_no FROM asset_card WHERE plate_no IS NOT NULL AND mof_div_code = ? ORDER BY asset_id",
        (region,),
    )
    c = one(
        db,
        "SELECT asset_id FROM asset_card WHERE plate_no IS NOT NULL AND mof_div_code = ? AND agency_code <> (SELECT agency_code FROM asset_card WHERE asset_id = ?) ORDER BY asset_id",
        (region, b),
    )[0]
    db.execute("UPDATE asset_card SET plate_no = ? WHERE asset_id = ?", (plate, c))
    assert flagged(db, "MD-010") == {b, c}
    other_region = one(
        db,
        "SELECT asset_id FROM asset_card WHERE mof_div_code <> ? AND plate_no IS NOT NULL ORDER BY asset_id",
        (region,),
    )[0]
    db.execute("UPDATE asset_card SET plate_no = ? WHERE asset_id = ?", (plate, other_region))
    assert flagged(db, "MD-010") == {b, c, other_region}  # a plate is unique nationwide, across regions too
    db.execute("UPDATE asset_card SET plate_no = NULL WHERE asset_id = ?", (other_region,))
    (other_no,) = one(db, "SELECT asset_no FROM asset_card WHERE asset_id = ?", (b,))
    db.execute("UPDATE asset_card SET asset_no = ? WHERE asset_id = ?", (other_no, other_region))
    assert flagged(db, "MD-010") == {b, c}  # an asset number is unique within its region only


def test_md011_holder_of_a_personal_account(db):
    holder, day = one(
        db,
        "SELECT y.person_id, MIN(p.pay_app_date) FROM pay_voucher p JOIN pay_payee_info y ON y.payee_acct_no = p.payee_acct_no"
        " WHERE y.acct_kind IN ('个人账户', '公务卡') GROUP BY y.person_id ORDER BY COUNT(*) DESC, 1",
    )
    db.execute(
        "UPDATE person_info SET status = '离职', leave_date = ?, status_date = ? WHERE person_id = ?",
        (day, day, holder),
    )
    later = {
        r[0]
        for r in db.execute(
            "SELECT p.pay_app_id FROM pay_voucher p JOIN pay_payee_info y ON y.payee_acct_no = p.payee_acct_no"
            " WHERE y.person_id = ? AND y.acct_kind IN ('个人账户', '公务卡') AND p.pay_app_date > ?",
            (holder, day),
        )
    }
    assert flagged(db, "MD-011") == later  # paid on the day of leaving is still allowed
    db.execute(
        "UPDATE person_info SET status = '在职', leave_date = NULL, mof_div_code = '152599000' WHERE person_id = ?",
        (holder,),
    )
    everything = {
        r[0]
        for r in db.execute(
            "SELECT p.pay_app_id FROM pay_voucher p JOIN pay_payee_info y ON y.payee_acct_no = p.payee_acct_no WHERE y.person_id = ? AND y.acct_kind IN ('个人账户', '公务卡')",
            (holder,),
        )
    }
    assert later < everything and flagged(db, "MD-011") == everything
