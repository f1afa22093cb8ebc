"""The capabilities of PRODUCT.md as home-page tiles and navigation, each shown to the roles that use it."""

from dataclasses import dataclass

from django.urls import reverse

from caiwei.accounts.roles import CAPABILITIES, FINANCE_ROLES, OPS_ROLES, Capability, Role


@dataclass(frozen=True)
class Tile:
    code: str
    title: str
    summary: str
    roles: frozenset[str]
    url_name: str | None = None  # None: not built yet, and the tile says so

    @property
    def built(self) -> bool:
        return self.url_name is not None

    @property
    def url(self) -> str | None:
        return reverse(self.url_name) if self.url_name else None


REQUESTERS = frozenset({Role.UNIT_USER, Role.BANK_USER})
TILES = [
    Tile(
        "desk",
        "服务台 · 工单",
        "登记与处理工单，按合同时限与业务日历计时；热线登记、邮件受理、满意度评价与考核看板",
        CAPABILITIES[Capability.DESK_VIEW],
        "desk:queue",
    ),
    Tile("portal", "我的工单", "提交、跟踪本单位的工单，确认解决并评价", REQUESTERS, "desk:mine"),
    Tile("kb", "知识库", "常见问题手册、文章版本、相似问题推荐", OPS_ROLES | FINANCE_ROLES | REQUESTERS),
    Tile(
        "inspections",
        "巡检与监控",
        "数据库、服务、消息队列、接口文件按计划巡检，异常转告警和工单",
        CAPABILITIES[Capability.MONITOR_VIEW],
        "monitor:board",
    ),
    Tile(
        "checks",
        "数据检查",
        "额度、要素、业务、部标、重复支付、资产、人员规则下推到财政库执行，问题比对与开工单",
        CAPABILITIES[Capability.CHECKS_VIEW],
        "checks:index",
    ),
    Tile(
        "recon",
        "银行对账",
        "代理银行与人民银行清算对账，差异逐笔解释",
        CAPABILITIES[Capability.RECON_VIEW],
        "recon:index",
    ),
    Tile(
        "dataops",
        "数据运维",
        "只读查询（脱敏）、数据变更审批与一键回滚、备份与按范围恢复、灾难恢复演练",
        CAPABILITIES[Capability.DATA_VIEW],
        "dataops:index",
    ),
    Tile(
        "releases",
        "发布、事件与年结",
        "上线记录、应急预案与演练、宕机报告、年结检查",
        OPS_ROLES | FINANCE_ROLES,
    ),
    Tile("access", "权限审计", "目标系统的三员分设、不相容职责、休眠与离职账号", OPS_ROLES | FINANCE_ROLES),
    Tile("reports", "报表与合同考核", "运维月报、考核指标、培训记录与交付文档", OPS_ROLES | FINANCE_ROLES),
    Tile(
        "sandbox",
        "演练环境",
        "内置的预算执行演练库、故障注入、银行文件与报文",
        CAPABILITIES[Capability.VIEW_SANDBOX],
        "sandbox:index",
    ),
    Tile(
        "calendar",
        "业务日历",
        "工作时间、法定节假日与调休、关键时期",
        CAPABILITIES[Capability.VIEW_CALENDAR],
        "bizcalendar:index",
    ),
    Tile("jobs", "后台任务", "后台任务的进度与日志", CAPABILITIES[Capability.VIEW_JOBS], "jobs:list"),
    Tile("regions", "财政区划", "盟市与旗县区划树", CAPABILITIES[Capability.VIEW_REGIONS], "regions:list"),
    Tile(
        "users",
        "账号管理",
        "新建账号、停用、解锁、重置密码（不含授权）",
        CAPABILITIES[Capability.MANAGE_ACCOUNTS],
        "admin:accounts_user_changelist",
    ),
    Tile(
        "grants",
        "授权管理",
        "授予角色与财政区划（三员分设）",
        CAPABILITIES[Capability.GRANT],
        "accounts:grants",
    ),
    Tile(
        "audit",
        "审计日志",
        "查阅、检索、导出审计日志，校验哈希链",
        CAPABILITIES[Capability.READ_AUDIT],
        "audit:events",
    ),
]


def tiles_for(user) -> list[Tile]:
    """The tiles of the user's roles; a built tile only when its page's declared policy lets the user in."""
    from caiwei.web import policy

    if not user.is_authenticated:
        return []
    shown = []
    for tile in TILES:
        if not user.role_codes & tile.roles:
            continue
        rule = policy.PAGES.get(tile.url_name or "")
        if rule is not None and not policy.admits(rule, user):
            continue
        shown.append(tile)
    return shown
