"""Sandbox generator 演练库生成: a coherent fiscal year for a city/league and its counties, faults on request.

Plain Python over SQLAlchemy Core (no Django). Deterministic for a seed: every random choice comes from a
``random.Random`` seeded from (seed, region, agency). Amounts are integer fen (分) until written.
Rows stream to the database agency by agency (COPY on PostgreSQL, executemany elsewhere), so memory stays flat
whatever the scale. Faults are decided up front and applied while rows are generated, so that every derived
row (balances, receipts, clearing, ledger) stays consistent with the fault and only the targeted rule breaks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import Table, create_engine
from sqlalchemy.engine import Engine, make_url

from caiwei.bizcalendar.engine import china_calendar, is_business_day

from . import codes
from .schema import (
    AGENCY_ACCOUNT,
    ASSET_CARD,
    ASSET_DEPR,
    BA_BGT_ADJUST,
    BA_BGT_BALANCE,
    BA_BGT_CARRYOVERS,
    BA_BGT_INFO,
    ELE_ACCT_SUBJECT,
    ELE_AGENCY,
    ELE_ASSET_CLASS,
    ELE_BANK,
    ELE_BGT_TYPE,
    ELE_DEP_BGT_ECO,
    ELE_EXP_FUNC,
    ELE_FUND_TYPE,
    ELE_GOV_BGT_ECO,
    ELE_MOF_DIV,
    ELE_PAY_TYPE,
    GL_VOUCHER,
    GL_VOUCHER_LINE,
    PAY_BACK_INFO,
    PAY_BANK_RECEIPT,
    PAY_CLEARING,
    PAY_PAYEE_INFO,
    PAY_PLAN_DETAIL,
    PAY_PLAN_VOUCHER,
    PAY_SALARY_DETAIL,
    PAY_SALARY_RUN,
    PAY_VOUCHER,
    PAY_VOUCHER_BILL,
    PERSON_INFO,
    PERSON_PAY_ITEM,
    PM_PROJECT_INFO,
    SANDBOX_INFO,
    SYS_ROLE,
    SYS_USER,
    SYS_USER_ROLE,
    metadata,
)

# Fault types. "rows" in the manifest lists, per table, the primary keys a rule would flag.
FAULT_TYPES = (
    "indicator_overspent",  # 指标超支: payments exceed the indicator amount (indicator-only control)
    "plan_over_indicator",  # 计划超指标: monthly plans add up to more than the indicator
    "element_mismatch",  # 要素不一致: a payment's exp_func/dep_eco/fund_type differs from its indicator's
    "tracking_id_lost",  # 追溯码丢失: a payment without the tracking_id its indicator carries
    "code_not_in_set",  # 部标校验: an indicator chain uses an exp_func_code absent from ELE_EXP_FUNC
    "non_leaf_code",  # 非末级: an indicator chain uses a non-leaf exp_func_code
    "duplicate_payment",  # 重复支付: same payee, amount, date and purpose twice
    "voucher_no_receipt",  # 回单超期: a voucher older than N days without a bank receipt
    "paid_not_cleared",  # 清算超期: paid (receipt back) but not cleared after N days
    "bank_amount_mismatch",  # 银行实付金额 ≠ 凭证金额
    "voucher_missing_at_bank",  # 凭证在银行文件中缺失
    "bank_line_no_voucher",  # 银行文件中有、财政无凭证
    "carryover_mismatch",  # 结转 ≠ 年末余额
    "same_person_enter_approve",  # 同一人录入并审核同一笔支付
    "admin_two_roles",  # 一个账号兼任两个三员角色
    "dormant_account",  # 长期未登录仍启用
    "departed_staff_active",  # 离职人员账号仍启用
    "person_duplicate_id",  # 身份证号重复
    "person_malformed_id",  # 身份证号格式/校验位错误
    "voucher_sign_failed",  # 凭证签章失败，超过 N 天仍未发出
    "pay_item_implausible",  # 工资项目金额不合理（录入多了两位）
    "asset_book_date_invalid",  # 资产记账日期早于取得日期
    "asset_no_duplicate",  # 资产编号重复
    "asset_vehicle_no_plate",  # 车辆无号牌
    "asset_disposal_conflict",  # 在用资产却有处置日期
    "asset_value_mismatch",  # 净值 ≠ 原值 − 累计折旧
    "disabled_code_used",  # 指标链条使用已停用（is_enabled = 0）的支出功能分类科目
    "code_outside_validity",  # 支付日期晚于所用资金性质代码的有效期止
    "code_wrong_year",  # 指标链条使用上年度的部门预算经济分类代码
    "payee_name_mismatch",  # 支付的收款户名与收款人信息表不符
    "account_kind_not_allowed",  # 设备购置（310）付给个人账户
    "zero_balance_account_receives",  # 零余额账户作为收款账户（零余额账户只付不收）
    "person_status_date_conflict",  # 在职人员却登记了离职日期
    "person_age_implausible",  # 按身份证号出生日期，入职时不满最低工作年龄
    "salary_after_leave",  # 调出之后的月份仍在工资统发中
    "salary_run_sum_mismatch",  # 工资统发总额 ≠ 明细之和
    "salary_wrong_agency",  # 工资统发里有其他单位的人员
    "salary_item_off_standard",  # 发放的工资项目金额偏离月标准
    "depr_sum_mismatch",  # 卡片累计折旧 ≠ 折旧明细之和
    "depr_non_depreciable",  # 不计提折旧的分类（文物）有折旧明细
    "depr_after_disposal",  # 处置当月及以后仍计提折旧
    "reg_no_duplicate_in_region",  # 两个单位的车辆同一号牌
    "card_holder_departed",  # 个人账户、公务卡持有人离职后仍向其付款
    "plan_detail_sum_mismatch",  # 用款计划明细之和 ≠ 计划金额
    "plan_detail_element_mismatch",  # 用款计划明细的要素与计划（指标）不一致
    "adjustment_not_applied",  # 指标金额 ≠ 年初数 + 调整（一笔追加已登记但未计入指标）
    "transfer_unbalanced",  # 调剂调出与调入金额不等
    "reduction_below_paid",  # 调减使指标在调减日低于已支付（其后又追加回来）
    "adjustment_after_as_of",  # 指标调整日期晚于检查日（在下一年度）
    "code_retired_this_year",  # 指标链条使用本年已取消（只在上年值集中）的部门预算经济分类代码
    "approved_without_role",  # 审核人的国库审核授权已在审核日前终止，仍审核并发送凭证
    "admin_handles_business",  # 三员（系统管理员）账号审核支付并发送凭证
    "shared_operator_signed",  # 公共账号审核支付并发送凭证
    "blank_operator",  # 支付申请的审核人、凭证的发送人为空
    "acts_for_other_agency",  # 录入人是另一预算单位的录入账号
    "amount_extra_digit",  # 支付金额多录一位（×10），远超同单位同经济分类同月的其他支付
    "amount_history_outlier",  # 支付金额小数点错位（×100），远超同一收款人以往同类支付
    "gl_unbalanced",  # 总账凭证借贷不平衡（贷方分录少记）
    "gl_wrong_side",  # 支付的总账凭证借贷方向记反（借国库存款、贷支出）
    "gl_subject_not_leaf",  # 分录记到非末级科目 1001 国库存款
    "refund_exceeds_paid",  # 退款超过银行实付金额
    "refund_after_as_of",  # 退款日期晚于检查日
    "repayment_exceeds_refund",  # 重新支付金额超过退款
    "ledger_not_tie",  # 总账支出分录的资金性质与支付不同：按区划、年度、资金性质汇总的支出与支付不符
    "near_duplicate_payment",  # 近似重复支付：收款人名称或账号写法不同（全角、空格、后缀、标点）或日期相差几天
    # Last, so that asking for them moves no other fault to another agency.
    "bank_returned_not_refunded",  # 银行文件中该笔为退票，财政仍为已支付、未登记退款
    "bank_failed_line",  # 银行文件中该笔为支付失败，财政仍为已支付
    "pboc_clearing_amount",  # 人民银行月度清算文件中某银行某月的清算金额与财政已清算凭证合计不符
    "pboc_clearing_missing",  # 人民银行月度清算文件缺少某银行某月的清算（财政有该月已清算的凭证）
)
# The shapes of near_duplicate_payment, taken in turn by its occurrences.
NEAR_DUPLICATE_SHAPES = ("fullwidth", "suffix", "personal", "spaces", "punctuation", "date", "account")
# Clean payments of one unit to one payee with the same amount are further apart than any window a user would set
# for DUP-003/004 (a month), and names are compared without these suffixes, as DUP-003 does by default.
NEAR_DUPLICATE_APART_DAYS = 31
NEAR_DUPLICATE_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "公司")
ROLES = [
    ("R01", "单位录入", None),
    ("R02", "国库审核", None),
    ("R03", "系统管理员", "system"),
    ("R04", "安全保密管理员", "security"),
    ("R05", "安全审计员", "audit"),
    ("R06", "业务查询", None),
]


# Role grants older than the sandbox year start on 1 January three years before it; valid_to None = still valid.
ROLE_SINCE_YEARS = 3
# The plausibility rules' defaults (rules/plausibility): clean amounts stay within AMOUNT_SPREAD of their agency and
# economic item's typical size, so that no clean amount is PLAUS_FACTOR times its peers' or its history's average.
AMOUNT_SPREAD = (0.6, 1.6)
PLAUS_FACTOR = 5
PLAUS_MIN_PEERS = 3
PLAUS_MIN_HISTORY = 3
WHO_FAULTS = (
    "approved_without_role",
    "admin_handles_business",
    "shared_operator_signed",
    "blank_operator",
    "acts_for_other_agency",
)


class SpecError(ValueError):
    """A bad generator parameter, with a message in Chinese."""


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    level: int
    parent: str | None


def parse_regions(spec: str) -> list[Region]:
    """“152500000:3” → the league and its first three counties. The city code is 9 digits ending in 00000."""
    try:
        city, _, count_text = spec.partition(":")
        count = int(count_text or 0)
    except ValueError as exc:
        raise SpecError(f"区划参数“{spec}”格式应为 区划代码:县数，如 152500000:3") from exc
    if len(city) != 9 or not city.isdigit() or not city.endswith("00000"):
        raise SpecError(f"区划参数“{spec}”：市/盟区划代码应为以 00000 结尾的 9 位数字")
    if not 0 <= count <= 12:
        raise SpecError(f"区划参数“{spec}”：县数应在 0～12 之间")
    prefix = city[:4]
    names = codes.COUNTY_NAMES.get(prefix, [])
    suffixes = codes.COUNTY_SUFFIX.get(prefix, [f"{i:02d}" for i in range(1, 13)])
    regions = [Region(city, codes.CITY_NAMES.get(city, f"演练市{city[:4]}"), 2, city[:2] + "0000000")]
    for i in range(count):
        name = names[i] if i < len(names) else f"演练县{i + 1:02d}"
        regions.append(Region(f"{prefix}{suffixes[i]}000", name, 3, city))
    return regions


def parse_faults(spec: str | None) -> dict[str, int]:
    """“indicator_overspent=2,duplicate_payment=1” or “all=1”."""
    result: dict[str, int] = {}
    for part in [p.strip() for p in (spec or "").split(",") if p.strip()]:
        name, _, count_text = part.partition("=")
        try:
            count = int(count_text or 1)
        except ValueError as exc:
            raise SpecError(f"故障参数“{part}”：次数应为整数") from exc
        if not 0 <= count <= 1000:
            raise SpecError(f"故障参数“{part}”：次数应在 0～1000 之间")
        names = FAULT_TYPES if name == "all" else (name,)
        for n in names:
            if n not in FAULT_TYPES:
                raise SpecError(f"未知的故障类型“{n}”，可选：{'、'.join(FAULT_TYPES)}")
            result[n] = count
    return result


@dataclass
class GenerateSpec:
    year: int = 2026
    regions: str = "152500000:3"
    payments: int = 20000
    seed: int = 1
    faults: dict[str, int] = field(default_factory=dict)
    overdue_days: int = (
        3  # a voucher without receipt, or a receipt without clearing, older than this is overdue
    )
    dormant_days: int = 90

    @property
    def as_of(self) -> date:
        return date(self.year, 12, 31)


def normalize_url(url: str) -> str:
    parsed = make_url(url)
    driver = {
        "postgres": "postgresql+psycopg",
        "postgresql": "postgresql+psycopg",
        "mysql": "mysql+pymysql",
        "mariadb": "mysql+pymysql",
    }.get(parsed.drivername)
    # render_as_string: str() of a URL hides its password as "***", and the engine would log in with that.
    return parsed.set(drivername=driver).render_as_string(hide_password=False) if driver else url


def connect(url: str) -> Engine:
    return create_engine(normalize_url(url), future=True)


# --- writing -------------------------------------------------------------------------------------------------


def fen(value: int) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}{value // 100}.{value % 100:02d}"


class BulkWriter:
    """Buffers rows per table and writes them in batches: COPY on PostgreSQL, executemany elsewhere."""

    def __init__(self, engine: Engine, batch: int = 20000):
        self.engine = engine
        self.batch = batch
        self.conn = engine.raw_connection()
        self.dialect = engine.dialect.name
        self.buffers: dict[Table, list[tuple]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, table: Table, row: tuple) -> None:
        buffer = self.buffers[table]
        buffer.append(row)
        if len(buffer) >= self.batch:
            self.flush(table)

    def flush(self, table: Table) -> None:
        rows = self.buffers.pop(table, [])
        if not rows:
            return
        columns = [c.name for c in table.columns]
        cursor = self.conn.cursor()
        try:
            if self.dialect == "postgresql":
                with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                mark = "?" if self.dialect == "sqlite" else "%s"
                sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"  # noqa: S608  (names from our own metadata)
                cursor.executemany(sql, rows)
        finally:
            cursor.close()
        self.counts[table.name] += len(rows)

    def commit(self) -> None:
        for table in list(self.buffers):
            self.flush(table)
        self.conn.commit()

    def close(self) -> None:
        self.commit()
        self.conn.close()


# --- helpers ---------------------------------------------------------------------------------------------------


def _rng(seed: int, *parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _leaf_codes(rows: list) -> list[str]:
    parents = {r[2] for r in rows if r[2]}
    return [r[0] for r in rows if r[0] not in parents]


def _code_rows(rows: list) -> Iterator[tuple]:
    parents = {r[2] for r in rows if r[2]}
    for r in rows:
        code, name, parent = r[0], r[1], r[2]
        level = 1 + sum(1 for _ in _ancestors(rows, parent))
        yield code, name, parent, 0 if code in parents else 1, level


def _ancestors(rows: list, parent: str | None) -> Iterator[str]:
    index = {r[0]: r[2] for r in rows}
    while parent:
        yield parent
        parent = index.get(parent)


ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
ID_SLOTS = 35 * 365 * 1000  # birth days over 35 years × the 3-digit sequence
ID_STRIDE = 7_654_321  # coprime with ID_SLOTS, so n ↦ n·stride mod slots never repeats
# Retirees: 13 years of birth days (1952–1964) × the sequence; coprime with ID_STRIDE.
RETIREE_SLOTS = 4745 * 1000


def id_check_digit(first17: str) -> str:
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def valid_id_number(value: str) -> bool:
    """GB 11643 citizen ID: 18 characters, 17 digits and a check character."""
    return len(value) == 18 and value[:17].isdigit() and id_check_digit(value[:17]) == value[17]


def business_days(year: int) -> list[date]:
    spec = china_calendar()
    day, result = date(year, 1, 1), []
    while day.year == year:
        if is_business_day(spec, day):
            result.append(day)
        day += timedelta(days=1)
    return result


def _next_business(days: list[date], index: dict[date, int], day: date, n: int) -> date:
    i = index.get(day)
    if i is None or i + n >= len(days):
        return day + timedelta(days=n)
    return days[i + n]


# --- the generator -----------------------------------------------------------------------------------------------


@dataclass
class Manifest:
    spec: dict
    faults: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, fault: str, **rows: list[str]) -> None:
        self.faults.append({"type": fault, "rows": {t: list(keys) for t, keys in rows.items()}})

    def keys(self, fault: str, table: str) -> list[str]:
        return [key for f in self.faults if f["type"] == fault for key in f["rows"].get(table, [])]

    def as_dict(self) -> dict:
        return {"spec": self.spec, "counts": dict(self.counts), "faults": self.faults}


@dataclass
class Agency:
    region: Region
    index: int
    code: str
    name: str
    payments: int
    faults: list[str]


@dataclass
class AgencyRun:
    """What one agency's rows share while they are generated."""

    agency: Agency
    rng: random.Random
    account_no: str
    bank_code: str
    users: dict[str, list[str]]
    clerk: str
    clearing: dict
    faults: list[str]


