"""Chinese column headings for the sample rows, and the run's Excel export."""

from __future__ import annotations

from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Font

from caiwei.web.exports import escape_workbook

from .engine import shipped_rule

COLUMN_LABELS = {
    "agency_code": "预算单位",
    "mof_div_code": "区划",
    "pro_code": "项目",
    "bgt_id": "指标",
    "plan_id": "用款计划",
    "plan_month": "计划月份",
    "pay_app_id": "支付申请",
    "pay_app_no": "支付申请号",
    "pay_cert_no": "支付凭证号",
    "gl_vou_id": "总账凭证",
    "lqd_cert_no": "清算凭证号",
    "carry_id": "结转单",
    "ori_bgt_id": "原指标",
    "asset_id": "资产卡片",
    "asset_no": "资产编号",
    "asset_name": "资产名称",
    "person_id": "人员",
    "person_name": "姓名",
    "iden_no": "身份证号",
    "item_code": "工资项目",
    "item_name": "项目名称",
    "bank_code": "代理银行",
    "amount": "金额",
    "pay_amt": "支付金额",
    "xpay_amt": "银行实付金额",
    "pay_app_amt": "已支付金额",
    "cur_amt": "指标余额",
    "plan_amt": "计划金额",
    "planned": "计划合计",
    "paid": "支付合计",
    "paid_detail": "支付明细合计",
    "over_amt": "超出金额",
    "diff_amt": "差额",
    "carry_amt": "结转金额",
    "bal_amt": "年末余额",
    "original_value": "原值",
    "accum_depr": "累计折旧",
    "net_value": "净值",
    "total_amt": "项目总额",
    "vou_date": "凭证日期",
    "xpay_date": "实付日期",
    "pay_app_date": "申请日期",
    "acquire_date": "取得日期",
    "book_date": "记账日期",
    "disposal_date": "处置日期",
    "receipt_date": "回单日期",
    "receipt_amt": "回单金额",
    "lqd_date": "清算日期",
    "vou_count": "笔数",
    "detail_count": "明细笔数",
    "detail_amt": "明细金额",
    "status": "状态",
    "sign_status": "签章状态",
    "plate_no": "号牌",
    "area": "面积",
    "exp_func_code": "功能科目",
    "bgt_exp_func_code": "指标功能科目",
    "pay_exp_func_code": "支付功能科目",
    "pro_exp_func_code": "项目功能科目",
    "gov_bgt_eco_code": "政府经济分类",
    "dep_bgt_eco_code": "部门经济分类",
    "fund_type_code": "资金性质",
    "pay_type_code": "支付方式",
    "bgt_type_code": "指标类型",
    "asset_class_code": "资产分类",
    "tracking_id": "追溯码",
    "bgt_tracking_id": "指标追溯码",
    "payee_acct_name": "收款人",
    "payee_acct_no": "收款账号",
    "use_des": "用途",
    "input_user_id": "录入人",
    "audit_user_id": "审核人",
    "vouchers": "凭证数",
    # the remaining columns of the logical tables (sandbox schema, DOMAIN.md)
    "account_name": "账户名称",
    "account_no": "账号",
    "account_type": "账户类型",
    "acct_kind": "账户性质",
    "start_date": "有效期起",
    "end_date": "有效期止",
    "act_lqd_date": "实际清算日期",
    "admin_kind": "三员类别",
    "agency_name": "单位名称",
    "agent_business_no": "银行交易流水号",
    "back_amt": "退款金额",
    "back_date": "退款日期",
    "back_id": "退款单",
    "back_reason": "退款原因",
    "bank_name": "银行名称",
    "bgt_doc_no": "指标文号",
    "code": "代码",
    "name": "名称",
    "credit_subject": "贷方科目",
    "debit_subject": "借方科目",
    "file_format": "文件格式",
    "fiscal_year": "年度",
    "info_key": "信息项",
    "info_value": "信息值",
    "is_enabled": "是否启用",
    "is_leaf": "是否末级",
    "is_plan_control": "是否计划控制",
    "last_login_time": "最近登录时间",
    "leave_date": "离职日期",
    "level_no": "级次",
    "mof_div_name": "区划名称",
    "next_year": "结转年度",
    "parent_code": "上级代码",
    "payee_bank_name": "收款银行",
    "payer_acct_no": "付款账号",
    "pro_name": "项目名称",
    "receipt_no": "回单号",
    "role_id": "角色",
    "role_name": "角色名称",
    "send_user_id": "发送人",
    "user_code": "用户代码",
    "user_id": "用户",
    "user_name": "用户名称",
    "n": "条数",
    "total": "合计",
    "surplus_amt": "多付金额",
    "entry_date": "入职日期",
    "status_date": "状态生效日期",
    "run_id": "工资统发批次",
    "pay_month": "发放月份",
    "head_count": "发放人数",
    "depr_period": "计提期间",
    "useful_life": "折旧年限（年）",
    "is_depreciable": "是否计提折旧",
    "plan_detail_id": "计划明细",
    "ori_amount": "年初（下达）金额",
    "adj_amt": "调整金额",
    "adjust_id": "调整单",
    "adjust_kind": "调整类型",
    "transfer_dir": "调剂方向",
    "counter_bgt_id": "调剂对方指标",
    "counter_adjust_id": "调剂对方调整单",
    "adjust_amt": "调整金额",
    "adjust_date": "调整日期",
    "adjust_doc_no": "调整文号",
    "net_adjusted": "截至调整日的调整合计",
    "paid_by_date": "截至调整日的已支付",
    "available_after": "调整后可用额度",
    "code_name": "代码名称",
    "valid_from": "授权起始日",
    "valid_to": "授权终止日",
    "is_public": "是否公共账号",
    "line_no": "分录序号",
    "subject_code": "会计科目",
    "debit_amt": "借方金额",
    "credit_amt": "贷方金额",
    "bus_kind": "业务类型",
    "maker_user_id": "制单人",
    "ori_pay_app_id": "原支付申请",
    "ori_back_id": "对应退款",
    "category": "科目类别",
    "balance_side": "余额方向",
    "debit_total": "借方合计",
    "credit_total": "贷方合计",
    "paid_amt": "支付净额（支付减退款）",
    "ledger_amt": "总账支出净额",
    "balance_amt": "科目余额（借减贷）",
    "subject_name": "科目名称",
    "refunded_detail": "截至检查日的退款合计",
}
# What proves a finding, when a rule does not list its evidence columns: amounts, dates, accounts, purposes,
# states and counts, in the order the rule returns them (after the key).
EVIDENCE_SUFFIXES = (
    "_amt",
    "amount",
    "_value",
    "_depr",
    "planned",
    "paid",
    "paid_detail",
    "_date",
    "_acct_no",
)
EVIDENCE_NAMES = {
    "use_des",
    "status",
    "sign_status",
    "vouchers",
    "vou_count",
    "detail_count",
    "area",
    "plate_no",
}


