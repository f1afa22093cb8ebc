"""The packs who_acted 经办人与角色检查 and plausibility 金额合理性检查 against their definitions, on a clean sandbox
changed by hand (SQLite): the role is judged on the day of acting, each rule reports its rows and no other rule
does, and the plausibility rules' parameters mean what they say (the expected rows are computed here in Python)."""

from collections import defaultdict
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from caiwei.checks.engine import find_rule, parse_overrides, select_rules
from caiwei.checks.runner import Options, run_url
from caiwei.sandbox.generator import GenerateSpec, generate

AS_OF = date(2026, 12, 31)


@pytest.fixture
def clean(tmp_path):
    url = f"sqlite:///{tmp_path / 'clean.sqlite3'}"
    generate(url, GenerateSpec(payments=1500, seed=7))
    engine = sa.create_engine(url)
    yield url, engine
    engine.dispose()


def flagged(url, rule_ids, **options):
    rules = [find_rule(r) for r in rule_ids]
    outcomes = run_url(url, rules, Options(as_of=AS_OF, **options))
    assert [o.error for o in outcomes if o.error] == []
    return {o.rule.id: {str(k[0]) for k in o.keys} for o in outcomes}


def who_rules():
    return [r.id for r in select_rules("all") if r.id.startswith("WHO-")]


def day(value) -> date:
    return date.fromisoformat(str(value)[:10])


def test_the_approver_role_is_judged_on_the_day_of_approval(clean):
    url, engine = clean
    with engine.begin() as conn:
        # An approver who approved all year: take a day in the middle of their approvals.
        user = conn.execute(
            sa.text(
                "SELECT ur.user_id FROM sys_user_role ur WHERE ur.role_id = 'R02' AND ur.valid_to IS NULL"
                " AND ur.valid_from < '2026-01-01' ORDER BY ur.user_id"
            )
        ).scalar()
        rows = conn.execute(
            sa.text(
                "SELECT p.pay_app_id, p.pay_app_date, v.pay_cert_no, v.vou_date, v.send_user_id, p.input_user_id"
                " FROM pay_voucher p JOIN pay_voucher_bill v ON v.pay_app_id = p.pay_app_id"
                " WHERE p.audit_user_id = :u"
            ),
            {"u": user},
        ).fetchall()
        days = sorted(day(r[1]) for r in rows)
        cut = days[len(days) // 2]
        # The grant ends the day before ``cut``: every approval and voucher from ``cut`` on is without the role.
        conn.execute(
            sa.text("UPDATE sys_user_role SET valid_to = :d WHERE user_id = :u AND role_id = 'R02'"),
            {"d": cut - timedelta(days=1), "u": user},
        )
    late_pay = {r[0] for r in rows if day(r[1]) >= cut and r[5] != user}
    late_bill = {r[2] for r in rows if day(r[3]) >= cut and r[4] == user}
    assert late_pay and late_bill
    found = flagged(url, who_rules())
    assert found["WHO-001"] == late_pay and found["WHO-002"] == late_bill
    assert {r: keys for r, keys in found.items() if keys and r not in ("WHO-001", "WHO-002")} == {}

    # A grant that starts later instead: the approvals before its start are flagged, those after are not.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE sys_user_role SET valid_from = :d, valid_to = NULL WHERE user_id = :u AND role_id = 'R02'"
            ),
            {"d": cut, "u": user},
        )
    found = flagged(url, ["WHO-001", "WHO-002"])
    assert found["WHO-001"] == {r[0] for r in rows if day(r[1]) < cut and r[5] != user}
    assert found["WHO-002"] == {r[2] for r in rows if day(r[3]) < cut and r[4] == user}


def test_entry_without_the_entry_role_and_by_an_administrator(clean):
    url, engine = clean
    with engine.begin() as conn:
        approver, admin = conn.execute(
            sa.text(
                "SELECT MIN(CASE WHEN ur.role_id = 'R02' THEN u.user_id END),"
                " MIN(CASE WHEN r.admin_kind = 'audit' THEN u.user_id END)"
                " FROM sys_user u JOIN sys_user_role ur ON ur.user_id = u.user_id"
                " JOIN sys_role r ON r.role_id = ur.role_id WHERE u.is_public = 0"
            )
        ).one()
        first, second = [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT pay_app_id FROM pay_voucher WHERE audit_user_id NOT IN (:a, :b) ORDER BY pay_app_id"
                ),
                {"a": approver, "b": admin},
            ).fetchmany(2)
        ]
        conn.execute(
            sa.text("UPDATE pay_voucher SET input_user_id = :u WHERE pay_app_id = :p"),
            {"u": approver, "p": first},
        )
        # The security auditor (安全审计员) is one of the three administrators: reported as such, not as "no role".
        conn.execute(
            sa.text("UPDATE pay_voucher SET input_user_id = :u WHERE pay_app_id = :p"),
            {"u": admin, "p": second},
        )
    found = flagged(url, who_rules())
    assert {r: keys for r, keys in found.items() if keys} == {"WHO-003": {first}, "WHO-004": {second}}

    # The approver is also granted the entry role, but only from the day after the payment: still flagged.
    with engine.begin() as conn:
        entered = day(
            conn.execute(
                sa.text("SELECT pay_app_date FROM pay_voucher WHERE pay_app_id = :p"), {"p": first}
            ).scalar()
        )
        conn.execute(
            sa.text(
                "INSERT INTO sys_user_role (user_id, role_id, valid_from, valid_to) VALUES (:u, 'R01', :d, NULL)"
            ),
            {"u": approver, "d": entered + timedelta(days=1)},
        )
    assert flagged(url, ["WHO-003"])["WHO-003"] == {first}
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE sys_user_role SET valid_from = :d WHERE user_id = :u AND role_id = 'R01'"),
            {"u": approver, "d": entered},
        )
    assert flagged(url, ["WHO-003"])["WHO-003"] == set()


