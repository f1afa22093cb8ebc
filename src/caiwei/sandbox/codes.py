"""Code sets of the sandbox (a representative subset of the national ones) and name pools for fictional data.

Every person, company and account the sandbox produces is invented; nothing comes from the seed documents.
"""

# (code, name, parent) — level and leaf are derived.
EXP_FUNC = [
    ("201", "一般公共服务支出", None),
    ("20101", "人大事务", "201"),
    ("2010101", "行政运行", "20101"),
    ("2010102", "一般行政管理事务", "20101"),
    ("20103", "政府办公厅（室）及相关机构事务", "201"),
    ("2010301", "行政运行", "20103"),
    ("2010350", "事业运行", "20103"),
    ("20106", "财政事务", "201"),
    ("2010601", "行政运行", "20106"),
    ("2010607", "信息化建设", "20106"),
    ("205", "教育支出", None),
    ("20502", "普通教育", "205"),
    ("2050201", "学前教育", "20502"),
    ("2050202", "小学教育", "20502"),
    ("2050203", "初中教育", "20502"),
    ("210", "卫生健康支出", None),
    ("21004", "公共卫生", "210"),
    ("2100401", "疾病预防控制机构", "21004"),
    ("2100409", "重大公共卫生服务", "21004"),
    ("213", "农林水支出", None),
    ("21301", "农业农村", "213"),
    ("2130101", "行政运行", "21301"),
    ("2130122", "农业生产发展", "21301"),
    ("212", "城乡社区支出", None),
    ("21203", "城乡社区公共设施", "212"),
    ("2120303", "小城镇基础设施建设", "21203"),
    ("2010150", "事业运行", "20101"),  # 已停用（VALIDITY）
    ("2010608", "数字财政建设", "20106"),  # 本年新增（VALIDITY：本年与下年有）
]
# 部门预算经济分类 (30101 ...) and the 政府预算经济分类 code each maps to.
DEP_ECO = [
    ("301", "工资福利支出", None, None),
    ("30101", "基本工资", "301", "50101"),
    ("30102", "津贴补贴", "301", "50101"),
    ("30107", "绩效工资", "301", "50101"),
    ("302", "商品和服务支出", None, None),
    ("30201", "办公费", "302", "50201"),
    ("30205", "水费", "302", "50201"),
    ("30211", "差旅费", "302", "50201"),
    ("30213", "维修（护）费", "302", "50209"),
    ("30227", "委托业务费", "302", "50205"),
    ("30216", "培训费", "302", "50201"),  # 本年取消、只在上年值集中（VALIDITY）
    ("30240", "数据服务费", "302", "50201"),  # 下年度新增、只在下年值集中（VALIDITY）
    ("310", "资本性支出", None, None),
    ("31002", "办公设备购置", "310", "50306"),
    ("31007", "信息网络及软件购置更新", "310", "50306"),
]
GOV_ECO = [
    ("501", "机关工资福利支出", None),
    ("50101", "工资奖金津补贴", "501"),
    ("502", "机关商品和服务支出", None),
    ("50201", "办公经费", "502"),
    ("50205", "委托业务费", "502"),
    ("50209", "维修（护）费", "502"),
    ("503", "机关资本性支出（一）", None),
    ("50306", "设备购置", "503"),
]
FUND_TYPE = [
    ("1", "一般公共预算资金", None),
    ("11", "一般公共预算-本级", "1"),
    ("12", "一般公共预算-上级转移支付", "1"),
    ("13", "一般公共预算-阶段性专项资金", "1"),  # 有效期至 6 月 30 日（VALIDITY）
    ("2", "政府性基金预算资金", None),
    ("21", "政府性基金-本级", "2"),
    ("3", "国有资本经营预算资金", None),
    ("31", "国有资本经营预算-本级", "3"),
]
PAY_TYPE = [
    ("1", "国库集中支付", None),
    ("11", "直接支付", "1"),
    ("12", "授权支付", "1"),
    ("2", "实拨", None),
    ("21", "实拨资金", "2"),
]
BGT_TYPE = [
    ("1", "年初预算", None),
    ("11", "年初批复", "1"),
    ("2", "预算调整", None),
    ("21", "追加", "2"),
    ("3", "上年结转", None),
    ("31", "上年结转结余", "3"),
]

