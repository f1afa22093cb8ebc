"""The sandbox finance database 演练库, as SQLAlchemy Core metadata with the table and column names of DOMAIN.md.

Plain SQLAlchemy (no Django): created the same way on SQLite, PostgreSQL and MariaDB.
"""

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()
Money = Numeric(18, 2)


def code_set(name: str, comment: str) -> Table:
    """An ELE_* code set: a tree of codes with parent, leaf flag and level, each code with its enable flag
    (is_enabled 1/0), validity window (start_date … end_date) and the fiscal year it belongs to. One row per code and
    fiscal year: the set holds last year's, this year's and next year's codes side by side (codes change between
    years), so a code is looked up in the year of its use."""
    return Table(
        name,
        metadata,
        Column("code", String(30), primary_key=True),
        Column("name", String(100), nullable=False),
        Column("parent_code", String(30)),
        Column("is_leaf", SmallInteger, nullable=False),
        Column("level_no", SmallInteger, nullable=False),
        Column("is_enabled", SmallInteger, nullable=False),
        Column("start_date", Date, nullable=False),
        Column("end_date", Date, nullable=False),
        Column("fiscal_year", Integer, primary_key=True),
        comment=comment,
    )


ELE_EXP_FUNC = code_set("ele_exp_func", "支出功能分类科目")
ELE_GOV_BGT_ECO = code_set("ele_gov_bgt_eco", "政府预算支出经济分类")
ELE_DEP_BGT_ECO = code_set("ele_dep_bgt_eco", "部门预算支出经济分类")
ELE_FUND_TYPE = code_set("ele_fund_type", "资金性质")
ELE_PAY_TYPE = code_set("ele_pay_type", "支付方式")
ELE_BGT_TYPE = code_set("ele_bgt_type", "指标类型")
ELE_ASSET_CLASS = code_set("ele_asset_class", "资产分类（国标 GB/T 14885 大类，演练简化）")
# Whether a class is depreciated (土地、文物 are not) and its useful life in years (折旧年限), for the depreciation history.
ELE_ASSET_CLASS.append_column(Column("is_depreciable", SmallInteger, nullable=False))
ELE_ASSET_CLASS.append_column(Column("useful_life", SmallInteger))
CODE_SETS = {
    "exp_func_code": ELE_EXP_FUNC,
    "gov_bgt_eco_code": ELE_GOV_BGT_ECO,
    "dep_bgt_eco_code": ELE_DEP_BGT_ECO,
    "fund_type_code": ELE_FUND_TYPE,
    "pay_type_code": ELE_PAY_TYPE,
    "bgt_type_code": ELE_BGT_TYPE,
}

ELE_MOF_DIV = Table(
    "ele_mof_div",
    metadata,
    Column("mof_div_code", String(9), primary_key=True),
    Column("mof_div_name", String(60), nullable=False),
    Column("parent_code", String(9)),
    Column("level_no", SmallInteger, nullable=False),
    comment="财政区划",
)

ELE_BANK = Table(
    "ele_bank",
    metadata,
    Column("bank_code", String(12), primary_key=True),
    Column("bank_name", String(100), nullable=False),
    Column("file_format", String(20), nullable=False),
    comment="代理银行",
)

ELE_AGENCY = Table(
    "ele_agency",
    metadata,
    Column("agency_code", String(20), primary_key=True),
    Column("agency_name", String(100), nullable=False),
    Column("mof_div_code", String(9), nullable=False, index=True),
    Column("fiscal_year", Integer, nullable=False),
    comment="预算单位",
)

AGENCY_ACCOUNT = Table(
    "agency_account",
    metadata,
    Column("account_no", String(32), primary_key=True),
    Column("account_name", String(100), nullable=False),
    Column("agency_code", String(20), nullable=False, index=True),
    Column("bank_code", String(12), nullable=False),
    Column("account_type", String(10), nullable=False),
    comment="单位零余额账户",
)