def test_an_approver_approving_a_payment_to_themselves(clean):
    url, engine = clean
    with engine.begin() as conn:
        # A payment to a staff member's personal account; its approver is made that staff member's account.
        key, approver, holder = conn.execute(
            sa.text(
                "SELECT p.pay_app_id, p.audit_user_id, y.person_id FROM pay_voucher p"
                " JOIN pay_payee_info y ON y.payee_acct_no = p.payee_acct_no"
                " WHERE y.acct_kind = '个人账户' ORDER BY p.pay_app_id"
            )
        ).first()
        conn.execute(
            sa.text("UPDATE sys_user SET person_id = :h WHERE user_id = :u"), {"h": holder, "u": approver}
        )
        expected = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT p.pay_app_id, y.person_id FROM pay_voucher p"
                    " JOIN pay_payee_info y ON y.payee_acct_no = p.payee_acct_no WHERE p.audit_user_id = :u"
                ),
                {"u": approver},
            )
            if r[1] == holder
        }
    assert key in expected
    found = flagged(url, who_rules())
    assert {r: keys for r, keys in found.items() if keys} == {"WHO-011": expected}


def payments(engine):
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT pay_app_id, agency_code, dep_bgt_eco_code, payee_acct_no, pay_app_date, pay_amt FROM pay_voucher"
            )
        ).fetchall()


def above_peers(rows, factor, min_peers):
    """PLAUS-001 written out: more than ``factor`` × the average of at least ``min_peers`` other payments of the
    same agency, economic item and month."""
    groups = defaultdict(list)
    for key, agency, dep, _, when, amt in rows:
        groups[(agency, dep, day(when).strftime("%Y-%m"))].append((key, float(amt)))
    found, peers = set(), {}
    for group in groups.values():
        total = sum(a for _, a in group)
        for key, amt in group:
            peers[key] = len(group) - 1
            if peers[key] >= min_peers and amt * peers[key] > factor * (total - amt):
                found.add(key)
    return found, peers


def above_history(rows, peers, factor, min_history, min_peers):
    """PLAUS-002 written out: where the peers are too few, more than ``factor`` × the average of at least
    ``min_history`` earlier payments of the agency to the same payee for the same item."""
    history = defaultdict(list)
    for key, agency, dep, payee, when, amt in rows:
        history[(agency, payee, dep)].append((day(when), key, float(amt)))
    found = set()
    for group in history.values():
        for when, key, amt in group:
            before = [a for d, _, a in group if d < when]
            if (
                peers[key] < min_peers
                and len(before) >= min_history
                and amt * len(before) > factor * sum(before)
            ):
                found.add(key)
    return found


def test_plausibility_parameters_mean_what_they_say(clean):
    url, engine = clean
    rows = payments(engine)
    rules = [find_rule("PLAUS-001"), find_rule("PLAUS-002")]
    # The defaults find nothing in clean data; lower factors find the rows the definitions name, and only those.
    for factor, min_peers, min_history in ((5, 3, 3), (1.5, 3, 3), (1.2, 1, 1), (2, 2, 2)):
        peer_rows, peers = above_peers(rows, factor, min_peers)
        history_rows = above_history(rows, peers, factor, min_history, min_peers)
        text = (
            f"PLAUS-001.factor={factor},PLAUS-001.min_peers={min_peers},PLAUS-002.factor={factor},"
            f"PLAUS-002.min_history={min_history},PLAUS-002.min_peers={min_peers}"
        )
        found = flagged(url, ["PLAUS-001", "PLAUS-002"], params=parse_overrides(text, rules))
        assert found == {"PLAUS-001": peer_rows, "PLAUS-002": history_rows}, factor
        if factor == 5:
            assert peer_rows == history_rows == set()
        if factor == 1.2:
            assert peer_rows and history_rows  # the comparison is not vacuous


def test_an_extra_digit_is_shown_next_to_the_peer_figure(clean):
    url, engine = clean
    rows = payments(engine)
    _, peers = above_peers(rows, 5, 3)
    key, amt = next((r[0], float(r[5])) for r in rows if peers[r[0]] >= 3)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE pay_voucher SET pay_amt = pay_amt * 10 WHERE pay_app_id = :p"), {"p": key}
        )
    [outcome] = run_url(url, [find_rule("PLAUS-001")], Options(as_of=AS_OF))
    assert [k[0] for k in outcome.keys] == [key]
    row = outcome.sample[0]
    target = next(r for r in rows if r[0] == key)
    same_month = [
        float(r[5])
        for r in rows
        if r[0] != key
        and r[1:3] == target[1:3]
        and day(r[4]).strftime("%Y-%m") == day(target[4]).strftime("%Y-%m")
    ]
    assert int(row["peer_count"]) == len(same_month) >= 3
    assert float(row["peer_avg"]) == pytest.approx(sum(same_month) / len(same_month), abs=0.01)
    assert float(row["pay_amt"]) == pytest.approx(amt * 10, abs=0.01)
    assert float(row["times_peer"]) > 5
