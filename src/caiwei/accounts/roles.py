"""Roles and what each may do: the one table every page, admin screen, API call and command consults."""

from django.db import models


class Role(models.TextChoices):
    AGENT = "agent", "一线坐席"
    ENGINEER = "engineer", "二线工程师"
    PROJECT_MANAGER = "pm", "项目经理"
    FINANCE_STAFF = "finance_staff", "财政业务人员"
    FINANCE_APPROVER = "finance_approver", "财政审批人"
    UNIT_USER = "unit_user", "预算单位用户"
    BANK_USER = "bank_user", "银行用户"
    SYSTEM_ADMIN = "sysadmin", "系统管理员"
    SECURITY_ADMIN = "secadmin", "安全保密管理员"
    AUDITOR = "auditor", "安全审计员"


# 三员分设: no account may hold two of these; the database enforces it too (UserRole.tri_admin).
TRI_ADMIN_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDITOR})
BUSINESS_ROLES = frozenset(set(Role) - TRI_ADMIN_ROLES)
OPS_ROLES = frozenset({Role.AGENT, Role.ENGINEER, Role.PROJECT_MANAGER})
FINANCE_ROLES = frozenset({Role.FINANCE_STAFF, Role.FINANCE_APPROVER})


class Capability(models.TextChoices):
    MANAGE_ACCOUNTS = "accounts.manage", "管理账号"
    MANAGE_REGIONS = "regions.manage", "维护财政区划"
    GRANT = "roles.grant", "授予角色与区划"
    READ_AUDIT = "audit.read", "查阅和导出审计日志"
    MANAGE_CALENDAR = "calendar.manage", "维护业务日历"
    VIEW_CALENDAR = "calendar.view", "查看业务日历"
    VIEW_JOBS = "jobs.view", "查看后台任务"
    VIEW_REGIONS = "regions.view", "查看财政区划"
    VIEW_SANDBOX = "sandbox.view", "查看演练环境"
    DESK_VIEW = "desk.view", "查看工单"
    DESK_CREATE = "desk.create", "登记工单"
    DESK_WORK = "desk.work", "处理工单"
    DESK_DECIDE = "desk.decide", "认定投诉、维护服务时限策略"
    MANAGE_SANDBOX = "sandbox.manage", "生成演练库"
    CHECKS_VIEW = "checks.view", "查看数据检查"
    CHECKS_RUN = "checks.run", "执行数据检查、由问题开工单"
    MANAGE_TARGETS = "targets.manage", "登记运维对象与数据库连接"
    APPROVE_CHANGES = "accounts.approve", "查看与审批涉及三员的账号变更"
    RECON_VIEW = "recon.view", "查看对账与差异"
    RECON_RUN = "recon.run", "执行对账、处理差异"
    RECON_FORMATS = "recon.formats", "维护银行文件格式"
    RECON_SIGN = "recon.sign", "签认月度对账"
    DATA_VIEW = "data.view", "查看数据变更、备份与恢复演练"
    DATA_QUERY = "data.query", "在财政库上执行只读查询"
    DATA_GRANT = "data.grant", "授予查询权限、审批查询结果导出"
    DATA_CHANGE = "data.change", "提交、执行与回滚数据变更"
    DATA_APPROVE = "data.approve", "审批数据变更"
    DATA_BACKUP = "data.backup", "备份、按范围恢复与灾难恢复演练"
    MONITOR_VIEW = "monitor.view", "查看监控状态、告警与历史"
    MONITOR_MANAGE = "monitor.manage", "维护监控清单、告警规则与维护窗口"
    INSPECT_VIEW = "inspect.view", "查看巡检计划、巡检日历与巡检报告"
    INSPECT_RUN = "inspect.run", "执行巡检、登记人工巡检结果"
    INSPECT_PLAN = "inspect.plan", "维护巡检计划"