class Generator:
    def __init__(self, spec: GenerateSpec, progress: Callable[[int, int], None] | None = None):
        self.spec = spec
        self.regions = parse_regions(spec.regions)
        self.progress = progress
        self.days = business_days(spec.year)
        self.day_index = {d: i for i, d in enumerate(self.days)}
        # December carries the year-end payment peak (12月大支付); January starts slowly.
        self.day_weights = [3.0 if d.month == 12 else 0.5 if d.month == 1 else 1.0 for d in self.days]
        self.cum_weights = list(_accumulate(self.day_weights))
        # Clean data uses only codes valid all year (codes.VALIDITY lists the others).
        self.exp_leaves = [c for c in _leaf_codes(codes.EXP_FUNC) if c != codes.DISABLED_EXP]
        self.exp_nonleaf = [r[0] for r in codes.EXP_FUNC if r[0] not in _leaf_codes(codes.EXP_FUNC) and r[2]]
        self.dep_leaves = [
            (r[0], r[3])
            for r in codes.DEP_ECO
            if r[3] and r[0] not in (codes.WRONG_YEAR_DEP, codes.RETIRED_DEP)
        ]
        self.fund_leaves = [c for c in _leaf_codes(codes.FUND_TYPE) if c != codes.WINDOW_FUND]
        self.window_end = date(spec.year, *codes.WINDOW_FUND_END)
        self.pay_leaves = _leaf_codes(codes.PAY_TYPE)
        # 4–6 banks, so every file layout (CSV, Excel, fixed width, XML) is always present.
        self.banks = codes.BANKS[: 4 + _rng(spec.seed, "banks").randrange(3)]
        self.overdue_cutoff = spec.as_of - timedelta(days=spec.overdue_days)
        self.manifest = Manifest(
            spec={**spec.__dict__, "faults": dict(spec.faults), "as_of": spec.as_of.isoformat()}
        )
        self.serial = defaultdict(int)
        self.pboc_faulted: set[str] = set()  # bank-months of the PBOC file given a fault (one fault each)
        # Persons, payroll and asset registration (own random streams): staff per agency for the monthly payroll,
        # the plates used per region, the personal accounts whose holder left (account → leave date).
        self.staff: dict[str, list[dict]] = {}
        self.plates: dict[str, set[str]] = defaultdict(set)
        self.vehicles: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.plate_pending: dict[str, int] = defaultdict(int)
        self.departed_accounts: dict[str, date] = {}
        self.holder_hits: list[str] = []  # this agency's payments to a holder who had left
        self._typical: dict[tuple[str, str], float] = {}

    @functools.cached_property
    def payee_holders(self) -> dict[str, str | None]:
        """Payee account → the person holding it (personal accounts, 公务卡), for near_duplicate_payment."""
        return {}

    def next_id(self, kind: str) -> int:
        self.serial[kind] += 1
        return self.serial[kind]

    # Plan the agencies and where each fault goes before any row is written.
    def plan(self) -> list[Agency]:
        total = self.spec.payments
        shares = (
            [0.4] + [0.6 / (len(self.regions) - 1)] * (len(self.regions) - 1)
            if len(self.regions) > 1
            else [1.0]
        )
        agencies: list[Agency] = []
        assigned = 0
        for r_index, (region, share) in enumerate(zip(self.regions, shares, strict=True)):
            region_payments = total - assigned if r_index == len(self.regions) - 1 else int(total * share)
            assigned += region_payments
            count = max(3, min(3000, region_payments // 250))
            base, extra = divmod(region_payments, count)
            for a in range(count):
                kind = codes.AGENCY_KINDS[a % len(codes.AGENCY_KINDS)]
                suffix = f"（{a // len(codes.AGENCY_KINDS) + 1}）" if a >= len(codes.AGENCY_KINDS) else ""
                agencies.append(
                    Agency(
                        region,
                        a,
                        f"{region.code[:6]}{a + 1:04d}",
                        f"{region.name}{kind}{suffix}",
                        base + (1 if a < extra else 0),
                        [],
                    )
                )
        rng = _rng(self.spec.seed, "faults")
        order = list(range(len(agencies)))
        rng.shuffle(order)
        cursor = 0
        for fault in FAULT_TYPES:
            for _ in range(self.spec.faults.get(fault, 0)):
                # Each occurrence gets its own agency while there are enough, so faults do not overlap.
                agencies[order[cursor % len(order)]].faults.append(fault)
                cursor += 1
        return agencies

    def run(self, engine: Engine) -> Manifest:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        writer = BulkWriter(engine)
        self.write_code_sets(writer)
        agencies = self.plan()
        done = 0
        for region in self.regions:
            clearing: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
            region_agencies = [a for a in agencies if a.region is region]
            users = self.write_region_users(writer, region)
            # Budget class → what the region's ledger paid out (the 收入 vouchers cover it).
            self.treasury: dict[str, int] = defaultdict(int)
            for agency in region_agencies:
                self.write_agency(writer, agency, users, clearing)
                done += agency.payments
                if self.progress:
                    self.progress(done, self.spec.payments)
            self.write_income(writer, region, users)
            self.write_clearing(writer, region, clearing)
            self.write_payroll(writer, region, region_agencies)
            writer.commit()
        writer.add(SANDBOX_INFO, ("manifest_spec", json.dumps(self.manifest.spec, ensure_ascii=False)))
        writer.add(SANDBOX_INFO, ("generated_at", datetime.now().isoformat(timespec="seconds")))
        writer.close()
        self.manifest.counts = dict(writer.counts)
        return self.manifest

    def write_code_sets(self, writer: BulkWriter) -> None:
        for table, rows in (
            (ELE_EXP_FUNC, codes.EXP_FUNC),
            (ELE_GOV_BGT_ECO, codes.GOV_ECO),
            (ELE_DEP_BGT_ECO, [r[:3] for r in codes.DEP_ECO]),
            (ELE_FUND_TYPE, codes.FUND_TYPE),
            (ELE_PAY_TYPE, codes.PAY_TYPE),
            (ELE_BGT_TYPE, codes.BGT_TYPE),
            (ELE_ASSET_CLASS, codes.ASSET_CLASS),
        ):
            for row in _code_rows(rows):
                # One row per fiscal year the code exists in (last, this, next year); specials on this year's row.
                v = codes.VALIDITY.get((table.name, row[0]), {})
                offsets = (0,) if table.name in codes.SINGLE_YEAR_SETS else v.get("years", codes.CODE_YEARS)
                extra = ()
                if table is ELE_ASSET_CLASS:  # depreciated or not, and the useful life
                    life = codes.ASSET_LIFE.get(row[0])
                    extra = (1 if life else 0, life)
                for offset in offsets:
                    year, this = self.spec.year + offset, offset == 0
                    end = date(year, *v["end"]) if this and "end" in v else date(year, 12, 31)
                    enabled = v.get("enabled", 1) if this else 1
                    writer.add(table, (*row, enabled, date(year, 1, 1), end, year, *extra))
        parents = {r[2] for r in codes.ACCT_SUBJECTS if r[2]}
        for code, name, parent, category, side in codes.ACCT_SUBJECTS:
            leaf, level = (0 if code in parents else 1), (2 if parent else 1)
            year = self.spec.year
            writer.add(
                ELE_ACCT_SUBJECT,
                (
                    code,
                    name,
                    category,
                    side,
                    parent,
                    leaf,
                    level,
                    1,
                    date(year, 1, 1),
                    date(year, 12, 31),
                    year,
                ),
            )
        province = self.regions[0].parent
        writer.add(ELE_MOF_DIV, (province, codes.PROVINCE_NAMES.get(province[:2], "演练省"), None, 1))
        for region in self.regions:
            writer.add(ELE_MOF_DIV, (region.code, region.name, region.parent, region.level))
        for code, name, fmt in self.banks:
            writer.add(ELE_BANK, (code, name, fmt))
        for role in ROLES:
            writer.add(SYS_ROLE, role)

    def write_region_users(self, writer: BulkWriter, region: Region) -> dict:
        """Treasury approvers and the three administrators of the finance system in one region, with dated grants:
        A01, A02 approve all year; A03's approver grant ends on 30 June (moved to queries only), A04's starts on
        1 July. A shared treasury account 公共账号 holds the approver role but never signs in clean data."""
        rng = _rng(self.spec.seed, "users", region.code)
        year, since = self.spec.year, self.role_since
        mid_end, mid_start = date(year, 6, 30), date(year, 7, 1)
        grants = [
            [("R02", since, None), ("R06", since, None)],
            [("R02", since, None), ("R06", since, None)],
            [("R02", since, mid_end), ("R06", since, None)],
            [("R02", mid_start, None), ("R06", mid_start, None)],
        ]
        users: dict = {"approvers": []}
        for i, roles in enumerate(grants):
            user_id = f"U{region.code[:6]}A{i + 1:02d}"
            self._user(writer, rng, user_id, f"gk{region.code[:6]}{i + 1:02d}", region, None, None, roles)
            users["approvers"].append((user_id, roles[0][1], roles[0][2]))
        users["lapsed"] = (f"U{region.code[:6]}A03", mid_end)
        for i, role in enumerate(("R03", "R04", "R05")):
            user_id = f"U{region.code[:6]}S{i + 1:02d}"
            self._user(writer, rng, user_id, f"admin{region.code[:6]}{i + 1}", region, None, None, [role])
        users["admin"] = f"U{region.code[:6]}S01"
        users["shared"] = f"U{region.code[:6]}G01"
        self._user(
            writer, rng, users["shared"], f"gkpub{region.code[:6]}", region, None, None, ["R02"], public=True
        )
        return users

    @property
    def role_since(self) -> date:
        return date(self.spec.year - ROLE_SINCE_YEARS, 1, 1)

    def _user(
        self,
        writer,
        rng,
        user_id,
        code,
        region,
        agency_code,
        person_id,
        roles,
        last_login_days=None,
        enabled=True,
        public=False,
    ) -> None:
        """``roles``: role ids granted since ``role_since`` and still valid, or (role, valid_from, valid_to)."""
        days = rng.randrange(0, 60) if last_login_days is None else last_login_days
        last_login = datetime.combine(self.spec.as_of - timedelta(days=days), time(9, rng.randrange(60)))
        writer.add(
            SYS_USER,
            (
                user_id,
                code,
                self._name(rng),
                region.code,
                agency_code,
                person_id,
                enabled,
                last_login,
                1 if public else 0,
            ),
        )
        for role in roles:
            role_id, valid_from, valid_to = role if isinstance(role, tuple) else (role, self.role_since, None)
            writer.add(SYS_USER_ROLE, (user_id, role_id, valid_from, valid_to))

    @staticmethod
    def _name(rng: random.Random) -> str:
        given = "".join(rng.choice(codes.GIVEN) for _ in range(rng.choice((1, 2))))
        return rng.choice(codes.SURNAMES) + given

    def _id_number(self, region: Region) -> str:
        """A fictional, valid ID number, unique within the region by construction (random draws collide at scale):
        the region's person counter goes through a bijection onto (birth day, sequence)."""
        n = self.next_id(f"person{region.code}")
        slot = (n * ID_STRIDE + self.spec.seed) % ID_SLOTS
        born = date(1965, 1, 1) + timedelta(days=slot // 1000)
        first17 = f"{region.code[:6]}{born:%Y%m%d}{slot % 1000:03d}"
        return first17 + id_check_digit(first17)

    def write_agency(self, writer: BulkWriter, agency: Agency, users: dict, clearing: dict) -> None:
        spec, region = self.spec, agency.region
        rng = _rng(spec.seed, "agency", region.code, agency.index)
        faults = list(agency.faults)
        year = spec.year
        writer.add(ELE_AGENCY, (agency.code, agency.name, region.code, year))
        bank_code = rng.choice(self.banks)[0]
        account_no = f"{rng.randrange(10**18, 10**19)}"
        writer.add(AGENCY_ACCOUNT, (account_no, f"{agency.name}零余额账户", agency.code, bank_code, "零余额"))

        # Staff and the finance system's clerk account for this agency.
        persons = []
        for p in range(rng.randrange(5, 16)):
            person_id = f"{agency.code}{p + 1:03d}"
            persons.append([person_id, self._id_number(region), "在职", None])
        if "person_duplicate_id" in faults:
            persons[1][1] = persons[0][1]
            self.manifest.add("person_duplicate_id", person_info=[persons[0][0], persons[1][0]])
        if "person_malformed_id" in faults:
            good = persons[2][1]
            persons[2][1] = good[:17] + ID_CHECK[(ID_CHECK.index(good[17]) + 1) % 11]
            self.manifest.add("person_malformed_id", person_info=[persons[2][0]])
        clerk_person = persons[0]
        departed = "departed_staff_active" in faults
        if departed:
            clerk_person[2], clerk_person[3] = "离职", spec.as_of - timedelta(days=40)
        # A departed colleague whose account was properly disabled (clean data has those too).
        persons[-1][2], persons[-1][3] = "离职", spec.as_of - timedelta(days=rng.randrange(30, 200))
        # Entry and status dates come from their own random stream (hr), so the other tables do not shift.
        hr = _rng(spec.seed, "hr", region.code, agency.index)
        overrides: dict[str, tuple[str, date]] = {}
        if "card_holder_departed" in faults:
            # A holder of a personal account and a 公务卡 left during the year (payments to them follow below).
            holder = [p for p in persons if p[2] == "在职"][1]
            overrides[holder[0]] = ("离职", date(year, hr.randrange(3, 10), hr.randrange(1, 29)))
        names = {}
        staff: list[dict] = []
        for p_index, (person_id, iden, status, leave) in enumerate(persons):
            names[person_id] = self._name(rng)
            status, leave = overrides.get(person_id, (status, leave))
            entry, recorded = self._entry_date(hr, iden), leave
            if p_index == 3 and take(faults, "person_status_date_conflict"):
                recorded = spec.as_of - timedelta(days=hr.randrange(30, 300))  # 在职, yet a leave date
                self.manifest.add("person_status_date_conflict", person_info=[person_id])
            if p_index == len(persons) - 1 and take(faults, "person_age_implausible"):
                entry = _birth(iden) + timedelta(days=365 * 14 + hr.randrange(0, 300))  # at 14
                self.manifest.add("person_age_implausible", person_info=[person_id])
            writer.add(
                PERSON_INFO,
                (
                    person_id,
                    agency.code,
                    region.code,
                    names[person_id],
                    iden,
                    status,
                    recorded,
                    entry,
                    leave or entry,
                ),
            )
            items = []
            for item_code, item_name, low, high in codes.PAY_ITEMS:
                amount = rng.randrange(low, high)
                if item_code == "01" and take(faults, "pay_item_implausible"):
                    amount *= 100  # two zeros too many, the usual slip
                    self.manifest.add("pay_item_implausible", person_pay_item=[person_id])
                writer.add(PERSON_PAY_ITEM, (person_id, item_code, item_name, fen(amount)))
                items.append((item_code, amount))
            staff.append(
                {
                    "id": person_id,
                    "status": status,
                    "entry": entry,
                    "leave": leave,
                    "items": items,
                    "base": True,
                }
            )
        staff += self.write_movers(writer, agency, hr, len(persons))
        self.staff[agency.code] = staff
        clerk = f"U{agency.code}"
        roles = ["R01"]
        dormant = "dormant_account" in faults
        self._user(
            writer,
            rng,
            clerk,
            f"dw{agency.code}",
            region,
            agency.code,
            clerk_person[0],
            roles,
            last_login_days=spec.dormant_days + 30 if dormant else None,
        )
        if dormant:
            self.manifest.add("dormant_account", sys_user=[clerk])
        if departed:
            self.manifest.add("departed_staff_active", sys_user=[clerk])
        if "admin_two_roles" in faults:
            # An administrator account of the agency's region holding two of the three administrator roles (the
            # clerk keeps entering payments, so the rules on who acted see no administrator on business records).
            admin = f"U{agency.code}S"
            self._user(writer, rng, admin, f"admin{agency.code}", region, None, None, ["R03", "R05"])
            self.manifest.add("admin_two_roles", sys_user=[admin])
        if persons[-1][0] != clerk_person[0]:
            self._user(
                writer,
                rng,
                f"U{persons[-1][0]}",
                f"dw{persons[-1][0]}",
                region,
                agency.code,
                persons[-1][0],
                [("R06", self.role_since, persons[-1][3])],  # the grant ended when they left
                enabled=False,
            )

        # Projects and their indicators.
        projects: list[list] = []
        indicators: list[dict] = []
        for p in range(max(1, min(4, agency.payments // 60 + 1))):
            pro_code = f"{region.code[:6]}{year}{agency.index + 1:04d}{p + 1:03d}0000"[:21]
            exp = rng.choice(self.exp_leaves)
            tracking = f"TRK{region.code[:6]}{year}{agency.index + 1:04d}{p + 1:03d}"
            projects.append([pro_code, f"{agency.name}{_project_name(exp)}项目{p + 1}", exp, tracking, 0])
            for _ in range(rng.randrange(1, 4)):
                dep, gov = rng.choice(self.dep_leaves)
                seq = self.next_id(f"bgt{region.code}")
                indicators.append(
                    {
                        "bgt_id": f"{region.code}{year}B{seq:08d}",
                        "project": projects[-1],
                        "pro_code": pro_code,
                        "exp": exp,
                        "dep": dep,
                        "gov": gov,
                        "fund": rng.choice(self.fund_leaves),
                        "bgt_type": rng.choice(("11", "11", "11", "21")),
                        "tracking": tracking,
                        "plan": rng.random() < (0.8 if region.level == 2 else 0.3),
                        "payments": [],
                    }
                )

        # Payments: day, amount and payee, spread over the indicators (each indicator gets at least one).
        payees = self.write_payees(writer, agency, persons, names)
        for i in range(agency.payments):
            ind = indicators[i] if i < len(indicators) else rng.choice(indicators)
            payee = (
                rng.choice(self._payees_for(payees, ind["dep"])),
                rng.choice(codes.PURPOSES.get(ind["dep"], ["日常支出"])),
            )
            day = rng.choices(self.days, cum_weights=self.cum_weights)[0]
            # Around the typical size of this agency's payments of this economic item, within AMOUNT_SPREAD.
            u = rng.uniform(*AMOUNT_SPREAD)
            ind["payments"].append(
                {"day": day, "u": u, "amount": self._amount(agency, ind["dep"], u), "payee": payee}
            )

        self.write_assets(writer, agency, faults)
        self._apply_indicator_faults(rng, faults, indicators)
        self._apply_payee_faults(rng, faults, indicators, payees)
        if take(faults, "zero_balance_account_receives"):
            # The agency's own 零余额账户 registered as a payee and paid to (it may only pay out).
            bank_name = next(name for code, name, _ in self.banks if code == bank_code)
            own = (f"{agency.name}零余额账户", account_no, bank_name)
            writer.add(
                PAY_PAYEE_INFO, (account_no, region.code, agency.code, own[0], own[2], "单位账户", None)
            )
            single = [
                p
                for i in indicators
                for p in i["payments"]
                if not (p.get("duplicate") or p.get("kind_fault") or p.get("name_fault"))
            ]
            single[0]["payee"], single[0]["zero_fault"] = (own, single[0]["payee"][1]), True
        if take(faults, "card_holder_departed"):
            self._apply_holder_fault(hr, indicators, payees, overrides)
        self._apply_who_faults(rng, faults, indicators, users)
        for ind in indicators:  # the faults above may change an indicator's economic item
            for p in ind["payments"]:
                p["amount"] = self._amount(agency, ind["dep"], p["u"])
        self._apply_amount_faults(rng, faults, indicators)
        self._keep_payments_apart(indicators)  # once the amounts are final
        if take(faults, "near_duplicate_payment"):
            self._near_duplicate(writer, agency, indicators, payees)
        # After the amounts: a reduction is judged against them.
        self._plan_adjustments(agency, faults, indicators)
        run = AgencyRun(agency, rng, account_no, bank_code, users, clerk, clearing, faults)
        for ind in indicators:
            ind["project"][4] += self._write_indicator(writer, run, ind)
        if self.holder_hits:
            self.manifest.add("card_holder_departed", pay_voucher=self.holder_hits)
            self.holder_hits = []
        for pro_code, name, exp, tracking, total in projects:
            writer.add(
                PM_PROJECT_INFO, (pro_code, name, region.code, year, agency.code, exp, tracking, fen(total))
            )

    def _entry_date(self, hr: random.Random, iden: str) -> date:
        """Entered service at 20–28 (by the ID number's birth date), before the sandbox year."""
        entry = _birth(iden) + timedelta(days=365 * hr.randrange(20, 29) + hr.randrange(0, 365))
        return min(entry, date(self.spec.year - 1, 12, 1))

    def write_movers(self, writer: BulkWriter, agency: Agency, hr: random.Random, start: int) -> list[dict]:
        """Persons beyond the serving staff, from the hr stream: one moved out during the year (调出), sometimes one
        moved in (调入, entered during the year), and 0–2 retirees (退休, no longer on the payroll)."""
        region, year = agency.region, self.spec.year
        rows: list[tuple] = []
        iden = self._id_number(region)
        leave = date(year, hr.randrange(3, 11), hr.randrange(1, 29))
        rows.append((iden, "调出", self._entry_date(hr, iden), leave, True))
        if hr.random() < 0.5:
            iden = self._id_number(region)
            if _birth(iden).year > year - 55:  # of working age when moving in
                rows.append((iden, "在职", date(year, hr.randrange(2, 12), hr.randrange(1, 29)), None, True))
        for _ in range(hr.randrange(0, 3)):
            iden = self._retiree_id(region)
            born = _birth(iden)
            retired = born + timedelta(days=365 * hr.choice((55, 60)) + 15)
            rows.append(
                (iden, "退休", born + timedelta(days=365 * 22 + hr.randrange(0, 365)), retired, False)
            )
        staff = []
        for n, (iden, status, entry, leave, paid) in enumerate(rows):
            person_id = f"{agency.code}{start + n + 1:03d}"
            writer.add(
                PERSON_INFO,
                (
                    person_id,
                    agency.code,
                    region.code,
                    self._name(hr),
                    iden,
                    status,
                    leave,
                    entry,
                    leave or entry,
                ),
            )
            items = []
            if paid:
                for item_code, item_name, low, high in codes.PAY_ITEMS:
                    amount = hr.randrange(low, high)
                    writer.add(PERSON_PAY_ITEM, (person_id, item_code, item_name, fen(amount)))
                    items.append((item_code, amount))
            staff.append({"id": person_id, "status": status, "entry": entry, "leave": leave, "items": items})
        return [s for s in staff if s["items"]]

    def _retiree_id(self, region: Region) -> str:
        """A fictional valid ID number born 1952–1964 (before every _id_number birth, so never the same), unique in
        the region through the same kind of bijection."""
        n = self.next_id(f"retiree{region.code}")
        slot = (n * ID_STRIDE + self.spec.seed) % RETIREE_SLOTS
        born = date(1952, 1, 1) + timedelta(days=slot // 1000)
        first17 = f"{region.code[:6]}{born:%Y%m%d}{slot % 1000:03d}"
        return first17 + id_check_digit(first17)

    def _apply_holder_fault(self, hr, indicators: list[dict], payees: dict, overrides: dict) -> None:
        """The holder of the second personal account (and 公务卡) left on ``overrides``' date; a payment after it
        goes to their personal account (every later payment to their accounts is flagged in _write_payment)."""
        ((_, left),) = [v for v in overrides.values()]
        account = payees["个人账户"][1]
        for kind in ("个人账户", "公务卡"):
            self.departed_accounts[payees[kind][1][1]] = left
        free = [
            p
            for i in indicators
            if not i.get("chain_fault") and not i.get("window_fault") and not i["dep"].startswith("310")
            for p in i["payments"]
            if not (p.get("duplicate") or p.get("kind_fault") or p.get("name_fault") or p.get("zero_fault"))
        ]
        target = free[0]
        target["payee"], target["holder"] = (account, target["payee"][1]), True
        if target["day"] <= left:
            later = [d for d in self.days if d > left]
            target["day"] = later[hr.randrange(0, min(20, len(later)))]

    def write_payroll(self, writer: BulkWriter, region: Region, agencies: list[Agency]) -> None:
        """工资统发: one run per agency and month; every person on the payroll that month (entered by the month's end
        and not left before it begins) is paid each item of their monthly standard (person_pay_item)."""
        year = self.spec.year
        months = [m for m in range(1, 13) if date(year, m, 1) <= self.spec.as_of]
        for a_index, agency in enumerate(agencies):
            hr = _rng(self.spec.seed, "payroll", region.code, agency.index)
            staff = self.staff[agency.code]
            runs: dict[int, list[list]] = {m: [] for m in months}
            for s in staff:
                for m in months:
                    if s["entry"] <= _month_end(year, m) and (
                        s["leave"] is None or s["leave"] >= date(year, m, 1)
                    ):
                        runs[m] += [[s["id"], code, amount] for code, amount in s["items"]]
            run_id = {m: f"GZ{agency.code}{year}{m:02d}" for m in months}
            if "salary_after_leave" in agency.faults:
                mover = next(s for s in staff if s["status"] == "调出")
                month = mover["leave"].month + 1
                runs[month] += [[mover["id"], code, amount] for code, amount in mover["items"]]
                self.manifest.add("salary_after_leave", pay_salary_detail=[run_id[month]])
            if "salary_wrong_agency" in agency.faults:
                other = agencies[(a_index + 1) % len(agencies)]
                stranger = next(
                    s
                    for s in self.staff[other.code]
                    if s.get("base") and s["status"] == "在职" and s["leave"] is None
                )
                runs[6] += [[stranger["id"], code, amount] for code, amount in stranger["items"]]
                self.manifest.add("salary_wrong_agency", pay_salary_detail=[run_id[6]])
            if "salary_item_off_standard" in agency.faults:
                row = next(r for r in runs[9] if any(s["id"] == r[0] and s.get("base") for s in staff))
                row[2] = row[2] * 3 // 2
                self.manifest.add("salary_item_off_standard", pay_salary_detail=[run_id[9]])
            for m in months:
                rows = runs[m]
                if not rows:
                    continue
                total = sum(r[2] for r in rows)
                if m == 3 and "salary_run_sum_mismatch" in agency.faults:
                    total += hr.randrange(10000, 100000)
                    self.manifest.add("salary_run_sum_mismatch", pay_salary_run=[run_id[m]])
                head = len({r[0] for r in rows})
                writer.add(PAY_SALARY_RUN, (run_id[m], region.code, year, agency.code, m, head, fen(total)))
                for person_id, code, amount in rows:
                    writer.add(PAY_SALARY_DETAIL, (run_id[m], person_id, code, fen(amount)))
        for agency in agencies:
            del self.staff[agency.code]

    @staticmethod
    def _keep_payments_apart(indicators: list[dict]) -> None:
        """Clean data has no near-duplicate by chance: two payments of one unit to the same payee (by account, or by
        name without its company suffix) of the same amount are at least NEAR_DUPLICATE_APART_DAYS apart — the later
        one is a fen more otherwise. No random draw, so the rest of the unit's stream is unchanged; at the default
        scale nothing moves (at 5 000 000 payments a few dozen amounts do)."""
        seen: dict[tuple, list[date]] = defaultdict(list)
        payments = (
            p for ind in indicators for p in ind["payments"] if not p.get("duplicate")
        )  # a fault's pair
        for p in sorted(payments, key=lambda p: p["day"]):
            (name, acct, _bank), _purpose = p["payee"]
            stem = next((name[: -len(k)] for k in NEAR_DUPLICATE_SUFFIXES if name.endswith(k)), name)
            while True:
                keys = ((p["amount"], "acct", acct), (p["amount"], "name", stem))
                if all((p["day"] - d).days > NEAR_DUPLICATE_APART_DAYS for k in keys for d in seen[k]):
                    break
                p["amount"] += 1
            for k in keys:
                seen[k].append(p["day"])

    def _near_duplicate(
        self, writer: BulkWriter, agency: Agency, indicators: list[dict], payees: dict
    ) -> None:
        """近似重复支付: a payment paid a second time, to the same payee written differently — the payee registered
        twice in the payee master (full-width letters, another suffix, （个人）, spaces, punctuation; or the account
        with spaces and full-width digits and the name mistyped) — or to the same payee a few days later. Same unit,
        same amount, within a week; from its own random stream. The copy is the row the manifest names."""
        rng = _rng(self.spec.seed, "near_duplicate", agency.region.code, agency.index)
        shape = NEAR_DUPLICATE_SHAPES[(self.next_id("near_duplicate") - 1) % len(NEAR_DUPLICATE_SHAPES)]
        flags = (
            "duplicate",
            "kind_fault",
            "name_fault",
            "zero_fault",
            "near_dup",
            "who",
            "amount_fault",
            "holder",
        )
        free = [
            (ind, p)
            for ind in indicators
            if not ind.get("chain_fault") and not ind.get("window_fault")
            for p in ind["payments"]
            if not any(p.get(f) for f in flags) and p["day"] <= self.spec.as_of - timedelta(days=10)
        ]
        if (
            not free
        ):  # a small agency whose payments other faults all own: leave out only the conflicting ones
            free = [
                (ind, p)
                for ind in indicators
                if not ind.get("chain_fault") and not ind.get("window_fault")
                for p in ind["payments"]
                if not any(p.get(f) for f in flags[:5]) and p["day"] <= self.spec.as_of - timedelta(days=10)
            ]
        if not free:
            return  # no payment to pay twice here: the occurrence names no rows
        # A staff member's account: salaries and reimbursements (301, 30211), else anything but purchases (310).
        personal = [(i, p) for i, p in free if i["dep"].startswith(codes.PERSONAL_ECO["个人账户"])] or [
            (i, p) for i, p in free if not i["dep"].startswith(codes.GOODS_ECO_PREFIX)
        ]
        if shape == "personal" and not (personal and payees["个人账户"]):
            shape = "spaces"
        ind, p0 = (personal if shape == "personal" else free)[0]
        bank = rng.choice(codes.PAYEE_BANKS)
        serial = self.next_id(f"near_payee{agency.code}")

        def register(name: str, acct: str, kind: str = "单位账户", person: str | None = None) -> tuple:
            writer.add(PAY_PAYEE_INFO, (acct, agency.region.code, agency.code, name, bank, kind, person))
            return (name, acct, bank)

        base_acct = f"{agency.code}9{serial:03d}18"
        base_name = (
            f"{rng.choice(codes.SURNAMES)}{rng.choice(codes.GIVEN)}{rng.choice(codes.PAYEE_WORDS)}"
            f"{rng.choice(('有限公司', '有限责任公司', '股份有限公司'))}"
        )
        copy = dict(p0)
        if shape == "personal":
            original = payees["个人账户"][0]
            holder = self.payee_holders.get(original[1])
            copy["payee"] = (
                register(f"{original[0]}（个人）", base_acct, "个人账户", holder),
                p0["payee"][1],
            )
            p0["payee"] = (original, p0["payee"][1])
        elif shape == "date":
            later = [d for d in self.days if 1 <= (d - p0["day"]).days <= 5 and d <= self.spec.as_of]
            copy["day"] = rng.choice(later) if later else p0["day"]
            if not later:  # no business day within the window: keep the day, change how the name is written
                shape = "spaces"
        if shape != "personal":
            if shape == "fullwidth":
                letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
                base_name = f"{base_name[:2]}{letters}{rng.randrange(1, 10)}{base_name[2:]}"
            original = register(base_name, base_acct)
            variant_acct = f"{agency.code}9{serial:03d}28"
            if shape == "fullwidth":
                variant = "".join(
                    chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in base_name
                )
            elif shape == "suffix":
                for kind in ("股份有限公司", "有限责任公司", "有限公司"):
                    if base_name.endswith(kind):
                        variant = base_name[: -len(kind)] + "公司"
                        break
            elif shape == "spaces":
                variant = f"{base_name[:1]} {base_name[1:4]}\u3000{base_name[4:]}"
            elif shape == "punctuation":
                variant = f"{base_name[:1]}·{base_name[1:]}。"
            elif shape == "account":
                typo = next(c for c in codes.GIVEN if c != base_name[1])
                variant = base_name[:1] + typo + base_name[2:]
                digits = base_acct
                variant_acct = " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
                variant_acct = variant_acct[:-4] + "".join(chr(ord(c) + 0xFEE0) for c in variant_acct[-4:])
            else:  # date: the same payee, the same name and account
                variant = None
            p0["payee"] = (original, p0["payee"][1])
            copy["payee"] = (
                (register(variant, variant_acct) if variant else original),
                p0["payee"][1],
            )
        if shape == "punctuation":
            later = [d for d in self.days if 1 <= (d - p0["day"]).days <= 5 and d <= self.spec.as_of]
            copy["day"] = rng.choice(later) if later else p0["day"]
        copy["near_dup"] = p0["near_dup_first"] = True
        ind["payments"].append(copy)

    def write_payees(self, writer: BulkWriter, agency: Agency, persons: list, names: dict) -> dict[str, list]:
        """The agency's payee master 收款人信息: companies (单位账户) and staff (个人账户, 公务卡), from their own
        random stream. Returns account kind → [(name, account no, bank)]."""
        rng = _rng(self.spec.seed, "payees", agency.region.code, agency.index)
        payees: dict[str, list] = {kind: [] for kind in codes.ACCT_KINDS}
        serving = [p for p in persons if p[2] == "在职"] or persons
        for n in range(rng.randrange(4, 11)):
            name = (
                f"{rng.choice(codes.SURNAMES)}{rng.choice(codes.GIVEN)}{rng.choice(codes.PAYEE_WORDS)}"
                f"{rng.choice(codes.PAYEE_KINDS)}"
            )
            payees["单位账户"].append((name, f"{agency.code}{n + 1:05d}8", None))
        for n, person in enumerate(serving[:4]):
            payees["个人账户"].append((names[person[0]], f"62{agency.code}{n + 1:04d}", person[0]))
        for n, person in enumerate(serving[:2]):
            payees["公务卡"].append((names[person[0]], f"628{agency.code}{n + 1:03d}", person[0]))
        result: dict[str, list] = {}
        for kind, rows in payees.items():
            result[kind] = []
            for name, acct, person_id in rows:
                bank = rng.choice(codes.PAYEE_BANKS)
                result[kind].append((name, acct, bank))
                self.payee_holders[acct] = person_id
                writer.add(
                    PAY_PAYEE_INFO, (acct, agency.region.code, agency.code, name, bank, kind, person_id)
                )
        return result

    @staticmethod
    def _payees_for(payees: dict[str, list], dep: str) -> list:
        """Who a payment of this economic class may go to: staff accounts where codes.PERSONAL_ECO allows."""
        allowed = list(payees["单位账户"])
        for kind, prefixes in codes.PERSONAL_ECO.items():
            if dep.startswith(prefixes):
                allowed += payees[kind]
        return allowed

    def _apply_payee_faults(self, rng, faults: list[str], indicators: list[dict], payees: dict) -> None:
        if take(faults, "account_kind_not_allowed"):
            # A purchase of equipment (310) paid to a staff member's personal account.
            free = [
                i
                for i in indicators
                if not i.get("chain_fault")
                and not i.get("window_fault")
                and not any(p.get("duplicate") for p in i["payments"])
            ]
            goods = [i for i in free if i["dep"].startswith(codes.GOODS_ECO_PREFIX)]
            if goods or free:
                ind = (goods or free)[0]
                if not goods:
                    ind["dep"], ind["gov"] = "31002", "50306"
                    for p in ind["payments"]:
                        p["payee"] = (rng.choice(payees["单位账户"]), rng.choice(codes.PURPOSES["31002"]))
                ind["payments"][0]["payee"] = (payees["个人账户"][0], ind["payments"][0]["payee"][1])
                ind["payments"][0]["kind_fault"] = True
        if take(faults, "payee_name_mismatch"):
            indicators[-1]["payments"][-1]["name_fault"] = True

    # --- who acted and plausible amounts (rules/who_acted, rules/plausibility) ---------------------------------

    def _amount(self, agency: Agency, dep: str, u: float) -> int:
        """A payment amount in fen: the typical size of this agency's payments of this economic item × u."""
        typical = self._typical.get((agency.code, dep))
        if typical is None:
            rng = _rng(self.spec.seed, "typical", agency.region.code, agency.index, dep)
            typical = self._typical[(agency.code, dep)] = rng.lognormvariate(12.0, 1.0)
        return max(100, int(typical * u))

    @staticmethod
    def _neighbour_clerk(agency: Agency) -> str:
        """The entry account of another agency of the same region (every region has at least three)."""
        other = agency.index - 1 if agency.index > 0 else agency.index + 1
        return f"U{agency.region.code[:6]}{other + 1:04d}"

    @staticmethod
    def _free(indicators: list[dict]) -> list[dict]:
        """Payments no other fault has claimed (their day, payee and amount may be chosen for a new fault)."""
        marks = ("duplicate", "name_fault", "kind_fault", "zero_fault", "who", "amount_fault")
        return [
            p
            for i in indicators
            if not i.get("window_fault")
            for p in i["payments"]
            if not any(p.get(m) for m in marks)
        ]

    def _apply_who_faults(self, rng, faults: list[str], indicators: list[dict], users: dict) -> None:
        for fault in WHO_FAULTS:
            if not take(faults, fault):
                continue
            free = self._free(indicators)
            if not free:
                continue  # a tiny agency whose payments other faults all own: this occurrence names no rows
            if fault == "approved_without_role":
                # A payment after the approver's grant ended (moved to December when the agency has none).
                lapse = users["lapsed"][1]
                late = [p for p in free if p["day"] > lapse]
                if not late:
                    free[-1]["day"] = rng.choice([d for d in self.days if d.month == 12])
                    late = [free[-1]]
                free = late
            free[0]["who"] = fault

    def _apply_amount_faults(self, rng, faults: list[str], indicators: list[dict]) -> None:
        def peer_groups() -> dict[tuple, list[dict]]:
            groups: dict[tuple, list[dict]] = defaultdict(list)
            for ind in indicators:
                for p in ind["payments"]:
                    groups[(ind["dep"], p["day"].month)].append(p)
            return groups

        if take(faults, "amount_extra_digit"):
            # The largest free payment of a peer group (same agency, item, month) with enough peers gets an extra
            # digit: ten times itself is more than PLAUS_FACTOR times the others' average.
            groups = [g for g in peer_groups().values() if len(g) > PLAUS_MIN_PEERS]
            free = {id(p) for p in self._free(indicators)}
            candidates = [
                max((p for p in g if id(p) in free), key=lambda p: p["amount"], default=None) for g in groups
            ]
            candidates = [p for p in candidates if p is not None]
            if not candidates:
                # Too few payments per month: bring one indicator's free payments into one month.
                ind = max(indicators, key=lambda i: len([p for p in i["payments"] if id(p) in free]))
                days = [d for d in self.days if d.month == 11]
                movable = [p for p in ind["payments"] if id(p) in free][: PLAUS_MIN_PEERS + 1]
                for p in movable:
                    p["day"] = rng.choice(days)
                candidates = [max(movable, key=lambda p: p["amount"])]
            target = candidates[0]
            target["amount"] *= 10
            target["amount_fault"] = "amount_extra_digit"
        if take(faults, "amount_history_outlier"):
            # A free payment with too few peers in its month for the peer comparison, but at least
            # PLAUS_MIN_HISTORY earlier payments to the same payee for the same item: its decimal point slips two
            # places (×100), far above that history whatever the spread.
            groups = peer_groups()
            dep_of = {id(p): ind["dep"] for ind in indicators for p in ind["payments"]}
            history: dict[tuple, list[dict]] = defaultdict(list)
            for p in (p for ind in indicators for p in ind["payments"]):
                history[(p["payee"][0][1], dep_of[id(p)])].append(p)

            def earlier(p):
                return [q for q in history[(p["payee"][0][1], dep_of[id(p)])] if q["day"] < p["day"]]

            def alone(p):
                return len(groups[(dep_of[id(p)], p["day"].month)]) - 1 < PLAUS_MIN_PEERS

            free = self._free(indicators)
            target = next((p for p in free if alone(p) and len(earlier(p)) >= PLAUS_MIN_HISTORY), None)
            if target is None:
                # Build the history: one indicator's free payments to one payee, months 1…k, then the target in
                # the latest month where the item has fewest other payments.
                free_ids = {id(p) for p in free}
                ind = max(indicators, key=lambda i: len([p for p in i["payments"] if id(p) in free_ids]))
                own = [p for p in ind["payments"] if id(p) in free_ids][: PLAUS_MIN_HISTORY + 1]
                for month, p in enumerate(own[:-1], start=1):
                    p["payee"] = (own[0]["payee"][0], p["payee"][1])
                    p["day"] = rng.choice([d for d in self.days if d.month == month])
                target = own[-1]
                target["payee"] = (own[0]["payee"][0], target["payee"][1])
                groups = peer_groups()
                month = min(
                    range(12, PLAUS_MIN_HISTORY, -1),
                    key=lambda m: len([p for p in groups[(ind["dep"], m)] if p is not target]),
                )
                target["day"] = rng.choice([d for d in self.days if d.month == month])
            target["amount"] *= 100
            target["amount_fault"] = "amount_history_outlier"

    def write_assets(self, writer: BulkWriter, agency: Agency, faults: list[str]) -> None:
        """The agency's asset cards 资产卡片, from their own random stream (other tables do not shift)."""
        spec, region = self.spec, agency.region
        rng = _rng(spec.seed, "assets", region.code, agency.index)
        leaves = _leaf_codes(codes.ASSET_CLASS)
        cards = []
        for n in range(rng.randrange(7, 13)):
            klass = codes.ASSET_VEHICLE_CLASS if n == 2 else rng.choice(leaves)
            acquired = spec.as_of - timedelta(days=rng.randrange(30, 3650))
            booked = min(spec.as_of, acquired + timedelta(days=rng.randrange(0, 20)))
            original = rng.randrange(300_000, 80_000_000)
            status, disposed = rng.choice(("在用", "在用", "在用", "在用", "出租", "闲置")), None
            if n > 6 and rng.random() < 0.3:
                status, disposed = (
                    "已处置",
                    min(spec.as_of, booked + timedelta(days=rng.randrange(200, 2000))),
                )
            plate = f"演{rng.choice('ABCDEFGHK')}{rng.randrange(10000, 99999)}" if klass == "304" else None
            while plate in self.plates["*"]:  # a plate is unique nationwide (here: in the whole sandbox)
                plate = f"{plate[:2]}{(int(plate[2:]) - 9999) % 89999 + 10000}"
            if plate:
                self.plates["*"].add(plate)
            area = f"{rng.randrange(50, 5000)}.00" if klass in codes.ASSET_AREA_CLASSES else None
            history = self._depreciation(klass, original, booked, disposed)
            depr = sum(amount for _, amount in history)
            cards.append(
                {
                    "asset_id": f"ZC{agency.code}{n + 1:04d}",
                    "asset_no": f"{agency.code}-{acquired:%Y}-{n + 1:05d}",
                    "klass": klass,
                    "acquired": acquired,
                    "booked": booked,
                    "original": original,
                    "depr": depr,
                    "net": original - depr,
                    "status": status,
                    "disposed": disposed,
                    "plate": plate,
                    "area": area,
                    "history": history,
                }
            )
        if take(faults, "asset_book_date_invalid"):
            cards[3]["booked"] = cards[3]["acquired"] - timedelta(days=rng.randrange(5, 60))
            self.manifest.add("asset_book_date_invalid", asset_card=[cards[3]["asset_id"]])
        if take(faults, "asset_no_duplicate"):
            cards[1]["asset_no"] = cards[0]["asset_no"]
            self.manifest.add("asset_no_duplicate", asset_card=[cards[0]["asset_id"], cards[1]["asset_id"]])
        if take(faults, "asset_vehicle_no_plate"):
            cards[2]["plate"] = None
            self.manifest.add("asset_vehicle_no_plate", asset_card=[cards[2]["asset_id"]])
        if take(faults, "asset_disposal_conflict"):
            cards[4]["status"], cards[4]["disposed"] = (
                "在用",
                spec.as_of - timedelta(days=rng.randrange(10, 300)),
            )
            self.manifest.add("asset_disposal_conflict", asset_card=[cards[4]["asset_id"]])
        if take(faults, "asset_value_mismatch"):
            cards[5]["net"] += rng.randrange(100, 1_000_000)
            self.manifest.add("asset_value_mismatch", asset_card=[cards[5]["asset_id"]])
        self._apply_depr_faults(agency, faults, cards)
        for c in cards:
            writer.add(
                ASSET_CARD,
                (
                    c["asset_id"],
                    region.code,
                    agency.code,
                    c["asset_no"],
                    c["klass"],
                    codes.ASSET_NAMES[c["klass"]],
                    c["acquired"],
                    c["booked"],
                    fen(c["original"]),
                    fen(c["depr"]),
                    fen(c["net"]),
                    c["status"],
                    c["disposed"],
                    c["plate"],
                    c["area"],
                ),
            )
            for period, amount in c["history"]:
                writer.add(ASSET_DEPR, (c["asset_id"], period, fen(amount)))

    def _depreciation(self, klass, original, booked, disposed, life=None, extra=0) -> list[tuple[str, int]]:
        """Monthly straight-line depreciation 按月计提 (政府会计准则第3号: from the month the asset is booked, none from
        the month it is disposed of, until fully depreciated): [(YYYY-MM, amount in fen)]. ``extra`` months past
        the proper end (a fault)."""
        life = life or codes.ASSET_LIFE.get(klass)
        if not life:
            return []
        monthly = original // (life * 12)
        start = booked.year * 12 + booked.month - 1
        end = self.spec.as_of.year * 12 + self.spec.as_of.month - 1
        if disposed is not None:
            end = min(end, disposed.year * 12 + disposed.month - 2)
        count = min(end - start + 1, life * 12) + extra
        return [
            (f"{(start + i) // 12:04d}-{(start + i) % 12 + 1:02d}", monthly) for i in range(max(0, count))
        ]

    def _apply_depr_faults(self, agency: Agency, faults: list[str], cards: list[dict]) -> None:
        """Depreciation and registration faults, each on its own card (not those of the other asset faults)."""
        spec, region = self.spec, agency.region
        rng = _rng(spec.seed, "depr", region.code, agency.index)
        free = [c for i, c in enumerate(cards) if i >= 6] + cards[:2]

        def young(c: dict, klass: str = "303") -> None:
            # A depreciable card booked 10–23 months ago: history long enough, far from fully depreciated.
            c["klass"], c["plate"], c["area"] = klass, None, None
            c["acquired"] = spec.as_of - timedelta(days=rng.randrange(300, 700))
            c["booked"] = c["acquired"] + timedelta(days=rng.randrange(0, 10))

        def book(c: dict, history: list) -> None:
            c["history"], c["depr"] = history, sum(a for _, a in history)
            c["net"] = c["original"] - c["depr"]

        if take(faults, "depr_non_depreciable"):
            c = free.pop(0)
            young(c, "701")  # 文物 are not depreciated; depreciated here over ten years
            c["status"], c["disposed"] = "在用", None
            book(c, self._depreciation("701", c["original"], c["booked"], None, life=10))
            self.manifest.add("depr_non_depreciable", asset_depr=[c["asset_id"]])
        if take(faults, "depr_after_disposal"):
            c = free.pop(0)
            young(c)
            span = (spec.as_of - c["booked"]).days
            c["status"], c["disposed"] = "已处置", c["booked"] + timedelta(days=rng.randrange(40, span - 70))
            book(c, self._depreciation(c["klass"], c["original"], c["booked"], c["disposed"], extra=2))
            self.manifest.add("depr_after_disposal", asset_depr=[c["asset_id"]])
        if take(faults, "depr_sum_mismatch"):
            c = free.pop(0)
            if len(c["history"]) < 2:
                young(c)
                c["status"], c["disposed"] = "在用", None
                book(c, self._depreciation(c["klass"], c["original"], c["booked"], None))
            c["depr"] -= c["history"][-1][1]  # the card misses the last month
            c["net"] = c["original"] - c["depr"]
            self.manifest.add("depr_sum_mismatch", asset_card=[c["asset_id"]])
        vehicles = self.vehicles[region.code]
        if take(faults, "reg_no_duplicate_in_region"):
            self.plate_pending[region.code] += 1
        if self.plate_pending[region.code] and vehicles and cards[2]["plate"]:
            # The vehicle takes the plate another unit of the region has registered.
            self.plate_pending[region.code] -= 1
            other_id, other_plate = vehicles[0]
            cards[2]["plate"] = other_plate
            self.manifest.add("reg_no_duplicate_in_region", asset_card=[other_id, cards[2]["asset_id"]])
        vehicles += [(c["asset_id"], c["plate"]) for c in cards if c["plate"]]

    def _apply_indicator_faults(self, rng, faults: list[str], indicators: list[dict]) -> None:
        # Chain faults change the code the whole indicator chain carries (indicator, plans, payments, ledger).
        if take(faults, "code_not_in_set"):
            indicators[0]["exp"] = "2019999"  # looks like a leaf of 201, but is not in the code set
            indicators[0]["chain_fault"] = "code_not_in_set"
        if take(faults, "non_leaf_code"):
            indicators[-1]["exp"] = rng.choice(self.exp_nonleaf)
            indicators[-1]["chain_fault"] = "non_leaf_code"
        for fault, element, code in (
            ("disabled_code_used", "exp", codes.DISABLED_EXP),
            ("code_wrong_year", "dep", codes.WRONG_YEAR_DEP),
            ("code_retired_this_year", "dep", codes.RETIRED_DEP),
        ):
            free = [i for i in indicators if not i.get("chain_fault") and not i.get("window_fault")]
            if take(faults, fault) and free:
                free[0][element] = code
                free[0]["chain_fault"] = fault
        if take(faults, "code_outside_validity"):
            # The fund type's validity ends on 30 June: the payments after it (and their ledger) are flagged.
            free = [i for i in indicators if not i.get("chain_fault") and not i.get("window_fault")]
            if free:
                free[0]["fund"], free[0]["window_fault"] = codes.WINDOW_FUND, True
                if all(p["day"] <= self.window_end for p in free[0]["payments"]):
                    single = [p for p in free[0]["payments"] if not p.get("duplicate")]
                    (single or free[0]["payments"])[-1]["day"] = rng.choice(
                        [d for d in self.days if d.month == 12]
                    )
        if take(faults, "indicator_overspent"):
            candidates = [i for i in indicators if not i["plan"] and i["payments"]] or [
                i for i in indicators if i["payments"]
            ]
            candidates[0]["plan"] = False
            candidates[0]["overspent"] = True
        if take(faults, "plan_over_indicator"):
            candidates = [i for i in indicators if i["payments"] and not i.get("overspent")]
            candidates[-1]["plan"] = True
            candidates[-1]["plan_over"] = True
        if take(faults, "duplicate_payment"):
            ind = indicators[0]
            ind["payments"][0]["duplicate"] = True
            ind["payments"].append(dict(ind["payments"][0]))
        if take(faults, "carryover_mismatch"):
            indicators[len(indicators) // 2]["carry_fault"] = True

    def _write_indicator(self, writer: BulkWriter, run: AgencyRun, ind: dict) -> int:
        agency, rng, region, year = run.agency, run.rng, run.agency.region, self.spec.year
        payments = sorted(ind["payments"], key=lambda p: p["day"])
        self._plan_refunds(run, ind, payments)
        # The indicator's consumption nets the refunds made by the as-of date (额度恢复); re-payments consume again.
        gross = sum(p["amount"] for p in payments)
        refunded = sum(
            p["refund"]["amount"]
            for p in payments
            if p.get("refund") and p["refund"]["day"] <= self.spec.as_of
        )
        paid = gross - refunded
        margin = max(1000, int(paid * rng.uniform(0.05, 0.5))) if payments else rng.randrange(100000, 5000000)
        margin = max(margin, refunded)  # plans cover the month's payments before refunds: amount ≥ gross
        amount = paid + margin
        chain_rows: dict[str, list[str]] = defaultdict(list)
        if ind.get("overspent"):
            amount = paid - max(1, min(paid // 10, rng.randrange(100, 500000)))
            self.manifest.add("indicator_overspent", ba_bgt_info=[ind["bgt_id"]])
        cur = amount - paid
        adjust_rows, adjusted = self._adjust_rows(run, ind, amount, payments)
        writer.add(
            BA_BGT_INFO,
            (
                ind["bgt_id"],
                region.code,
                year,
                agency.code,
                ind["pro_code"],
                ind["exp"],
                ind["gov"],
                ind["dep"],
                ind["fund"],
                ind["bgt_type"],
                ind["tracking"],
                fen(amount),
                fen(cur),
                fen(paid),
                None,
                f"{region.name}财预〔{year}〕{rng.randrange(1, 300)}号",
                1 if ind["plan"] else 0,
                fen(amount - adjusted),
                fen(adjusted),
            ),
        )
        chain_rows["ba_bgt_info"].append(ind["bgt_id"])
        for row in adjust_rows:
            writer.add(BA_BGT_ADJUST, row)

        # Monthly plans: what the month paid plus a share of the margin, so plans stay within the indicator.
        plan_ids: dict[int, str] = {}
        if ind["plan"]:
            by_month: dict[int, int] = defaultdict(int)
            for p in payments:
                by_month[p["day"].month] += p["amount"]
            months = sorted(by_month)
            spare = max(0, margin - refunded) // max(1, len(months) + 1)
            for m_i, month in enumerate(months):
                plan_id = f"{ind['bgt_id']}M{month:02d}"
                plan_amt = by_month[month] + spare
                if ind.get("plan_over") and m_i == len(months) - 1:
                    plan_amt += margin + rng.randrange(100, 100000)  # plans now exceed the indicator
                    self.manifest.add("plan_over_indicator", ba_bgt_info=[ind["bgt_id"]])
                plan_ids[month] = plan_id
                writer.add(
                    PAY_PLAN_VOUCHER,
                    (
                        plan_id,
                        ind["bgt_id"],
                        region.code,
                        year,
                        agency.code,
                        month,
                        ind["exp"],
                        ind["dep"],
                        ind["fund"],
                        fen(plan_amt),
                    ),
                )
                chain_rows["pay_plan_voucher"].append(plan_id)
                self._write_plan_details(writer, run, ind, plan_id, month, plan_amt, m_i == 0, chain_rows)

        dup_ids: list[str] = []
        for p in payments:
            self._write_payment(writer, run, ind, p, plan_ids, chain_rows, dup_ids)
        if len(dup_ids) == 2:
            self.manifest.add("duplicate_payment", pay_voucher=dup_ids)

        balance = cur
        writer.add(BA_BGT_BALANCE, (ind["bgt_id"], region.code, year, fen(balance)))
        carry = balance if balance > 0 else None
        if ind.get("carry_fault"):
            # Carry over something other than the balance: less than it, or anything when there is none.
            carry = balance - max(1, min(balance, rng.randrange(100, 100000))) if balance > 0 else 10000
            self.manifest.add("carryover_mismatch", ba_bgt_carryovers=[f"C{ind['bgt_id']}"])
        if carry is not None:
            writer.add(
                BA_BGT_CARRYOVERS, (f"C{ind['bgt_id']}", ind["bgt_id"], region.code, year + 1, fen(carry))
            )
        if ind.get("chain_fault"):
            self.manifest.add(ind["chain_fault"], **chain_rows)
        if chain_rows.get("window_pay"):
            self.manifest.add(
                "code_outside_validity",
                pay_voucher=chain_rows["window_pay"],
                gl_voucher=chain_rows["window_gl"],
            )
        return amount

    # --- plan details and indicator adjustments (用款计划明细、指标调整) -------------------------------------------

    @staticmethod
    def _untouched(ind: dict) -> bool:
        """An indicator no other fault touches (adjustment and plan-detail faults go to these)."""
        flags = ("chain_fault", "window_fault", "overspent", "plan_over", "carry_fault", "detail_fault")
        marks = ("duplicate", "kind_fault", "name_fault", "zero_fault")
        return not any(ind.get(f) for f in flags) and not any(
            p.get(k) for p in ind["payments"] for k in marks
        )

    def _plan_adjustments(self, agency: Agency, faults: list[str], indicators: list[dict]) -> None:
        """Decide the agency's plan-detail faults and its indicator adjustments 指标调整 (追加、调减、调剂) before any
        row is written, from their own random stream. An indicator has at most one clean adjustment, so a reduction
        never takes it below what it has paid (the final amount is paid plus a positive margin)."""
        rng = _rng(self.spec.seed, "adjust", agency.region.code, agency.index)
        for ind in indicators:
            ind["adjust"] = []
        for fault in ("plan_detail_sum_mismatch", "plan_detail_element_mismatch"):
            if take(faults, fault):
                free = [i for i in indicators if self._untouched(i) and i["payments"]]
                if free:
                    target = next((i for i in free if i["plan"]), free[0])
                    target["plan"], target["detail_fault"] = True, fault
        year = self.spec.year

        def doc() -> str:
            return f"{agency.region.name}财预调〔{year}〕{rng.randrange(1, 500)}号"

        def add(ind: dict, kind: str, **more) -> str:
            adjust_id = f"TZ{ind['bgt_id']}{len(ind['adjust']) + 1:02d}"
            ind["adjust"].append({"id": adjust_id, "kind": kind, "doc": doc(), **more})
            return adjust_id

        def unadjusted(with_payments: bool = False) -> list[dict]:
            return [
                i
                for i in indicators
                if self._untouched(i) and not i["adjust"] and (i["payments"] or not with_payments)
            ]

        def transfer(out: dict, into: dict, short: int = 0) -> str:
            paid_in = sum(p["amount"] for p in into["payments"])
            amount = (
                max(100, int(paid_in * rng.uniform(0.05, 0.4))) if paid_in else rng.randrange(1000, 50000)
            )
            day = rng.choice(self.days)
            in_id = f"TZ{into['bgt_id']}{len(into['adjust']) + 1:02d}"
            out_id = add(
                out, "调剂", dir="调出", amount=amount, day=day, counter=into["bgt_id"], counter_adjust=in_id
            )
            add(into, "调剂", dir="调入", amount=amount - short, day=day, counter=out["bgt_id"])
            into["adjust"][-1]["doc"] = out["adjust"][-1]["doc"]
            return out_id

        def pick() -> dict:
            return (unadjusted() or [self._extra_indicator(agency, indicators)])[0]

        if take(faults, "reduction_below_paid"):
            free = [i for i in unadjusted(True) if min(p["day"] for p in i["payments"]) < self.days[-1]]
            if free:
                ind = free[0]
                first = min(p["day"] for p in ind["payments"])
                later = [d for d in self.days if d > first]
                cut_id = add(ind, "调减", day=first, below=True)
                add(ind, "追加", day=rng.choice(later), restore=True)
                self.manifest.add("reduction_below_paid", ba_bgt_adjust=[cut_id])
        if take(faults, "transfer_unbalanced"):
            out = pick()
            into = next(iter(i for i in unadjusted() if i is not out), None) or self._extra_indicator(
                agency, indicators
            )
            out_id = transfer(out, into, short=rng.randrange(1, 50))
            self.manifest.add("transfer_unbalanced", ba_bgt_adjust=[out_id])
        if take(faults, "adjustment_not_applied"):
            ind = pick()
            add(ind, "追加", frac=rng.uniform(0.05, 0.3), day=rng.choice(self.days), unapplied=True)
            self.manifest.add("adjustment_not_applied", ba_bgt_info=[ind["bgt_id"]])
        if take(faults, "adjustment_after_as_of"):
            day = self.spec.as_of + timedelta(days=rng.randrange(1, 20))
            adjust_id = add(pick(), "追加", frac=rng.uniform(0.05, 0.3), day=day)
            self.manifest.add("adjustment_after_as_of", ba_bgt_adjust=[adjust_id])
        # Clean adjustments: about a third of the indicators get one (追加, 调减, or 调剂 to another indicator).
        for ind in indicators:
            if ind["adjust"] or not self._untouched(ind) or rng.random() >= 0.35:
                continue
            r = rng.random()
            if r < 0.3:
                add(ind, "追加", frac=rng.uniform(0.05, 0.5), day=rng.choice(self.days))
            elif r < 0.55:
                add(ind, "调减", frac=rng.uniform(0.05, 0.5), day=rng.choice(self.days))
            else:
                others = [i for i in unadjusted() if i is not ind]
                if others:
                    transfer(ind, rng.choice(others))

    def _extra_indicator(self, agency: Agency, indicators: list[dict]) -> dict:
        """A further indicator without payments (an agency with a single free indicator needs a counterpart)."""
        template = indicators[0]
        seq = self.next_id(f"bgt{agency.region.code}")
        (dep, gov), project = self.dep_leaves[0], template["project"]
        extra = {
            "project": project,
            "pro_code": template["pro_code"],
            "exp": project[2],
            "dep": dep,
            "gov": gov,
            "fund": self.fund_leaves[0],
            "bgt_type": "11",
            "tracking": project[3],
            "bgt_id": f"{agency.region.code}{self.spec.year}B{seq:08d}",
            "plan": False,
            "payments": [],
            "adjust": [],
        }
        indicators.append(extra)
        return extra

    def _adjust_rows(self, run: AgencyRun, ind: dict, amount: int, payments: list[dict]) -> tuple[list, int]:
        """The indicator's adjustment rows and their net effect (what the indicator's amount includes)."""
        agency, year = run.agency, self.spec.year
        rows, net = [], 0
        for a in ind.get("adjust", []):
            if a.get("below"):
                # Cut below what was paid by that day, then add it back later: the final amount stays.
                paid_then = sum(p["amount"] for p in payments if p["day"] <= a["day"])
                value = amount - paid_then + _rng(self.spec.seed, "below", a["id"]).randrange(100, 10000)
            elif a.get("restore"):
                value = rows[-1][9]
            else:
                value = a.get("amount") or max(100, int(amount * a["frac"]))
            sign = -1 if a["kind"] == "调减" or a.get("dir") == "调出" else 1
            if not a.get("unapplied"):
                net += sign * value
            rows.append(
                [
                    a["id"],
                    agency.region.code,
                    year,
                    agency.code,
                    a["kind"],
                    a.get("dir"),
                    ind["bgt_id"],
                    a.get("counter"),
                    a.get("counter_adjust"),
                    value,
                    a["day"],
                    a["doc"],
                ]
            )
        for row in rows:
            row[9] = fen(row[9])
        return [tuple(r) for r in rows], net

    def _write_plan_details(self, writer, run, ind, plan_id, month, plan_amt, first, chain_rows) -> None:
        """A plan's details 用款计划明细: one to three parts of the plan amount with the plan's elements."""
        rng = _rng(self.spec.seed, "plandetail", plan_id)
        fault = ind.get("detail_fault") if first else None
        n = max(rng.choice((1, 1, 2, 3)), 2 if fault else 1)
        n = min(n, max(1, plan_amt // 100))
        cuts = sorted(rng.sample(range(1, plan_amt), n - 1)) if n > 1 else []
        parts = [b - a for a, b in zip([0, *cuts], [*cuts, plan_amt], strict=True)]
        exps = [ind["exp"]] * n
        if fault == "plan_detail_sum_mismatch":
            parts[-1] += rng.randrange(100, 100000)
            self.manifest.add(fault, pay_plan_voucher=[plan_id])
        elif fault == "plan_detail_element_mismatch":
            exps[-1] = next(c for c in self.exp_leaves if c != ind["exp"])
            self.manifest.add(fault, pay_plan_detail=[f"{plan_id}D{n}"])
        agency = run.agency
        for j, (part, exp) in enumerate(zip(parts, exps, strict=True)):
            detail_id = f"{plan_id}D{j + 1}"
            writer.add(
                PAY_PLAN_DETAIL,
                (
                    detail_id,
                    plan_id,
                    agency.region.code,
                    self.spec.year,
                    agency.code,
                    month,
                    exp,
                    ind["dep"],
                    ind["fund"],
                    fen(part),
                ),
            )
            chain_rows["pay_plan_detail"].append(detail_id)

    def _write_payment(
        self,
        writer: BulkWriter,
        run: AgencyRun,
        ind: dict,
        p: dict,
        plan_ids: dict[int, str],
        chain_rows: dict[str, list[str]],
        dup_ids: list[str],
    ) -> None:
        spec, agency, rng, faults = self.spec, run.agency, run.rng, run.faults
        region, year, bank_code, clearing = agency.region, spec.year, run.bank_code, run.clearing
        seq = self.next_id(f"pay{region.code}")
        pay_app_id = f"{region.code}{year}P{seq:09d}"
        pay_cert_no = f"{region.code[:6]}{year % 100:02d}{seq:09d}"
        day, amount = p["day"], p["amount"]
        if p.get("duplicate"):
            dup_ids.append(pay_app_id)
        # Refunded payments and re-payments take no other fault, so only the refund rules see them.
        plain = not (p.get("refund") or p.get("repay_of"))
        (payee_name, payee_acct, payee_bank), purpose = p["payee"]
        if p.get("name_fault"):
            # The name keyed on the payment differs from the payee master's (a wrong or outdated name).
            payee_name = payee_name[:-2] + "中心" if payee_name.endswith("公司") else payee_name + "公司"
            self.manifest.add("payee_name_mismatch", pay_voucher=[pay_app_id])
        if p.get("kind_fault"):
            self.manifest.add("account_kind_not_allowed", pay_voucher=[pay_app_id])
        if p.get("zero_fault"):
            self.manifest.add("zero_balance_account_receives", pay_voucher=[pay_app_id])
        left = self.departed_accounts.get(payee_acct)
        if left is not None and day > left:
            self.holder_hits.append(pay_app_id)
        if p.get("near_dup"):
            self.manifest.add("near_duplicate_payment", pay_voucher=[pay_app_id])
        exp, dep, fund, tracking = ind["exp"], ind["dep"], ind["fund"], ind["tracking"]
        if plain and not ind.get("chain_fault") and take(faults, "element_mismatch"):
            exp = next(c for c in self.exp_leaves if c != ind["exp"])
            self.manifest.add("element_mismatch", pay_voucher=[pay_app_id])
        if plain and take(faults, "tracking_id_lost"):
            tracking = None
            self.manifest.add("tracking_id_lost", pay_voucher=[pay_app_id])
        # The approver holds the approver role on the day; the voucher is sent under the approver's account.
        on_duty = [
            u for u, start, end in run.users["approvers"] if start <= day and (end is None or day <= end)
        ]
        clerk, approver = run.clerk, rng.choice(on_duty)
        sender = approver
        who = p.get("who")
        if who == "acts_for_other_agency":
            clerk = self._neighbour_clerk(agency)
            self.manifest.add(who, pay_voucher=[pay_app_id])
        elif who:
            approver = sender = {
                "approved_without_role": run.users["lapsed"][0],
                "admin_handles_business": run.users["admin"],
                "shared_operator_signed": run.users["shared"],
                "blank_operator": "",
            }[who]
            self.manifest.add(who, pay_voucher=[pay_app_id], pay_voucher_bill=[pay_cert_no])
        if p.get("amount_fault"):
            self.manifest.add(p["amount_fault"], pay_voucher=[pay_app_id])
        if not who and plain and take(faults, "same_person_enter_approve"):
            approver = clerk
            self.manifest.add("same_person_enter_approve", pay_voucher=[pay_app_id])
        pay_type = rng.choice(self.pay_leaves[:2])
        origin = p.get("repay_of")
        writer.add(
            PAY_VOUCHER,
            (
                pay_app_id,
                f"ZF{year}{seq:09d}",
                year,
                region.code,
                agency.code,
                ind["bgt_id"],
                plan_ids.get(day.month),
                ind["pro_code"],
                exp,
                ind["gov"],
                dep,
                fund,
                pay_type,
                tracking,
                day,
                fen(amount),
                run.account_no,
                payee_acct,
                payee_name,
                payee_bank,
                purpose,
                clerk,
                approver,
                origin["pay_app_id"] if origin else None,
                origin["back_id"] if origin else None,
            ),
        )
        p["pay_app_id"] = pay_app_id
        chain_rows["pay_voucher"].append(pay_app_id)

        # The bank's side: paid the same or next business day; receipt back; cleared with the central bank.
        xpay_date = _next_business(self.days, self.day_index, day, rng.choice((0, 0, 1)))
        xpay_amt = amount
        # At the year's end some vouchers are still in transit: no receipt yet, which is normal within N days.
        has_receipt = xpay_date <= spec.as_of and not (day > self.overdue_cutoff and rng.random() < 0.5)
        faults = faults if plain else []
        signed = True
        if day <= self.overdue_cutoff and take(faults, "voucher_sign_failed"):
            signed = has_receipt = False  # never reached the bank
            self.manifest.add("voucher_sign_failed", pay_voucher_bill=[pay_cert_no])
        if signed and day <= self.overdue_cutoff and take(faults, "voucher_no_receipt"):
            has_receipt = False
            self.manifest.add("voucher_no_receipt", pay_voucher_bill=[pay_cert_no])
        bank_fault = False  # this voucher's bank line already carries a fault (one per line)
        if has_receipt and take(faults, "bank_amount_mismatch"):
            xpay_amt = amount - max(1, min(amount // 2, rng.randrange(1, 10000)))
            self.manifest.add("bank_amount_mismatch", pay_voucher_bill=[pay_cert_no])
            bank_fault = True
        agent_no = f"{bank_code}{region.code[:6]}{xpay_date:%Y%m%d}{seq:09d}"
        cleared = has_receipt and not (xpay_date > self.overdue_cutoff and rng.random() < 0.5)
        if cleared and xpay_date <= self.overdue_cutoff and take(faults, "paid_not_cleared"):
            cleared = False
            self.manifest.add("paid_not_cleared", pay_voucher_bill=[pay_cert_no])
        lqd_date = (
            _next_business(self.days, self.day_index, xpay_date, rng.choice((0, 1))) if cleared else None
        )
        if lqd_date is not None and lqd_date > spec.as_of:
            lqd_date = None
        lqd_no = f"QS{region.code[:6]}{bank_code}{lqd_date:%Y%m%d}" if lqd_date else None
        if lqd_date:
            total = clearing[(bank_code, lqd_date)]
            total[0] += 1
            total[1] += xpay_amt
            # The central bank's monthly file differs from what we cleared (the database stays clean: only the
            # PBOC file differs, written from the manifest).
            month = f"{bank_code}-{lqd_date:%Y-%m}"
            for pboc_fault in ("pboc_clearing_amount", "pboc_clearing_missing"):
                if month not in self.pboc_faulted and take(faults, pboc_fault):
                    self.manifest.add(pboc_fault, pboc_file=[month])
                    self.pboc_faulted.add(month)
        if has_receipt:
            if not bank_fault and take(faults, "voucher_missing_at_bank"):
                self.manifest.add("voucher_missing_at_bank", bank_file=[pay_cert_no])
                bank_fault = True
            # The bank's line says 退票 or 失败 while we show the voucher paid and book no refund (the database stays
            # as clean data has it: only the bank file differs, written from the manifest).
            for status_fault in ("bank_returned_not_refunded", "bank_failed_line"):
                if not bank_fault and take(faults, status_fault):
                    self.manifest.add(status_fault, bank_file=[pay_cert_no])
                    bank_fault = True
            if take(faults, "bank_line_no_voucher"):
                extra = f"{bank_code}{xpay_date:%Y%m%d}X{seq:08d}"
                self.manifest.add("bank_line_no_voucher", bank_file=[extra])
        writer.add(
            PAY_VOUCHER_BILL,
            (
                pay_cert_no,
                pay_app_id,
                region.code,
                year,
                bank_code,
                day,
                fen(amount),
                fen(xpay_amt) if has_receipt else None,
                xpay_date if has_receipt else None,
                agent_no if has_receipt else None,
                lqd_date,
                lqd_no,
                sender,
                "已签章" if signed else "签章失败",
            ),
        )
        if has_receipt:
            writer.add(
                PAY_BANK_RECEIPT,
                (f"HD{agent_no}", pay_cert_no, bank_code, xpay_date, fen(xpay_amt), agent_no),
            )
        gl_id = f"GL{pay_cert_no}"
        maker = run.users["approvers"][0][0]  # the region's first approver (holds R02 all year)
        lines = self._ledger_lines(fund, amount, exp, dep, refund=False)
        if take(faults, "gl_unbalanced"):  # the credit line short
            lines[1][2] = amount - max(1, min(amount // 10, rng.randrange(1, 100000)))
            self.manifest.add("gl_unbalanced", gl_voucher=[gl_id])
        # On 一般公共预算 only: 5001 carries most of the year, so its balance stays on the debit side.
        if fund[0] == "1" and take(faults, "gl_wrong_side"):
            for line in lines:  # 借国库存款、贷支出: the sides of a refund on a payment
                line[1], line[2] = line[2], line[1]
            self.manifest.add("gl_wrong_side", gl_voucher=[gl_id])
        if take(faults, "gl_subject_not_leaf"):
            lines[1][0] = "1001"  # the parent 国库存款 instead of its detail subject
            self.manifest.add("gl_subject_not_leaf", gl_voucher_line=[gl_id])
        if take(faults, "ledger_not_tie"):  # the expenditure line booked under another fund type
            lines[0][5] = "12" if fund != "12" else "11"
            self.manifest.add("ledger_not_tie", ele_mof_div=[region.code])
        kind = "重新支付" if origin else "支付"
        self.treasury[fund[0]] += amount
        self._write_ledger(
            writer, region, gl_id, day, (exp, dep, fund), amount, kind, pay_cert_no, None, maker, lines
        )
        if ind.get("chain_fault"):
            chain_rows["gl_voucher"].append(f"GL{pay_cert_no}")
        if ind.get("window_fault") and day > self.window_end:
            chain_rows["window_pay"].append(pay_app_id)
            chain_rows["window_gl"].append(f"GL{pay_cert_no}")
        refund = p.get("refund")
        if refund:
            back_id = f"TK{pay_cert_no}"
            p["back_id"] = back_id
            writer.add(
                PAY_BACK_INFO,
                (back_id, pay_cert_no, refund["day"], fen(refund["amount"]), refund["reason"]),
            )
            if refund["fault"] == "refund_exceeds_paid":
                self.manifest.add("refund_exceeds_paid", pay_voucher_bill=[pay_cert_no])
            elif refund["fault"]:
                self.manifest.add(refund["fault"], pay_back_info=[back_id])
            if refund["day"] <= spec.as_of:  # booked when it happens; one after the as-of date is not yet
                self.treasury[fund[0]] -= refund["amount"]
                lines = self._ledger_lines(fund, refund["amount"], exp, dep, refund=True)
                self._write_ledger(
                    writer,
                    region,
                    f"GL{back_id}",
                    refund["day"],
                    (exp, dep, fund),
                    refund["amount"],
                    "退款",
                    None,
                    back_id,
                    maker,
                    lines,
                )

    def write_income(self, writer: BulkWriter, region: Region, users: dict) -> None:
        """收入: the region's revenue into the treasury (借 国库存款、贷 本级收入), one voucher per budget class the
        year's payments draw on, on the first business day, covering them with a fifth to spare (so 国库存款 stays on
        its debit side). It carries no expenditure elements."""
        for budget, paid in sorted(self.treasury.items()):
            amount = (max(0, paid) * 6 // 5 // 1_000_000 + 1) * 1_000_000  # rounded up to 万元
            bank, income = codes.FUND_SUBJECTS[budget][1], codes.INCOME_SUBJECTS[budget]
            lines = [[bank, amount, 0, None, None, None], [income, 0, amount, None, None, None]]
            gl_id = f"GLSR{region.code}{budget}"
            maker = users["approvers"][0][0]
            self._write_ledger(
                writer,
                region,
                gl_id,
                self.days[0],
                (None, None, None),
                amount,
                "收入",
                None,
                None,
                maker,
                lines,
            )

    @staticmethod
    def _ledger_lines(fund: str, amount: int, exp: str, dep: str, refund: bool) -> list[list]:
        """The two lines of 财政总预算会计 for a treasury payment (借 支出 / 贷 国库存款) or its refund (the reverse):
        [subject, debit, credit, exp_func, dep_eco, fund]; the expenditure line carries the elements."""
        spend, bank = codes.FUND_SUBJECTS[fund[0]]
        if refund:
            return [[spend, 0, amount, exp, dep, fund], [bank, amount, 0, None, None, None]]
        return [[spend, amount, 0, exp, dep, fund], [bank, 0, amount, None, None, None]]

    def _write_ledger(
        self, writer, region, gl_id, day, elements, amount, kind, cert, back_id, maker, lines
    ) -> None:
        year = self.spec.year
        writer.add(
            GL_VOUCHER,
            (gl_id, region.code, year, cert, day, *elements, fen(amount), kind, back_id, maker),
        )
        for n, (subject, debit, credit, exp, dep, fund) in enumerate(lines, 1):
            writer.add(
                GL_VOUCHER_LINE,
                (gl_id, n, region.code, year, day, subject, fen(debit), fen(credit), exp, dep, fund),
            )

    def _plan_refunds(self, run: AgencyRun, ind: dict, payments: list[dict]) -> None:
        """退款 that belong to the year (after the bank paid, by the as-of date, at most what was paid) and some
        re-payments (重新支付: same indicator, after the refund, at most the refund), from their own random stream.
        A re-payment is a later payment of the indicator made to the refunded payee, so the number of payments
        stays what was asked for. The refund faults go to the first payment that fits."""
        if any(ind.get(k) for k in ("chain_fault", "window_fault", "overspent", "plan_over")):
            return
        rr = _rng(self.spec.seed, "refunds", ind["bgt_id"])
        as_of, latest = self.spec.as_of, self.spec.as_of - timedelta(days=30)
        # Payments another fault owns keep their amount and payee (a re-payment changes both).
        flags = (
            "duplicate",
            "kind_fault",
            "name_fault",
            "zero_fault",
            "who",
            "amount_fault",
            "holder",
            "near_dup",
        )
        flags += ("near_dup_first",)
        plain = [p for p in payments if not any(p.get(k) for k in flags)]
        eligible = [p for p in plain if p["day"] <= latest]
        gross = sum(p["amount"] for p in payments)
        chosen: list[tuple[dict, str | None]] = []

        def later(p: dict, after: date) -> list[dict]:
            taken = [c for c, _ in chosen]
            return [
                q
                for q in plain
                if q["day"] > after and q is not p and not q.get("repay_of") and q not in taken
            ]

        for name in ("refund_exceeds_paid", "refund_after_as_of", "repayment_exceeds_refund"):
            free = [p for p in eligible if all(p is not q for q, _ in chosen)]
            if name == "refund_exceeds_paid":
                free = [p for p in free if gross - p["amount"] > 20000]
            if name == "repayment_exceeds_refund":  # needs a later payment to become the re-payment
                free = [p for p in free if later(p, p["day"] + timedelta(days=25))]
            if free and take(run.faults, name):
                chosen.append((free[0], name))
        if not chosen:
            chosen = [(p, None) for p in eligible if rr.random() < 0.01]
        for p, fault in chosen:
            amount = max(1, p["amount"] // rr.choice((1, 1, 2, 4)))
            day = _next_business(self.days, self.day_index, p["day"], rr.randrange(2, 8))
            if fault == "refund_exceeds_paid":
                amount = p["amount"] + rr.randrange(1, 10000)
            if fault == "refund_after_as_of":
                day = as_of + timedelta(days=rr.randrange(3, 20))
            reason = rr.choice(("收款账号有误", "收款户名不符", "收款人账户已销户"))
            p["refund"] = {"day": day, "amount": amount, "reason": reason, "fault": fault}
            again = fault == "repayment_exceeds_refund" or (fault is None and rr.random() < 0.6)
            candidates = later(p, day) if again and day <= as_of else []
            if candidates:
                repay = amount if rr.random() < 0.7 else max(1, amount - rr.randrange(1, max(2, amount)))
                if fault == "repayment_exceeds_refund":
                    repay = amount + rr.randrange(1, 10000)
                q = candidates[0]
                q["amount"], q["payee"], q["repay_of"] = repay, p["payee"], p

    def write_clearing(self, writer: BulkWriter, region: Region, clearing: dict) -> None:
        for (bank_code, lqd_date), (count, amount) in sorted(clearing.items()):
            writer.add(
                PAY_CLEARING,
                (
                    f"QS{region.code[:6]}{bank_code}{lqd_date:%Y%m%d}",
                    region.code,
                    bank_code,
                    lqd_date,
                    count,
                    fen(amount),
                ),
            )


def _birth(iden: str) -> date:
    """The birth date an 18-digit ID number carries (characters 7–14)."""
    return date(int(iden[6:10]), int(iden[10:12]), int(iden[12:14]))


def _month_end(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def take(faults: list[str], name: str) -> bool:
    """Consume one pending occurrence of ``name`` for this agency."""
    if name in faults:
        faults.remove(name)
        return True
    return False


def _accumulate(values: list[float]) -> Iterator[float]:
    total = 0.0
    for v in values:
        total += v
        yield total


def _project_name(exp: str) -> str:
    names = {r[0]: r[1] for r in codes.EXP_FUNC}
    return names.get(exp, "专项")


def generate(url: str, spec: GenerateSpec, progress: Callable[[int, int], None] | None = None) -> Manifest:
    """Create the schema at ``url`` (dropping what was there) and fill it; return the ground-truth manifest."""
    engine = connect(url)
    try:
        return Generator(spec, progress).run(engine)
    finally:
        engine.dispose()
