"""Faults the sandbox's injector never makes 注入器之外的故障: each breaks one clean row by direct SQL in a shape written
from the rule a finance database must satisfy (DOMAIN.md, “The levels a finance engineer expects a rule library to
reach”, levels 1–6), not from the injector's fault list or the constraint model; nothing here imports either.

For each fault on a fresh copy of a clean sandbox, every shipped rule runs and:
- recall: some rule flags the broken row (its table and key);
- precision: every flagged row is the broken row or a row the fault's ``linked`` query names (the records that the
  broken row's own rules legitimately see as out of step: its indicator, voucher, ledger entry …).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date

import pytest

from caiwei.checks.engine import select_rules
from caiwei.checks.mask import mask_key
from caiwei.checks.runner import Options, run_url
from caiwei.checks.truth import findings
from caiwei.sandbox.generator import GenerateSpec, generate

AS_OF = date(2026, 12, 31)

# The records along one payment's money flow, by its pay_app_id (:k): what a broken payment may put out of step.
PAYMENT_CHAIN = """
SELECT 'pay_voucher', pay_app_id FROM pay_voucher WHERE pay_app_id = :k
UNION ALL SELECT 'ba_bgt_info', bgt_id FROM pay_voucher WHERE pay_app_id = :k
UNION ALL SELECT 'ba_bgt_balance', bgt_id FROM pay_voucher WHERE pay_app_id = :k
UNION ALL SELECT 'ba_bgt_carryovers', 'C' || bgt_id FROM pay_voucher WHERE pay_app_id = :k
UNION ALL SELECT 'pay_plan_voucher', plan_id FROM pay_voucher WHERE pay_app_id = :k AND plan_id IS NOT NULL
UNION ALL SELECT 'pm_project_info', pro_code FROM pay_voucher WHERE pay_app_id = :k
UNION ALL SELECT 'ele_mof_div', mof_div_code FROM pay_voucher WHERE pay_app_id = :k
UNION ALL SELECT 'pay_voucher_bill', pay_cert_no FROM pay_voucher_bill WHERE pay_app_id = :k
UNION ALL SELECT 'gl_voucher', 'GL' || pay_cert_no FROM pay_voucher_bill WHERE pay_app_id = :k
UNION ALL SELECT 'gl_voucher_line', 'GL' || pay_cert_no FROM pay_voucher_bill WHERE pay_app_id = :k
UNION ALL SELECT 'pay_bank_receipt', r.receipt_no FROM pay_bank_receipt r
    JOIN pay_voucher_bill v ON v.pay_cert_no = r.pay_cert_no WHERE v.pay_app_id = :k