CAPABILITIES: dict[str, frozenset[str]] = {
    Capability.MANAGE_ACCOUNTS: frozenset({Role.SYSTEM_ADMIN}),
    Capability.MANAGE_REGIONS: frozenset({Role.SYSTEM_ADMIN}),
    Capability.GRANT: frozenset({Role.SECURITY_ADMIN}),
    Capability.READ_AUDIT: frozenset({Role.AUDITOR}),
    Capability.MANAGE_CALENDAR: frozenset({Role.SYSTEM_ADMIN, Role.PROJECT_MANAGER}),
    Capability.VIEW_CALENDAR: BUSINESS_ROLES | {Role.SYSTEM_ADMIN},
    Capability.VIEW_JOBS: OPS_ROLES | FINANCE_ROLES | TRI_ADMIN_ROLES,
    Capability.VIEW_REGIONS: BUSINESS_ROLES | TRI_ADMIN_ROLES,
    Capability.VIEW_SANDBOX: OPS_ROLES | FINANCE_ROLES,
    Capability.DESK_VIEW: OPS_ROLES | FINANCE_ROLES,
    Capability.DESK_CREATE: OPS_ROLES | FINANCE_ROLES | {Role.UNIT_USER, Role.BANK_USER},
    Capability.DESK_WORK: OPS_ROLES,
    Capability.DESK_DECIDE: frozenset({Role.PROJECT_MANAGER}),
    Capability.MANAGE_SANDBOX: frozenset({Role.PROJECT_MANAGER, Role.ENGINEER}),
    Capability.CHECKS_VIEW: OPS_ROLES | FINANCE_ROLES,
    Capability.CHECKS_RUN: OPS_ROLES | {Role.FINANCE_STAFF},
    Capability.MANAGE_TARGETS: frozenset({Role.PROJECT_MANAGER, Role.ENGINEER}),
    # Any of the three sees the requests; who may approve which one is decided in accounts.services.
    Capability.APPROVE_CHANGES: TRI_ADMIN_ROLES,
    # A bank user sees and signs only the reconciliation of the bank of their account (User.bank_code).
    Capability.RECON_VIEW: OPS_ROLES | FINANCE_ROLES | {Role.BANK_USER},
    Capability.RECON_RUN: OPS_ROLES | {Role.FINANCE_STAFF},
    Capability.RECON_FORMATS: frozenset({Role.PROJECT_MANAGER, Role.ENGINEER}),
    Capability.RECON_SIGN: FINANCE_ROLES | {Role.BANK_USER},
    # 数据运维: the console is further narrowed by per-user grants (targets, logical tables); a change is written by
    # an engineer and approved by the bureau's approver, never by its author (dataops enforces author ≠ approver).
    Capability.DATA_VIEW: OPS_ROLES | FINANCE_ROLES,
    Capability.DATA_QUERY: frozenset({Role.ENGINEER, Role.PROJECT_MANAGER, Role.FINANCE_STAFF}),
    Capability.DATA_GRANT: frozenset({Role.PROJECT_MANAGER}),
    Capability.DATA_CHANGE: frozenset({Role.ENGINEER, Role.PROJECT_MANAGER}),
    Capability.DATA_APPROVE: frozenset({Role.FINANCE_APPROVER}),
    Capability.DATA_BACKUP: frozenset({Role.ENGINEER, Role.PROJECT_MANAGER}),
    # 监控: the board and alerts for operations and finance; the inventory, rules and windows for engineers and PMs.
    Capability.MONITOR_VIEW: OPS_ROLES | FINANCE_ROLES,
    Capability.MONITOR_MANAGE: frozenset({Role.ENGINEER, Role.PROJECT_MANAGER}),
    # 巡检: calendar and reports for operations and finance; engineers and PMs run inspections and keep the plans.
    Capability.INSPECT_VIEW: OPS_ROLES | FINANCE_ROLES,
    Capability.INSPECT_RUN: frozenset({Role.ENGINEER, Role.PROJECT_MANAGER}),
    Capability.INSPECT_PLAN: frozenset({Role.ENGINEER, Role.PROJECT_MANAGER}),
}


def roles_with(capability: str) -> frozenset[str]:
    return CAPABILITIES[capability]