# The code sets hold rows for last year, this year and next year (offsets -1, 0, 1 from the sandbox year): most codes
# in all three. Element rows that differ: (element table, code) → “years” the code has a row in (default all three),
# “enabled”/“end” for this year's row (default enabled, 1 January to 31 December). Clean data never uses the codes
# that are not valid all this year; the injector's validity faults do. NEW_EXP (added this year) clean data uses.
DISABLED_EXP = "2010150"
WRONG_YEAR_DEP = "30240"  # only in next year's set: a code of another year
RETIRED_DEP = "30216"  # in last year's set, retired this year
NEW_EXP = "2010608"  # added this year: in this year's and next year's sets
WINDOW_FUND = "13"
WINDOW_FUND_END = (6, 30)  # (month, day) of the sandbox year
CODE_YEARS = (-1, 0, 1)
VALIDITY = {
    ("ele_exp_func", DISABLED_EXP): {"enabled": 0, "years": (-1, 0)},
    ("ele_dep_bgt_eco", WRONG_YEAR_DEP): {"years": (1,)},
    ("ele_fund_type", WINDOW_FUND): {"end": WINDOW_FUND_END, "years": (-1, 0)},
    ("ele_dep_bgt_eco", RETIRED_DEP): {"years": (-1,)},
    ("ele_exp_func", NEW_EXP): {"years": (0, 1)},
}
# The asset classes (GB/T 14885) are one national catalogue, not reissued each budget year: one row per code, of the
# sandbox year.
SINGLE_YEAR_SETS = ("ele_asset_class",)

# 收款人账户性质 and the branches payees bank with (fictional).
ACCT_KINDS = ("单位账户", "个人账户", "公务卡")
PAYEE_BANKS = [
    "中国工商银行锡林浩特分行（演练）",
    "中国农业银行锡林郭勒分行（演练）",
    "中国银行锡林郭勒分行（演练）",
    "中国建设银行锡林浩特支行（演练）",
    "内蒙古农村信用社锡林郭勒联社（演练）",
]
# What an individual's account (个人账户 / 公务卡) may be paid for: salaries (301), travel reimbursements (30211);
# a 公务卡 also for office expenses (30201). Everything else goes to a unit's account.
PERSONAL_ECO = {"个人账户": ("301", "30211"), "公务卡": ("30211", "30201")}
# DOMAIN [Level 4]: personal accounts do not receive purchases of goods (资本性支出 310: 设备购置、软件购置).
GOODS_ECO_PREFIX = "310"

BANKS = [
    ("B102", "中国工商银行（演练）", "csv_gbk"),
    ("B103", "中国农业银行（演练）", "xlsx"),
    ("B104", "中国银行（演练）", "fixed_width"),
    ("B105", "中国建设银行（演练）", "xml_gbk"),
    ("B313", "城市商业银行（演练）", "csv_gbk"),
    ("B402", "农村信用合作联社（演练）", "xlsx"),
]