PAY_PAYEE_INFO = Table(
    "pay_payee_info",
    metadata,
    Column("payee_acct_no", String(32), primary_key=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("agency_code", String(20), nullable=False, index=True),
    Column("payee_acct_name", String(100), nullable=False),
    Column("payee_bank_name", String(100), nullable=False),
    Column("acct_kind", String(10), nullable=False),  # 账户性质：单位账户 / 个人账户 / 公务卡
    Column("person_id", String(20)),  # 个人账户、公务卡的持有人
    comment="收款人信息",
)

PERSON_INFO = Table(
    "person_info",
    metadata,
    Column("person_id", String(20), primary_key=True),
    Column("agency_code", String(20), nullable=False, index=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("person_name", String(30), nullable=False),
    Column("iden_no", String(18), nullable=False),
    Column("status", String(4), nullable=False),
    Column("leave_date", Date),
    Column("entry_date", Date, nullable=False),  # 入职（调入）日期
    Column("status_date", Date, nullable=False),  # 当前状态（在职 / 离职 / 退休 / 调出）的生效日期
    comment="人员信息（工资统发）",
)

PERSON_PAY_ITEM = Table(
    "person_pay_item",
    metadata,
    Column("person_id", String(20), primary_key=True),
    Column("item_code", String(10), primary_key=True),
    Column("item_name", String(30), nullable=False),
    Column("amount", Money, nullable=False),
    comment="工资项目（月标准）",
)

PM_PROJECT_INFO = Table(
    "pm_project_info",
    metadata,
    Column("pro_code", String(21), primary_key=True),
    Column("pro_name", String(100), nullable=False),
    Column("mof_div_code", String(9), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("agency_code", String(20), nullable=False, index=True),
    Column("exp_func_code", String(30), nullable=False),
    Column("tracking_id", String(40)),
    Column("total_amt", Money, nullable=False),
    comment="项目库",
)

BA_BGT_INFO = Table(
    "ba_bgt_info",
    metadata,
    Column("bgt_id", String(32), primary_key=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("agency_code", String(20), nullable=False),
    Column("pro_code", String(21), nullable=False),
    Column("exp_func_code", String(30), nullable=False),
    Column("gov_bgt_eco_code", String(30), nullable=False),
    Column("dep_bgt_eco_code", String(30), nullable=False),
    Column("fund_type_code", String(30), nullable=False),
    Column("bgt_type_code", String(30), nullable=False),
    Column("tracking_id", String(40)),
    Column("amount", Money, nullable=False),
    Column("cur_amt", Money, nullable=False),
    Column("pay_app_amt", Money, nullable=False),
    Column("ori_bgt_id", String(32)),
    Column("bgt_doc_no", String(40)),
    Column("is_plan_control", SmallInteger, nullable=False),
    Column("ori_amount", Money, nullable=False),  # 年初（下达）金额：调整前的指标金额
    Column("adj_amt", Money, nullable=False),  # 调整金额：追加 − 调减 ± 调剂（ba_bgt_adjust 之和）
    Index("ix_ba_bgt_info_agency", "mof_div_code", "agency_code"),
    comment="指标信息",
)

PAY_PLAN_VOUCHER = Table(
    "pay_plan_voucher",
    metadata,
    Column("plan_id", String(32), primary_key=True),
    Column("bgt_id", String(32), nullable=False, index=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("agency_code", String(20), nullable=False),
    Column("plan_month", SmallInteger, nullable=False),
    Column("exp_func_code", String(30), nullable=False),
    Column("dep_bgt_eco_code", String(30), nullable=False),
    Column("fund_type_code", String(30), nullable=False),
    Column("plan_amt", Money, nullable=False),
    comment="用款计划",
)

PAY_VOUCHER = Table(
    "pay_voucher",
    metadata,
    Column("pay_app_id", String(32), primary_key=True),
    Column("pay_app_no", String(30), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("mof_div_code", String(9), nullable=False),
    Column("agency_code", String(20), nullable=False),
    Column("bgt_id", String(32), nullable=False, index=True),
    Column("plan_id", String(32), index=True),
    Column("pro_code", String(21), nullable=False),
    Column("exp_func_code", String(30), nullable=False),
    Column("gov_bgt_eco_code", String(30), nullable=False),
    Column("dep_bgt_eco_code", String(30), nullable=False),
    Column("fund_type_code", String(30), nullable=False),
    Column("pay_type_code", String(30), nullable=False),
    Column("tracking_id", String(40)),
    Column("pay_app_date", Date, nullable=False),
    Column("pay_amt", Money, nullable=False),
    Column("payer_acct_no", String(32), nullable=False),
    Column("payee_acct_no", String(32), nullable=False),
    Column("payee_acct_name", String(100), nullable=False),
    Column("payee_bank_name", String(100), nullable=False),
    Column("use_des", String(200), nullable=False),
    Column("input_user_id", String(20), nullable=False),
    Column("audit_user_id", String(20), nullable=False),
    Column("ori_pay_app_id", String(32)),  # 重新支付：被退款的原支付申请
    Column("ori_back_id", String(32)),  # 重新支付：对应的退款
    UniqueConstraint("fiscal_year", "mof_div_code", "pay_app_no", name="uq_pay_voucher_no"),
    comment="国库集中支付申请",
)

PAY_VOUCHER_BILL = Table(
    "pay_voucher_bill",
    metadata,
    Column("pay_cert_no", String(30), primary_key=True),
    Column("pay_app_id", String(32), nullable=False, index=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("bank_code", String(12), nullable=False, index=True),
    Column("vou_date", Date, nullable=False),
    Column("pay_amt", Money, nullable=False),
    Column("xpay_amt", Money),
    Column("xpay_date", Date),
    Column("agent_business_no", String(40)),
    Column("act_lqd_date", Date),
    Column("lqd_cert_no", String(30)),
    Column("send_user_id", String(20), nullable=False),
    Column("sign_status", String(8), nullable=False),  # 签章状态：已签章 / 签章失败
    comment="支付凭证",
)

PAY_BANK_RECEIPT = Table(
    "pay_bank_receipt",
    metadata,
    Column("receipt_no", String(40), primary_key=True),
    Column("pay_cert_no", String(30), nullable=False, index=True),
    Column("bank_code", String(12), nullable=False),
    Column("receipt_date", Date, nullable=False),
    Column("amount", Money, nullable=False),
    Column("agent_business_no", String(40), nullable=False),
    comment="银行回单",
)

PAY_CLEARING = Table(
    "pay_clearing",
    metadata,
    Column("lqd_cert_no", String(30), primary_key=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("bank_code", String(12), nullable=False),
    Column("lqd_date", Date, nullable=False),
    Column("vou_count", Integer, nullable=False),
    Column("amount", Money, nullable=False),
    comment="与人民银行的清算（划款凭证）",
)

PAY_BACK_INFO = Table(
    "pay_back_info",
    metadata,
    Column("back_id", String(32), primary_key=True),
    Column("pay_cert_no", String(30), nullable=False, index=True),
    Column("back_date", Date, nullable=False),
    Column("back_amt", Money, nullable=False),
    Column("back_reason", String(100), nullable=False),
    comment="退款",
)

GL_VOUCHER = Table(
    "gl_voucher",
    metadata,
    Column("gl_vou_id", String(32), primary_key=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("pay_cert_no", String(30), index=True),  # 来源单据：支付、重新支付的支付凭证号（退款为空）
    Column("vou_date", Date, nullable=False),
    Column("exp_func_code", String(30)),  # 支出要素：支付、退款、重新支付带，收入凭证为空
    Column("dep_bgt_eco_code", String(30)),
    Column("fund_type_code", String(30)),
    Column("amount", Money, nullable=False),  # 凭证金额（借方合计 = 贷方合计）
    Column("bus_kind", String(8), nullable=False),  # 业务类型：支付 / 退款 / 重新支付 / 收入
    Column("back_id", String(32), index=True),  # 来源单据：退款编号（支付、重新支付为空）
    Column("maker_user_id", String(20), nullable=False),  # 制单人（机制凭证为系统账号）
    comment="总账凭证头（财政总预算会计，由支付、退款、重新支付生成的机制凭证）",
)

BA_BGT_BALANCE = Table(
    "ba_bgt_balance",
    metadata,
    Column("bgt_id", String(32), primary_key=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("bal_amt", Money, nullable=False),
    comment="年末指标余额",
)

BA_BGT_CARRYOVERS = Table(
    "ba_bgt_carryovers",
    metadata,
    Column("carry_id", String(32), primary_key=True),
    Column("ori_bgt_id", String(32), nullable=False, unique=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("next_year", Integer, nullable=False),
    Column("carry_amt", Money, nullable=False),
    comment="结转结余（下年初数）",
)

SYS_USER = Table(
    "sys_user",
    metadata,
    Column("user_id", String(20), primary_key=True),
    Column("user_code", String(30), nullable=False, unique=True),
    Column("user_name", String(30), nullable=False),
    Column("mof_div_code", String(9), nullable=False),
    Column("agency_code", String(20)),
    Column("person_id", String(20)),
    Column("is_enabled", Boolean, nullable=False),
    Column("last_login_time", DateTime),
    Column("is_public", SmallInteger, nullable=False),  # 公共账号（多人共用的科室账号）：1 是，0 否
    comment="财政系统用户",
)

SYS_ROLE = Table(
    "sys_role",
    metadata,
    Column("role_id", String(20), primary_key=True),
    Column("role_name", String(50), nullable=False),
    Column("admin_kind", String(10)),
    comment="财政系统角色（admin_kind：system/security/audit 为三员）",
)

SYS_USER_ROLE = Table(
    "sys_user_role",
    metadata,
    Column("user_id", String(20), ForeignKey("sys_user.user_id"), primary_key=True),
    Column("role_id", String(20), ForeignKey("sys_role.role_id"), primary_key=True),
    # 授权的有效期：一个用户的一个角色可以先后授予多次，每次一行；valid_to 为空表示至今有效。
    Column("valid_from", Date, primary_key=True),
    Column("valid_to", Date),
    comment="用户授权（含有效期）",
)

ASSET_CARD = Table(
    "asset_card",
    metadata,
    Column("asset_id", String(32), primary_key=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("agency_code", String(20), nullable=False, index=True),
    Column("asset_no", String(40), nullable=False),
    Column("asset_class_code", String(20), nullable=False),
    Column("asset_name", String(100), nullable=False),
    Column("acquire_date", Date, nullable=False),
    Column("book_date", Date, nullable=False),
    Column("original_value", Money, nullable=False),
    Column("accum_depr", Money, nullable=False),
    Column("net_value", Money, nullable=False),
    Column("status", String(8), nullable=False),
    Column("disposal_date", Date),
    Column("plate_no", String(12)),
    Column("area", Numeric(14, 2)),
    comment="资产卡片",
)

PAY_SALARY_RUN = Table(
    "pay_salary_run",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("agency_code", String(20), nullable=False, index=True),
    Column("pay_month", SmallInteger, nullable=False),
    Column("head_count", Integer, nullable=False),
    Column("total_amt", Money, nullable=False),
    comment="工资统发（每单位每月一批）",
)

PAY_SALARY_DETAIL = Table(
    "pay_salary_detail",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("person_id", String(20), primary_key=True),
    Column("item_code", String(10), primary_key=True),
    Column("amount", Money, nullable=False),
    Index("ix_pay_salary_detail_person", "person_id"),
    comment="工资统发明细（人员 × 工资项目）",
)

ASSET_DEPR = Table(
    "asset_depr",
    metadata,
    Column("asset_id", String(32), primary_key=True),
    Column("depr_period", String(7), primary_key=True),  # 计提期间 YYYY-MM
    Column("amount", Money, nullable=False),
    comment="资产折旧明细（按月计提）",
)

SANDBOX_INFO = Table(
    "sandbox_info",
    metadata,
    Column("info_key", String(30), primary_key=True),
    Column("info_value", Text, nullable=False),  # the generation spec as JSON: one entry per fault type
    comment="生成参数（种子、规模、截止日期）",
)


PAY_PLAN_DETAIL = Table(
    "pay_plan_detail",
    metadata,
    Column("plan_detail_id", String(40), primary_key=True),
    Column("plan_id", String(32), nullable=False, index=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("agency_code", String(20), nullable=False),
    Column("plan_month", SmallInteger, nullable=False),
    Column("exp_func_code", String(30), nullable=False),
    Column("dep_bgt_eco_code", String(30), nullable=False),
    Column("fund_type_code", String(30), nullable=False),
    Column("plan_amt", Money, nullable=False),
    comment="用款计划明细",
)

BA_BGT_ADJUST = Table(
    "ba_bgt_adjust",
    metadata,
    Column("adjust_id", String(40), primary_key=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("agency_code", String(20), nullable=False),
    Column("adjust_kind", String(4), nullable=False),  # 调整类型：追加 / 调减 / 调剂
    Column("transfer_dir", String(4)),  # 调剂方向：调出 / 调入（调剂以外为空）
    Column("bgt_id", String(32), nullable=False, index=True),
    Column("counter_bgt_id", String(32)),  # 调剂的对方指标
    Column("counter_adjust_id", String(40)),  # 调剂的对方调整单（调出对调入）
    Column("adjust_amt", Money, nullable=False),  # 调整金额（正数，方向由类型与调剂方向决定）
    Column("adjust_date", Date, nullable=False),
    Column("adjust_doc_no", String(40), nullable=False),
    comment="指标调整",
)

ELE_ACCT_SUBJECT = Table(
    "ele_acct_subject",
    metadata,
    Column("code", String(20), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("category", String(8), nullable=False),  # 科目类别：资产 / 负债 / 净资产 / 收入 / 支出
    Column("balance_side", String(2), nullable=False),  # 余额方向：借 / 贷
    Column("parent_code", String(20)),
    Column("is_leaf", SmallInteger, nullable=False),
    Column("level_no", SmallInteger, nullable=False),
    Column("is_enabled", SmallInteger, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    comment="会计科目（财政总预算会计制度，财库〔2015〕192号）",
)

GL_VOUCHER_LINE = Table(
    "gl_voucher_line",
    metadata,
    Column("gl_vou_id", String(32), primary_key=True),
    Column("line_no", SmallInteger, primary_key=True),
    Column("mof_div_code", String(9), nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("vou_date", Date, nullable=False),
    Column("subject_code", String(20), nullable=False),
    Column("debit_amt", Money, nullable=False),
    Column("credit_amt", Money, nullable=False),
    Column("exp_func_code", String(30)),  # 支出类科目的分录带功能科目、经济分类、资金性质；国库存款分录为空
    Column("dep_bgt_eco_code", String(30)),
    Column("fund_type_code", String(30)),
    comment="总账凭证分录（借贷复式）",
)