def column_label(column: str, labels: dict[str, str] | None = None) -> str | None:
    """The rule's own label for the column, else the common one (None for a column nobody named)."""
    return (labels or {}).get(column) or COLUMN_LABELS.get(column)


def heading(column: str, labels: dict[str, str] | None = None) -> str:
    """“支付金额（pay_amt）”: the label with the column name (the Excel export, for whoever writes the SQL)."""
    label = column_label(column, labels)
    return f"{label}（{column}）" if label else column


def is_evidence(column: str) -> bool:
    return column in EVIDENCE_NAMES or column.endswith(EVIDENCE_SUFFIXES)


def sample_columns(rule, columns: list[str]) -> list[dict]:
    """The sample's columns in the order a reader checks a finding: the key, then the evidence (the rule's own
    ``evidence`` list, else its amount and the amount/date/account/purpose columns), then the rest. Each as
    {"name", "label" (None when unknown), "kind": key|evidence|other, "wide": long text that may wrap}."""
    key = [c for c in (rule.key if rule else ()) if c in columns]
    if rule and rule.evidence:
        evidence = [c for c in rule.evidence if c in columns and c not in key]
        if rule.amount in columns and rule.amount not in key + evidence:
            evidence.append(rule.amount)  # the amount a finding involves proves it too
    else:
        amount = [rule.amount] if rule and rule.amount in columns else []
        evidence = amount + [c for c in columns if is_evidence(c) and c not in key and c not in amount]
    rest = [c for c in columns if c not in key and c not in evidence]
    labels = rule.labels if rule else None
    return [
        {
            "name": c,
            "label": column_label(c, labels),
            "kind": kind,
            "money": c == (rule.amount if rule else None)
            or c.endswith(("_amt", "amount", "_value", "_depr")),
            "wide": c in ("use_des", "payee_acct_name", "asset_name", "agency_name", "pro_name", "item_name"),
        }
        for kind, names in (("key", key), ("evidence", evidence), ("other", rest))
        for c in names
    ]