COUNTY_NAMES = {
    "1525": [
        "二连浩特市",
        "锡林浩特市",
        "阿巴嘎旗",
        "苏尼特左旗",
        "苏尼特右旗",
        "东乌珠穆沁旗",
        "西乌珠穆沁旗",
        "太仆寺旗",
        "镶黄旗",
        "正镶白旗",
        "正蓝旗",
        "多伦县",
    ],
}
COUNTY_SUFFIX = {"1525": ["01", "02", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31"]}
CITY_NAMES = {"152500000": "锡林郭勒盟"}
PROVINCE_NAMES = {"15": "内蒙古自治区"}

AGENCY_KINDS = [
    "财政局",
    "教育局",
    "卫生健康委员会",
    "农牧局",
    "住房和城乡建设局",
    "交通运输局",
    "民政局",
    "人力资源和社会保障局",
    "自然资源局",
    "生态环境局",
    "水利局",
    "文化旅游体育局",
    "市场监督管理局",
    "统计局",
    "审计局",
    "应急管理局",
    "第一中学",
    "第二小学",
    "实验幼儿园",
    "人民医院",
    "疾病预防控制中心",
    "档案馆",
    "图书馆",
    "退役军人事务局",
]
# Fictional people: surnames and given-name characters combined at random.
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段漕钱汤尹黎易常武乔贺赖龚文"
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌宇浩凯鹏晨晓雪琳颖婷慧佳欣阳海峰波辉"
)
PAYEE_WORDS = [
    "科技",
    "信息",
    "建设",
    "商贸",
    "物业",
    "印刷",
    "电子",
    "医疗器械",
    "文化传媒",
    "工程",
    "设备",
    "软件",
]
PAYEE_KINDS = ["有限公司", "有限责任公司", "股份有限公司", "服务中心"]
PURPOSES = {
    "30201": ["办公用品采购", "复印纸及耗材", "办公费报销"],
    "30205": ["水费", "第三季度水费"],
    "30211": ["差旅费报销", "会议差旅费"],
    "30213": ["办公楼维修", "车辆维修费", "设备维护费"],
    "30227": ["委托审计服务费", "第三方评估费", "运维服务费"],
    "30101": ["基本工资", "工资发放"],
    "30102": ["津贴补贴发放"],
    "30107": ["绩效工资发放"],
    "31002": ["办公设备购置", "打印机采购"],
    "31007": ["信息系统建设", "软件采购款"],
}
PAY_ITEMS = [
    ("01", "岗位工资", 250000, 450000),
    ("02", "薪级工资", 80000, 300000),
    ("03", "绩效工资", 100000, 400000),
    ("04", "津贴补贴", 50000, 150000),
]


# 资产分类 (simplified from GB/T 14885): land and buildings carry an area, vehicles a plate number.
ASSET_CLASS = [
    ("1", "土地、海域及无居民海岛", None),
    ("101", "土地", "1"),
    ("2", "房屋和构筑物", None),
    ("201", "房屋", "2"),
    ("202", "构筑物", "2"),
    ("3", "设备", None),
    ("302", "计算机设备", "3"),
    ("303", "办公设备", "3"),
    ("304", "车辆", "3"),
    ("6", "家具和用具", None),
    ("601", "家具", "6"),
    ("7", "文物和陈列品", None),
    ("701", "文物", "7"),
]
ASSET_NAMES = {
    "101": "办公用地",
    "201": "办公楼",
    "202": "围墙及道路",
    "302": "台式计算机",
    "303": "多功能一体机",
    "304": "公务用车",
    "601": "办公桌椅",
    "701": "馆藏文物",
}
# 折旧年限（年）per class; None: not depreciated (政府会计准则第3号：土地、文物和陈列品不计提折旧). Parents follow their
# children's treatment.
ASSET_LIFE = {
    "1": None,
    "101": None,
    "2": 50,
    "201": 50,
    "202": 30,
    "3": 6,
    "302": 6,
    "303": 6,
    "304": 8,
    "6": 15,
    "601": 15,
    "7": None,
    "701": None,
}
# A person's status 人员状态 and the ones that end service (they carry a leave date, 离职/退休/调出日期).
PERSON_STATUSES = ("在职", "离职", "退休", "调出")
LEAVING_STATUSES = ("离职", "退休", "调出")
ASSET_AREA_CLASSES = ("101", "201")
ASSET_VEHICLE_CLASS = "304"

# Fault types in Chinese, for the sandbox page and the data checks' comparison with the manifest.
FAULT_LABELS = {
    "indicator_overspent": "指标超支",
    "plan_over_indicator": "用款计划超指标",
    "element_mismatch": "支付与指标要素不一致",
    "tracking_id_lost": "追溯码丢失",
    "code_not_in_set": "代码不在标准值集",
    "non_leaf_code": "使用非末级代码",
    "duplicate_payment": "重复支付",
    "voucher_no_receipt": "凭证超期无回单",
    "paid_not_cleared": "已支付超期未清算",
    "bank_amount_mismatch": "银行实付金额与凭证不符",
    "voucher_missing_at_bank": "银行文件缺少凭证",
    "bank_line_no_voucher": "银行文件有、财政无凭证",
    "carryover_mismatch": "结转数与年末余额不符",
    "same_person_enter_approve": "同一人录入并审核",
    "admin_two_roles": "一人兼任两个三员角色",
    "dormant_account": "长期未登录账号仍启用",
    "departed_staff_active": "离职人员账号仍启用",
    "person_duplicate_id": "身份证号重复",
    "person_malformed_id": "身份证号校验位错误",
    "voucher_sign_failed": "凭证签章失败",
    "pay_item_implausible": "工资项目金额不合理",
    "asset_book_date_invalid": "资产记账日期不合理",
    "asset_no_duplicate": "资产编号重复",
    "asset_vehicle_no_plate": "车辆缺少号牌",
    "asset_disposal_conflict": "资产状态与处置矛盾",
    "asset_value_mismatch": "资产净值与原值折旧不符",
    "disabled_code_used": "使用已停用的代码",
    "code_outside_validity": "代码在使用日不在有效期内",
    "code_wrong_year": "使用非本年度的代码",
    "payee_name_mismatch": "收款户名与收款人信息不符",
    "account_kind_not_allowed": "收款账户性质不允许该类支付",
    "zero_balance_account_receives": "零余额账户作为收款账户",
    "person_status_date_conflict": "人员状态与日期矛盾",
    "person_age_implausible": "入职年龄不合理",
    "salary_after_leave": "离开后仍发工资",
    "salary_run_sum_mismatch": "工资统发总额与明细不符",
    "salary_wrong_agency": "工资发给其他单位人员",
    "salary_item_off_standard": "工资项目偏离月标准",
    "depr_sum_mismatch": "累计折旧与折旧明细不符",
    "depr_non_depreciable": "不计提折旧的资产计提了折旧",
    "depr_after_disposal": "资产处置后仍计提折旧",
    "reg_no_duplicate_in_region": "号牌在区划内跨单位重复",
    "card_holder_departed": "个人账户持有人已离开仍收款",
    "plan_detail_sum_mismatch": "用款计划明细之和与计划不符",
    "plan_detail_element_mismatch": "用款计划明细要素与指标不一致",
    "adjustment_not_applied": "指标金额与年初数加调整不符",
    "transfer_unbalanced": "指标调剂调出与调入不等",
    "reduction_below_paid": "调减后指标低于已支付",
    "adjustment_after_as_of": "指标调整日期晚于检查日",
    "code_retired_this_year": "使用本年已取消的代码",
    "approved_without_role": "审核人在审核日已无审核授权",
    "admin_handles_business": "三员账号办理支付业务",
    "shared_operator_signed": "公共账号审核并发送凭证",
    "blank_operator": "经办人为空",
    "acts_for_other_agency": "录入人不属于付款单位",
    "amount_extra_digit": "支付金额多录一位（远超同类支付）",
    "amount_history_outlier": "支付金额小数点错位（远超该收款人以往同类支付）",
    "gl_unbalanced": "总账凭证借贷不平衡",
    "gl_wrong_side": "总账科目记账方向与业务不符",
    "gl_subject_not_leaf": "总账分录使用非末级会计科目",
    "refund_exceeds_paid": "退款超过实付金额",
    "refund_after_as_of": "退款日期晚于检查日",
    "repayment_exceeds_refund": "重新支付超过退款金额",
    "ledger_not_tie": "总账支出与支付不符",
    "near_duplicate_payment": "近似重复支付",
    "bank_returned_not_refunded": "银行退票、财政未登记退款",
    "bank_failed_line": "银行支付失败、财政仍为已支付",
    "pboc_clearing_amount": "人民银行清算金额与财政不符",
    "pboc_clearing_missing": "人民银行清算文件缺少某月清算",
}
# What the agent banks write as the reason of a 退票 or a 失败 line (generic, invented). A clean 退票 is a refund of the
# whole paid amount booked in 退款 pay_back_info; the bank's words for the refund's reason.
BANK_RETURN_REASONS = ("账户已销户", "户名不符", "账号不存在", "账户已冻结", "收款行退回")
BANK_FAIL_REASONS = ("收款行处理超时", "收款账户状态异常", "超过单笔支付限额", "报文要素校验未通过")
REFUND_RETURN_REASON = {
    "收款账号有误": "账号不存在",
    "收款户名不符": "户名不符",
    "收款人账户已销户": "账户已销户",
}


# 会计科目 of 财政总预算会计制度（财库〔2015〕192号）that the sandbox's business uses: (code, name, parent, category,
# balance side). 国库存款 carries detail subjects by fund class (演练简化); the expenditure subjects follow the budget
# the fund type belongs to. Not used by clean data: the non-leaf 1001 itself (fault gl_subject_not_leaf).
ACCT_SUBJECTS = [
    ("1001", "国库存款", None, "资产", "借"),
    ("100101", "国库存款—一般公共预算存款", "1001", "资产", "借"),
    ("100102", "国库存款—政府性基金预算存款", "1001", "资产", "借"),
    ("100103", "国库存款—国有资本经营预算存款", "1001", "资产", "借"),
    ("1003", "国库现金管理存款", None, "资产", "借"),
    ("1011", "预拨经费", None, "资产", "借"),
    ("2011", "应付国库集中支付结余", None, "负债", "贷"),
    ("3001", "一般公共预算结转结余", None, "净资产", "贷"),
    ("3002", "政府性基金预算结转结余", None, "净资产", "贷"),
    ("3003", "国有资本经营预算结转结余", None, "净资产", "贷"),
    ("4001", "一般公共预算本级收入", None, "收入", "贷"),
    ("4002", "政府性基金预算本级收入", None, "收入", "贷"),
    ("4003", "国有资本经营预算本级收入", None, "收入", "贷"),
    ("5001", "一般公共预算本级支出", None, "支出", "借"),
    ("5002", "政府性基金预算本级支出", None, "支出", "借"),
    ("5003", "国有资本经营预算本级支出", None, "支出", "借"),
]
# Fund type (first digit: 1 一般公共预算, 2 政府性基金, 3 国有资本经营) → (expenditure subject, 国库存款 detail subject).
FUND_SUBJECTS = {"1": ("5001", "100101"), "2": ("5002", "100102"), "3": ("5003", "100103")}
# Budget class → the 本级收入 subject the region's revenue is booked to (借 国库存款、贷 收入).
INCOME_SUBJECTS = {"1": "4001", "2": "4002", "3": "4003"}