UNION ALL SELECT 'pay_clearing', lqd_cert_no FROM pay_voucher_bill WHERE pay_app_id = :k AND lqd_cert_no IS NOT NULL
"""
BILL_CHAIN = PAYMENT_CHAIN.replace(":k", "(SELECT pay_app_id FROM pay_voucher_bill WHERE pay_cert_no = :k)")
# A payment that went the whole way (receipt and clearing) under a plan-controlled indicator.
FULL_PAYMENT = """
SELECT p.pay_app_id FROM pay_voucher p JOIN pay_voucher_bill v ON v.pay_app_id = p.pay_app_id
JOIN pay_bank_receipt r ON r.pay_cert_no = v.pay_cert_no
WHERE v.lqd_cert_no IS NOT NULL AND p.plan_id IS NOT NULL AND p.pay_app_date BETWEEN '2026-03-01' AND '2026-10-31'
ORDER BY p.pay_app_id LIMIT 1 OFFSET {n}
"""


@dataclass(frozen=True)
class Fault:
    name: str  # what is wrong, as a finance user would say it
    level: int
    table: str  # the table of the row that must be flagged
    pick: str  # SQL giving the key of the row to break
    change: tuple[str, ...]  # statements with :k
    linked: str = ""  # SQL with :k giving (table, key) rows that may be flagged as well
    found_as: str = ""  # SQL with :k giving (table, key) rows of which one flagged also counts as found


def payment(n: int) -> str:
    return FULL_PAYMENT.format(n=n)


FAULTS = (
    # --- level 1: structure ------------------------------------------------------------------------------------
    Fault(
        "支付申请引用了不存在的指标",
        1,
        "pay_voucher",
        payment(0),
        ("UPDATE pay_voucher SET bgt_id = 'X' || bgt_id WHERE pay_app_id = :k",),
        PAYMENT_CHAIN,
    ),
    Fault(
        "支付申请的区划与指标不一致",
        1,
        "pay_voucher",
        payment(1),
        ("UPDATE pay_voucher SET mof_div_code = '150000000' WHERE pay_app_id = :k",),
        PAYMENT_CHAIN + " UNION ALL SELECT 'ele_mof_div', '150000000'",
    ),
    Fault(
        "支付申请的预算单位与指标不一致",
        1,
        "pay_voucher",
        payment(2),
        (
            "UPDATE pay_voucher SET agency_code = (SELECT min(agency_code) FROM ele_agency "
            "WHERE agency_code <> pay_voucher.agency_code) WHERE pay_app_id = :k",
        ),
        PAYMENT_CHAIN,
    ),
    Fault(
        "支付申请的年度与指标不一致",
        1,
        "pay_voucher",
        payment(3),
        ("UPDATE pay_voucher SET fiscal_year = fiscal_year - 1 WHERE pay_app_id = :k",),
        PAYMENT_CHAIN,
    ),
    Fault(
        "支付金额为负数（流程各环节一致地为负）",
        1,
        "pay_voucher",
        payment(4),
        (
            "UPDATE ba_bgt_info SET pay_app_amt = pay_app_amt - 2 * (SELECT pay_amt FROM pay_voucher "
            "WHERE pay_app_id = :k), cur_amt = cur_amt + 2 * (SELECT pay_amt FROM pay_voucher WHERE pay_app_id = :k) "
            "WHERE bgt_id = (SELECT bgt_id FROM pay_voucher WHERE pay_app_id = :k)",
            "UPDATE pay_voucher SET pay_amt = -pay_amt WHERE pay_app_id = :k",
        ),
        PAYMENT_CHAIN,
    ),
    Fault(
        "支付金额有三位小数",
        1,
        "pay_voucher",
        payment(5),
        ("UPDATE pay_voucher SET pay_amt = pay_amt + 0.004 WHERE pay_app_id = :k",),
        PAYMENT_CHAIN,
    ),
    Fault(
        "支付日期不在预算年度内",
        1,
        "pay_voucher",
        payment(6),
        ("UPDATE pay_voucher SET pay_app_date = '2025-12-30' WHERE pay_app_id = :k",),
        PAYMENT_CHAIN,
    ),
    Fault(
        "支付凭证日期早于支付申请日期",
        1,
        "pay_voucher_bill",
        "SELECT v.pay_cert_no FROM pay_voucher_bill v JOIN pay_voucher p ON p.pay_app_id = v.pay_app_id "
        f"WHERE p.pay_app_id = ({payment(7)})",
        ("UPDATE pay_voucher_bill SET vou_date = date(vou_date, '-10 day') WHERE pay_cert_no = :k",),
        BILL_CHAIN,
    ),
    Fault(
        "银行回单日期早于凭证日期",
        1,
        "pay_bank_receipt",
        "SELECT r.receipt_no FROM pay_bank_receipt r JOIN pay_voucher_bill v ON v.pay_cert_no = r.pay_cert_no "
        f"WHERE v.pay_app_id = ({payment(8)})",
        ("UPDATE pay_bank_receipt SET receipt_date = date(receipt_date, '-20 day') WHERE receipt_no = :k",),
        BILL_CHAIN.replace(":k", "(SELECT pay_cert_no FROM pay_bank_receipt WHERE receipt_no = :k)"),
    ),
    Fault(
        "清算日期早于银行支付日期",
        1,
        "pay_voucher_bill",
        f"SELECT v.pay_cert_no FROM pay_voucher_bill v WHERE v.pay_app_id = ({payment(9)})",
        ("UPDATE pay_voucher_bill SET act_lqd_date = date(xpay_date, '-5 day') WHERE pay_cert_no = :k",),
        BILL_CHAIN,
    ),
    Fault(
        "支付申请使用值集中没有的支出功能分类",
        1,
        "pay_voucher",
        payment(10),
        ("UPDATE pay_voucher SET exp_func_code = '2999999' WHERE pay_app_id = :k",),
        PAYMENT_CHAIN,
    ),
    Fault(
        "支付申请使用非末级部门预算经济分类",
        1,
        "pay_voucher",
        payment(11),
        ("UPDATE pay_voucher SET dep_bgt_eco_code = substr(dep_bgt_eco_code, 1, 3) WHERE pay_app_id = :k",),
        PAYMENT_CHAIN,
    ),
    Fault(
        "支付挂在别的月份的用款计划上",
        1,
        "pay_voucher",
        "SELECT p.pay_app_id FROM pay_voucher p WHERE p.plan_id IS NOT NULL AND EXISTS (SELECT 1 FROM "
        "pay_plan_voucher o WHERE o.bgt_id = p.bgt_id AND o.plan_id <> p.plan_id) ORDER BY p.pay_app_id LIMIT 1",
        (
            "UPDATE pay_voucher SET plan_id = (SELECT min(o.plan_id) FROM pay_plan_voucher o "
            "WHERE o.bgt_id = pay_voucher.bgt_id AND o.plan_id <> pay_voucher.plan_id) WHERE pay_app_id = :k",
        ),
        PAYMENT_CHAIN
        + " UNION ALL SELECT 'pay_plan_voucher', o.plan_id FROM pay_plan_voucher o JOIN pay_voucher p"
        " ON p.bgt_id = o.bgt_id WHERE p.pay_app_id = :k",
    ),
    Fault(
        "人员的预算单位不存在",
        1,
        "person_info",
        "SELECT person_id FROM person_info WHERE status = '在职' ORDER BY person_id LIMIT 1 OFFSET 3",
        ("UPDATE person_info SET agency_code = '9' || agency_code WHERE person_id = :k",),
        "SELECT 'sys_user', user_id FROM sys_user WHERE person_id = :k"
        " UNION ALL SELECT 'pay_payee_info', payee_acct_no FROM pay_payee_info WHERE person_id = :k"
        " UNION ALL SELECT 'pay_salary_detail', run_id FROM pay_salary_detail WHERE person_id = :k",
    ),
    Fault(
        "收款账号不在收款人信息表中",
        1,
        "pay_voucher",
        payment(12),
        (
            "UPDATE pay_voucher SET payee_acct_no = '62' || substr(payee_acct_no, 3) || '9' WHERE pay_app_id = :k",
        ),
        PAYMENT_CHAIN,
    ),
    # --- level 2: flow ------------------------------------------------------------------------------------------
    Fault(
        "支付申请没有生成支付凭证",
        2,
        "pay_voucher",
        payment(13),
        (
            "DELETE FROM pay_bank_receipt WHERE pay_cert_no IN (SELECT pay_cert_no FROM pay_voucher_bill "
            "WHERE pay_app_id = :k)",
            "DELETE FROM gl_voucher WHERE pay_cert_no IN (SELECT pay_cert_no FROM pay_voucher_bill "
            "WHERE pay_app_id = :k)",
            "UPDATE pay_clearing SET vou_count = vou_count - 1, amount = amount - (SELECT xpay_amt FROM "
            "pay_voucher_bill WHERE pay_app_id = :k) WHERE lqd_cert_no = (SELECT lqd_cert_no FROM pay_voucher_bill "
            "WHERE pay_app_id = :k)",
            "DELETE FROM pay_voucher_bill WHERE pay_app_id = :k",
        ),
        PAYMENT_CHAIN,
    ),
    Fault(
        "一笔支付申请生成了两张支付凭证",
        2,
        "pay_voucher",
        payment(14),
        (
            "INSERT INTO pay_voucher_bill SELECT pay_cert_no || 'X', pay_app_id, mof_div_code, fiscal_year, "
            "bank_code, vou_date, pay_amt, NULL, NULL, NULL, NULL, NULL, send_user_id, sign_status "
            "FROM pay_voucher_bill WHERE pay_app_id = :k",
        ),
        PAYMENT_CHAIN
        + " UNION ALL SELECT 'pay_voucher_bill', pay_cert_no || 'X' FROM pay_voucher_bill WHERE pay_app_id = :k",
    ),
    Fault(
        "支付凭证金额与支付申请不符",
        2,
        "pay_voucher_bill",
        f"SELECT pay_cert_no FROM pay_voucher_bill WHERE pay_app_id = ({payment(15)})",
        ("UPDATE pay_voucher_bill SET pay_amt = pay_amt + 0.01 WHERE pay_cert_no = :k",),
        BILL_CHAIN,
    ),
    Fault(
        "清算凭证的笔数与所清算的支付凭证不符",
        2,
        "pay_clearing",
        f"SELECT lqd_cert_no FROM pay_voucher_bill WHERE pay_app_id = ({payment(16)})",
        ("UPDATE pay_clearing SET vou_count = vou_count + 1 WHERE lqd_cert_no = :k",),
    ),
    Fault(
        "清算金额与所清算的支付凭证合计不符",
        2,
        "pay_clearing",
        f"SELECT lqd_cert_no FROM pay_voucher_bill WHERE pay_app_id = ({payment(17)})",
        ("UPDATE pay_clearing SET amount = amount + 100 WHERE lqd_cert_no = :k",),
    ),
    Fault(
        "指标已支付金额与支付合计不符",
        2,
        "ba_bgt_info",
        f"SELECT bgt_id FROM pay_voucher WHERE pay_app_id = ({payment(18)})",
        ("UPDATE ba_bgt_info SET pay_app_amt = pay_app_amt + 1, cur_amt = cur_amt - 1 WHERE bgt_id = :k",),
        "SELECT 'ba_bgt_balance', :k UNION ALL SELECT 'ba_bgt_carryovers', 'C' || :k",
    ),
    Fault(
        "指标可用余额不等于指标金额减已支付",
        2,
        "ba_bgt_info",
        f"SELECT bgt_id FROM pay_voucher WHERE pay_app_id = ({payment(19)})",
        ("UPDATE ba_bgt_info SET cur_amt = cur_amt + 1 WHERE bgt_id = :k",),
        "SELECT 'ba_bgt_balance', :k UNION ALL SELECT 'ba_bgt_carryovers', 'C' || :k",
    ),
    Fault(
        "支付凭证没有记账",
        2,
        "pay_voucher_bill",
        f"SELECT pay_cert_no FROM pay_voucher_bill WHERE pay_app_id = ({payment(20)})",
        (
            "DELETE FROM gl_voucher_line WHERE gl_vou_id IN (SELECT gl_vou_id FROM gl_voucher WHERE pay_cert_no = :k)",
            "DELETE FROM gl_voucher WHERE pay_cert_no = :k",
        ),
        BILL_CHAIN,
    ),
    Fault(
        "记账金额与支付凭证不符",
        2,
        "gl_voucher",
        f"SELECT 'GL' || pay_cert_no FROM pay_voucher_bill WHERE pay_app_id = ({payment(21)})",
        (  # the voucher stays balanced: both lines and the header one yuan more
            "UPDATE gl_voucher SET amount = amount + 1 WHERE gl_vou_id = :k",
            "UPDATE gl_voucher_line SET debit_amt = debit_amt + 1 WHERE gl_vou_id = :k AND debit_amt > 0",
            "UPDATE gl_voucher_line SET credit_amt = credit_amt + 1 WHERE gl_vou_id = :k AND credit_amt > 0",
        ),
        BILL_CHAIN.replace(":k", "(SELECT pay_cert_no FROM gl_voucher WHERE gl_vou_id = :k)"),
    ),
    Fault(
        "银行回单金额与凭证实付金额不符",
        2,
        "pay_bank_receipt",
        "SELECT r.receipt_no FROM pay_bank_receipt r JOIN pay_voucher_bill v ON v.pay_cert_no = r.pay_cert_no "
        f"WHERE v.pay_app_id = ({payment(22)})",
        ("UPDATE pay_bank_receipt SET amount = amount + 1 WHERE receipt_no = :k",),
        BILL_CHAIN.replace(":k", "(SELECT pay_cert_no FROM pay_bank_receipt WHERE receipt_no = :k)"),
        found_as="SELECT 'pay_voucher_bill', pay_cert_no FROM pay_bank_receipt WHERE receipt_no = :k",
    ),
    Fault(
        "凭证已登记银行实付却没有回单",
        2,
        "pay_voucher_bill",
        f"SELECT pay_cert_no FROM pay_voucher_bill WHERE pay_app_id = ({payment(23)})",
        ("DELETE FROM pay_bank_receipt WHERE pay_cert_no = :k",),
        BILL_CHAIN,
    ),
    Fault(
        "指标超支：可用余额被改成负数（金额与余额同步改小）",
        2,
        "ba_bgt_info",
        f"SELECT bgt_id FROM pay_voucher WHERE pay_app_id = ({payment(32)})",
        (
            "UPDATE ba_bgt_info SET amount = pay_app_amt - 500, cur_amt = -500 WHERE bgt_id = :k",
            "UPDATE ba_bgt_balance SET bal_amt = -500 WHERE bgt_id = :k",
            "DELETE FROM ba_bgt_carryovers WHERE ori_bgt_id = :k",
        ),
        "SELECT 'ba_bgt_balance', :k UNION ALL SELECT 'pay_plan_voucher', plan_id FROM pay_plan_voucher"
        " WHERE bgt_id = :k UNION ALL SELECT 'pay_voucher', pay_app_id FROM pay_voucher WHERE bgt_id = :k",
    ),
    Fault(
        "结转到了错误的年度",
        1,
        "ba_bgt_carryovers",
        "SELECT carry_id FROM ba_bgt_carryovers ORDER BY carry_id LIMIT 1 OFFSET 4",
        ("UPDATE ba_bgt_carryovers SET next_year = next_year + 1 WHERE carry_id = :k",),
    ),
    Fault(
        "银行回单对应的支付凭证不存在",
        1,
        "pay_bank_receipt",
        "SELECT r.receipt_no FROM pay_bank_receipt r JOIN pay_voucher_bill v ON v.pay_cert_no = r.pay_cert_no "
        f"WHERE v.pay_app_id = ({payment(33)})",
        ("UPDATE pay_bank_receipt SET pay_cert_no = 'Z' || pay_cert_no WHERE receipt_no = :k",),
        BILL_CHAIN.replace(":k", "(SELECT pay_cert_no FROM pay_bank_receipt WHERE receipt_no = :k)"),
    ),
    Fault(
        "指标所属项目不存在",
        1,
        "ba_bgt_info",
        f"SELECT bgt_id FROM pay_voucher WHERE pay_app_id = ({payment(34)})",
        ("UPDATE ba_bgt_info SET pro_code = '9' || substr(pro_code, 2) WHERE bgt_id = :k",),
        "SELECT 'pay_voucher', pay_app_id FROM pay_voucher WHERE bgt_id = :k UNION ALL SELECT 'pm_project_info', "
        "pro_code FROM ba_bgt_info WHERE bgt_id = :k UNION ALL SELECT 'ba_bgt_balance', :k",
    ),
    Fault(
        "不同单位的两个人登记了同一身份证号",
        3,
        "person_info",
        "SELECT max(person_id) FROM person_info WHERE status = '在职'",
        (
            "UPDATE person_info SET iden_no = (SELECT min(o.iden_no) FROM person_info o "
            "WHERE o.agency_code <> person_info.agency_code) WHERE person_id = :k",
        ),
        "SELECT 'person_info', o.person_id FROM person_info o WHERE o.iden_no = (SELECT min(x.iden_no) FROM "
        "person_info x WHERE x.agency_code <> (SELECT agency_code FROM person_info WHERE person_id = :k))",
    ),
    Fault(
        "支付方式代码不在值集中",
        1,
        "pay_voucher",
        payment(35),
        ("UPDATE pay_voucher SET pay_type_code = '19' WHERE pay_app_id = :k",),
        PAYMENT_CHAIN,
    ),
    Fault(
        "用户被授予了不存在的角色",
        1,
        "sys_user_role",
        "SELECT min(user_id) FROM sys_user_role WHERE role_id = 'R06'",
        ("UPDATE sys_user_role SET role_id = 'R99' WHERE user_id = :k AND role_id = 'R06'",),
        "SELECT 'sys_user', :k",
    ),
    Fault(
        "单位零余额账户的开户银行不存在",
        1,
        "agency_account",
        "SELECT min(account_no) FROM agency_account",
        ("UPDATE agency_account SET bank_code = 'B999' WHERE account_no = :k",),
        "SELECT 'pay_voucher', pay_app_id FROM pay_voucher WHERE payer_acct_no = :k UNION ALL SELECT "
        "'pay_voucher_bill', v.pay_cert_no FROM pay_voucher_bill v JOIN pay_voucher p ON p.pay_app_id = v.pay_app_id "
        "WHERE p.payer_acct_no = :k",
    ),
    Fault(
        "支付凭证的代理银行与付款账户的开户银行不一致",
        1,
        "pay_voucher_bill",
        f"SELECT pay_cert_no FROM pay_voucher_bill WHERE pay_app_id = ({payment(36)})",
        (
            "UPDATE pay_voucher_bill SET bank_code = (SELECT min(bank_code) FROM ele_bank "
            "WHERE bank_code <> pay_voucher_bill.bank_code) WHERE pay_cert_no = :k",
        ),
        BILL_CHAIN,
    ),
    # --- level 3: master data --------------------------------------------------------------------------------
    Fault(
        "在职人员登记了离职日期",
        3,
        "person_info",
        "SELECT person_id FROM person_info WHERE status = '在职' ORDER BY person_id LIMIT 1 OFFSET 5",
        ("UPDATE person_info SET leave_date = '2026-06-30' WHERE person_id = :k",),
        "SELECT 'sys_user', user_id FROM sys_user WHERE person_id = :k",
    ),
    Fault(
        "身份证号的出生日期表明此人还是儿童",
        3,
        "person_info",
        "SELECT person_id FROM person_info WHERE status = '在职' ORDER BY person_id LIMIT 1 OFFSET 6",
        ("UPDATE person_info SET iden_no = :child_id WHERE person_id = :k",),
        "SELECT 'sys_user', user_id FROM sys_user WHERE person_id = :k",
    ),
    Fault(
        "同一号牌登记在两个单位的车辆上",
        3,
        "asset_card",
        "SELECT max(asset_id) FROM asset_card WHERE plate_no IS NOT NULL",
        (
            "UPDATE asset_card SET plate_no = (SELECT min(plate_no) FROM asset_card o WHERE o.plate_no IS NOT NULL "
            "AND o.agency_code <> asset_card.agency_code) WHERE asset_id = :k",
        ),
        "SELECT 'asset_card', asset_id FROM asset_card WHERE plate_no = (SELECT min(o.plate_no) FROM asset_card o "
        "WHERE o.plate_no IS NOT NULL AND o.agency_code <> (SELECT agency_code FROM asset_card WHERE asset_id = :k))",
    ),
    # --- level 4: accounting -----------------------------------------------------------------------------------
    Fault(
        "付款给本单位的零余额账户",
        4,
        "pay_voucher",
        payment(24),
        (
            "UPDATE pay_voucher SET payee_acct_no = payer_acct_no, payee_acct_name = (SELECT account_name FROM "
            "agency_account WHERE account_no = pay_voucher.payer_acct_no) WHERE pay_app_id = :k",
        ),
        PAYMENT_CHAIN,
    ),
    Fault(
        "记账的借贷科目颠倒",
        4,
        "gl_voucher",
        f"SELECT 'GL' || pay_cert_no FROM pay_voucher_bill WHERE pay_app_id = ({payment(25)})",
        ("UPDATE gl_voucher_line SET debit_amt = credit_amt, credit_amt = debit_amt WHERE gl_vou_id = :k",),
        BILL_CHAIN.replace(":k", "(SELECT pay_cert_no FROM gl_voucher WHERE gl_vou_id = :k)"),
    ),
    # --- level 5: who acted ------------------------------------------------------------------------------------
    Fault(
        "系统管理员审核了支付",
        5,
        "pay_voucher",
        payment(26),
        (
            "UPDATE pay_voucher SET audit_user_id = (SELECT min(ur.user_id) FROM sys_user_role ur "
            "WHERE ur.role_id = 'R03') WHERE pay_app_id = :k",
        ),
        PAYMENT_CHAIN,
    ),
    Fault(
        "没有审核角色的单位录入员审核了支付",
        5,
        "pay_voucher",
        payment(27),
        (
            "UPDATE pay_voucher SET audit_user_id = (SELECT min(u.user_id) FROM sys_user u JOIN sys_user_role ur "
            "ON ur.user_id = u.user_id WHERE ur.role_id = 'R01' AND u.agency_code <> pay_voucher.agency_code) "
            "WHERE pay_app_id = :k",
        ),
        PAYMENT_CHAIN,
    ),
    Fault(
        "录入人账号不存在",
        5,
        "pay_voucher",
        payment(28),
        ("UPDATE pay_voucher SET input_user_id = 'U0000000000' WHERE pay_app_id = :k",),
        PAYMENT_CHAIN,
    ),
    Fault(
        "录入人为空",
        5,
        "pay_voucher",
        payment(29),
        ("UPDATE pay_voucher SET input_user_id = '' WHERE pay_app_id = :k",),
        PAYMENT_CHAIN,
    ),
    Fault(
        "其他单位的录入员录入了本单位的支付",
        5,
        "pay_voucher",
        payment(30),
        (
            "UPDATE pay_voucher SET input_user_id = (SELECT min(u.user_id) FROM sys_user u JOIN sys_user_role ur "
            "ON ur.user_id = u.user_id WHERE ur.role_id = 'R01' AND u.agency_code <> pay_voucher.agency_code) "
            "WHERE pay_app_id = :k",
        ),
        PAYMENT_CHAIN,
    ),
    # --- level 6: plausibility ---------------------------------------------------------------------------------
    Fault(
        "支付金额多录了一位（流程各环节一致）",
        6,
        "pay_voucher",
        # A payment with at least three others of its agency, economic item and month to be compared with.
        "SELECT p.pay_app_id FROM pay_voucher p JOIN pay_voucher_bill v ON v.pay_app_id = p.pay_app_id "
        "WHERE p.ori_pay_app_id IS NULL AND v.lqd_cert_no IS NOT NULL AND (SELECT COUNT(*) FROM pay_voucher q "
        "WHERE q.agency_code = p.agency_code AND q.dep_bgt_eco_code = p.dep_bgt_eco_code "
        "AND substr(q.pay_app_date, 1, 7) = substr(p.pay_app_date, 1, 7)) >= 4 ORDER BY p.pay_app_id LIMIT 1",
        (
            "UPDATE ba_bgt_info SET amount = amount + 9 * (SELECT pay_amt FROM pay_voucher WHERE pay_app_id = :k), "
            "pay_app_amt = pay_app_amt + 9 * (SELECT pay_amt FROM pay_voucher WHERE pay_app_id = :k) "
            "WHERE bgt_id = (SELECT bgt_id FROM pay_voucher WHERE pay_app_id = :k)",
            "UPDATE pay_plan_voucher SET plan_amt = plan_amt + 9 * (SELECT pay_amt FROM pay_voucher "
            "WHERE pay_app_id = :k) WHERE plan_id = (SELECT plan_id FROM pay_voucher WHERE pay_app_id = :k)",
            "UPDATE pay_clearing SET amount = amount + 9 * (SELECT pay_amt FROM pay_voucher WHERE pay_app_id = :k) "
            "WHERE lqd_cert_no = (SELECT lqd_cert_no FROM pay_voucher_bill WHERE pay_app_id = :k)",
            "UPDATE pay_bank_receipt SET amount = amount * 10 WHERE pay_cert_no = "
            "(SELECT pay_cert_no FROM pay_voucher_bill WHERE pay_app_id = :k)",
            "UPDATE gl_voucher SET amount = amount * 10 WHERE pay_cert_no = "
            "(SELECT pay_cert_no FROM pay_voucher_bill WHERE pay_app_id = :k)",
            "UPDATE gl_voucher_line SET debit_amt = debit_amt * 10, credit_amt = credit_amt * 10 WHERE gl_vou_id = "
            "(SELECT 'GL' || pay_cert_no FROM pay_voucher_bill WHERE pay_app_id = :k)",
            "UPDATE pay_voucher_bill SET pay_amt = pay_amt * 10, xpay_amt = xpay_amt * 10 WHERE pay_app_id = :k",
            "UPDATE pay_voucher SET pay_amt = pay_amt * 10 WHERE pay_app_id = :k",
        ),
        PAYMENT_CHAIN,
    ),
)


def child_id(region: str = "152500") -> str:
    """A valid 18-digit ID number of someone born in 2016 (GB 11643 check digit)."""
    first17 = f"{region}20160704123"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    folder = tmp_path_factory.mktemp("foreign")
    path = folder / "clean.sqlite3"
    generate(f"sqlite:///{path}", GenerateSpec(payments=600, seed=29, regions="152500000:1"))
    assert flagged(path) == set()
    return path, folder


def flagged(path) -> set[tuple[str, str]]:
    outcomes = run_url(f"sqlite:///{path}", select_rules("all"), Options(as_of=AS_OF, key_cap=100_000))
    errors = [(o.rule.id, o.error) for o in outcomes if o.error]
    assert errors == []
    return set().union(*findings((o.rule.id, o.keys) for o in outcomes if o.count).values())


def apply(path, fault: Fault) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(fault.pick).fetchone()
        assert row and row[0] is not None, f"找不到可破坏的行：{fault.name}"
        key = str(row[0])
        params = {"k": key, "child_id": child_id()}
        linked = {(t, str(k)) for t, k in conn.execute(fault.linked, params)} if fault.linked else set()
        broken = {(fault.table, key)}
        if fault.found_as:
            broken |= {(t, str(k)) for t, k in conn.execute(fault.found_as, params)}
        for statement in fault.change:
            conn.execute(statement, {p: v for p, v in params.items() if f":{p}" in statement})
        conn.commit()
        return masked(conn, broken), masked(conn, linked)
    finally:
        conn.close()


def masked(conn, rows: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Rows as a run reports them: the key masked where its column classifies as sensitive (account numbers …)."""
    out = set()
    for table, key in rows:
        column = next(r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[5] == 1)
        out.add((table, str(mask_key(column, key))))
    return out


@pytest.mark.parametrize("fault", FAULTS, ids=[f"L{f.level}-{i:02d}" for i, f in enumerate(FAULTS)])
def test_a_fault_the_injector_never_makes_is_found_and_nothing_else(clean, fault):
    source, folder = clean
    path = folder / "work.sqlite3"
    with sqlite3.connect(source) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    broken, linked = apply(path, fault)
    found = flagged(path)
    assert broken & found, f"未发现：{fault.name}"
    assert found <= broken | linked, f"误报：{sorted(found - linked - broken)}"