def pair_rows(rule, columns: list[str], sample: list[dict]) -> list[dict]:
    """并排比较: for a pair rule (``pair:`` in the rule file) each sample row holds two payments; as
    {"key": the finding's key, "fields": [{"name", "label", "first", "second", "same_row": the column is shared by
    both (unit, amount, days apart), "differs", "money"}]} — the pair's own columns first (by the second row's
    column), then the shared ones. Empty for other rules."""
    if not rule or not rule.pair:
        return []
    firsts = set(rule.pair.values())
    paired = [c for c in rule.pair if c in columns]
    shared = [c for c in columns if c not in firsts and c not in rule.pair]
    money = {c["name"]: c["money"] for c in sample_columns(rule, columns)}
    pairs = []
    for row in sample:
        fields = []
        for c in paired:
            first, second = row.get(rule.pair[c]), row.get(c)
            fields.append(
                {
                    "name": c,
                    "label": column_label(c, rule.labels) or c,
                    "first": first,
                    "second": second,
                    "same_row": False,
                    "differs": c not in rule.key and str(first) != str(second),  # ids differ by nature
                    "money": money.get(c, False),
                }
            )
        for c in shared:
            value = row.get(c)
            fields.append(
                {
                    "name": c,
                    "label": column_label(c, rule.labels) or c,
                    "first": value,
                    "second": value,
                    "same_row": True,
                    "differs": False,
                    "money": money.get(c, False),
                }
            )
        pairs.append({"key": [row.get(k) for k in rule.key], "fields": fields})
    return pairs


def run_workbook(run, results) -> bytes:
    """检查结果导出: a summary sheet, the (masked) sample rows of every failing rule, and every failing key."""
    book = Workbook()
    bold = Font(bold=True)
    summary = book.active
    summary.title = "检查汇总"
    summary.append([f"检查记录 #{run.pk}", str(run.database), f"检查日 {run.as_of:%Y-%m-%d}"])
    summary.append(
        [
            "规则编号",
            "规则",
            "规则包",
            "严重程度",
            "问题条数",
            "涉及金额（元）",
            "新增",
            "仍存在",
            "已解决",
            "错误",
        ]
    )
    for cell in summary[2]:
        cell.font = bold
    for r in results:
        summary.append(
            [
                r.rule_id,
                r.title,
                r.pack,
                r.severity,
                r.count,
                float(r.amount) if r.amount is not None else None,
                r.new_count,
                r.still_count,
                r.resolved_count,
                r.error,
            ]
        )
    detail = book.create_sheet("问题样本（已脱敏）")
    keys = book.create_sheet("问题数据主键")
    keys.append(["规则编号", "规则", "主键"])
    for cell in keys[1]:
        cell.font = bold
    for r in results:
        if not r.count:
            continue
        detail.append([f"{r.rule_id} {r.title}（共 {r.count} 条，以下为样本）"])
        detail.cell(row=detail.max_row, column=1).font = bold
        rule = shipped_rule(r.rule_id)
        ordered = [
            c["name"] for c in sample_columns(rule, r.columns)
        ]  # key and evidence first, as on the page
        detail.append([heading(c, rule.labels if rule else None) for c in ordered])
        for row in r.sample:
            detail.append([row.get(c) for c in ordered])
        units = [u for u in r.units if "error" not in u]
        if units:
            detail.append(["按预算单位", "单位名称", "问题条数", "涉及金额（元）"])
            for u in units:
                detail.append(
                    [
                        u["agency_code"],
                        u["agency_name"],
                        u["count"],
                        float(u["amount"]) if u["amount"] else None,
                    ]
                )
        detail.append([])
        for key in r.keys:
            keys.append([r.rule_id, r.title, " / ".join(str(k) for k in key)])
    for sheet in (summary, detail, keys):
        sheet.column_dimensions["A"].width = 22
        sheet.column_dimensions["B"].width = 28
    out = BytesIO()
    escape_workbook(book)  # rule titles, samples and keys come from users and from the finance database
    book.save(out)
    return out.getvalue()
