"""Demo accounts for the quickstart: one per role, passwords generated once and kept in ./var (0600)."""

import json
import secrets
import string

from django.conf import settings
from django.db import transaction

from caiwei.audit.context import acting_as
from caiwei.regions.demo import ensure_demo_regions

from . import services
from .models import User
from .roles import Role

DEMO_ACCOUNTS = [
    # username, role, full name (fictional), organization, region codes
    ("agent", Role.AGENT, "一线坐席（演示）", "运维服务商", ["152500000"]),
    ("engineer", Role.ENGINEER, "二线工程师（演示）", "运维服务商", ["152500000"]),
    ("pm", Role.PROJECT_MANAGER, "项目经理（演示）", "运维服务商", ["152500000"]),
    ("finance", Role.FINANCE_STAFF, "国库科（演示）", "盟财政局", ["152500000"]),
    ("approver", Role.FINANCE_APPROVER, "信息科科长（演示）", "盟财政局", ["152500000"]),
    ("unit", Role.UNIT_USER, "预算单位（演示）", "某县教育局", ["152502000"]),
    # The league's grant too: the sandbox's reconciliation is the league's, which the bank signs with finance.
    ("bank", Role.BANK_USER, "代理银行（演示）", "中国工商银行（演练）", ["152500000"]),
    ("sysadmin", Role.SYSTEM_ADMIN, "系统管理员（演示）", "盟财政局", []),
    ("secadmin", Role.SECURITY_ADMIN, "安全保密管理员（演示）", "盟财政局", []),
    ("auditor", Role.AUDITOR, "安全审计员（演示）", "盟财政局", []),
]
# The agent bank of the demo bank account: a sandbox bank (sandbox/codes.py BANKS), whose statements it signs.
DEMO_BANK_CODES = {"bank": "B102"}


def generate_password() -> str:
    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"Cw{body}#{secrets.randbelow(90) + 10}"


def ensure_demo_accounts() -> list[tuple[str, str, str]]:
    """Create missing demo accounts; return (username, role label, password) for each."""
    path = settings.VAR_DIR / "demo_accounts.json"
    saved: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    rows = []
    ensure_demo_regions()
    with acting_as(None, "setup"), transaction.atomic():
        for username, role, full_name, org, regions in DEMO_ACCOUNTS:
            user = User.objects.filter(username=username).first()
            if user is None or username not in saved:
                saved[username] = generate_password()
                if user is None:
                    user = services.create_user(
                        None,
                        username=username,
                        password=saved[username],
                        full_name=full_name,
                        organization=org,
                    )
                else:
                    services.reset_password(None, user, saved[username])
                services.set_roles(None, user, [role])
                services.set_regions(None, user, regions)
            bank_code = DEMO_BANK_CODES.get(username, "")
            if user.bank_code != bank_code:
                user.bank_code = bank_code
                user.save(update_fields=["bank_code"])
            rows.append((username, role.label, saved[username]))
    path.write_text(json.dumps(saved, ensure_ascii=False, indent=1))
    path.chmod(0o600)
    return rows
