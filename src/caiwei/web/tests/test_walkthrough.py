"""Every role walks its navigation in Debian's Chromium, with data on the pages: each nav tile and every page linked
one level deep from those is opened and checked; every link on those pages is fetched.

What each page must satisfy:

- a link a role is shown must work: no 4xx/5xx (and no bounce to the login page) behind any link on the page;
  downloads (.docx, .xlsx, .csv, .json ...) answer 200 with their own content type;
- the text is Chinese: no English word outside the API docs (see ``allowed_token`` for what is not English);
- no table column narrower than two characters at 1440 px, no short button label broken over two lines;
- no console error, no uncaught script error;
- /admin/ is either usable by the role or answers the Chinese 403 page with the navigation (no redirect loop), and
  a role that cannot use it is shown no link to it; an unknown page answers the Chinese 404 page.

Full-page screenshots land in var/screenshots/walk/<role>/<page>.png.
"""

import os
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import Resolver404, resolve

from caiwei.accounts.roles import Role
from caiwei.web.tests.test_browser import browser, log_in  # noqa: F401 (browser: the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

SHOTS = Path(settings.VAR_DIR) / "screenshots" / "walk"

# Role -> the account walked, as in the ``users`` fixture of caiwei/conftest.py (same names, roles and regions).
# Only the accounts a walk needs are made (hashing a password takes half a second): the role's own, and those that
# file and work the tickets of the data.
ACCOUNTS = {
    Role.AGENT: ("t_agent", ("152500000",)),
    Role.ENGINEER: ("t_engineer", ("152500000",)),
    Role.PROJECT_MANAGER: ("t_pm", ("152500000",)),
    Role.FINANCE_STAFF: ("t_finance", ("152500000",)),
    Role.FINANCE_APPROVER: ("t_approver", ("152500000",)),
    Role.UNIT_USER: ("t_unit", ("152502000",)),
    Role.BANK_USER: ("t_bank", ("152501000",)),
    Role.SYSTEM_ADMIN: ("t_sysadmin", ()),
    Role.SECURITY_ADMIN: ("t_secadmin", ()),
    Role.AUDITOR: ("t_auditor", ()),
}
DATA_ROLES = (Role.AGENT, Role.ENGINEER, Role.UNIT_USER, Role.BANK_USER)

# --- What is not English --------------------------------------------------------------------------------------------
# A Chinese UI legitimately shows Latin letters in three kinds of token, and only these:
# 1. acronyms and units that Chinese technical writing uses as they are (there is no Chinese word in use for them);
ACRONYMS = {
    "API", "CPU", "CSV", "DB", "GB", "HTTP", "HTTPS", "ID", "IP", "IT", "JSON", "KB", "KPI", "MB", "MQ", "OTP", "PBOC",
    "PDF", "SLA", "SQL", "TB", "TOTP", "URL", "XML", "UTC", "SSL", "TLS", "CA", "UI", "PC",
    "GET", "POST", "PUT", "PATCH", "DELETE",  # HTTP methods, named as such in API references
    "IMAP", "SMTP", "POP3", "LDAP",  # mail and directory protocols
    "SFTP", "SSH",  # file transfer (the reconciliation's bank file sources)
    "GBK", "YAML",  # a character set and the notation of the bank file layouts, named as such
    "RTO", "RPO",  # recovery time and recovery point objectives of the DR drills, named as such
    "TCP", "FTP", "FTPS",  # what a monitored port or file drop speaks (监控)
    "DDL",  # 数据变更: statements that change a table's structure, named as such
}  # fmt: skip
# 2. names of products and formats, which are proper names and are not translated;
PRODUCTS = {
    "PostgreSQL", "MySQL", "MariaDB", "SQLite", "Oracle", "Excel", "Word", "WPS", "Swagger", "OpenAPI", "Chromium",
    "Linux", "Windows", "Redis", "Nginx", "Kingbase", "KingbaseES", "GaussDB", "openGauss", "Authenticator",
    "Microsoft", "Google", "FreeOTP", "htmx", "Bootstrap", "Django", "Office", "QQ", "DM",
    "RabbitMQ", "Prometheus", "PromQL",  # the message broker and the metrics system monitoring reads
}  # fmt: skip
# 3. values of the data: codes and numbers with digits (PAY-001, T20261124-0001, 演A12345, SM4), identifiers with an
#    underscore (the sandbox's table and column names shown beside their Chinese label, the fixtures' usernames),
#    file names with an extension and file formats by their extension (xlsx), e-mail addresses, host names, URLs
#    and URL paths (sqlite:///var/…, /api/…), literals in ASCII double quotes (a JSON example of what to type) and
#    masked secrets (the visible head of a password hash before its asterisks).
#    These are recognised by shape below.
# Text inside <code>, <pre>, <kbd> and <samp> is code (a command to type, a SQL statement) and is not read.
FILE_EXTENSIONS = (
    "docx",
    "xlsx",
    "csv",
    "json",
    "jsonl",
    "pdf",
    "sqlite3",
    "txt",
    "zip",
    "xml",
    "yaml",
    "py",
    "log",
)
FORMATS = {"docx", "xlsx", "csv", "json", "jsonl", "pdf", "xml", "txt", "zip"}
# Names of technical fields and notations that have no Chinese name in use: a mail's Message-ID header, a cron line.
NOTATIONS = {"Message-ID", "cron"}
LITERALS = re.compile(r"\b[a-z][a-z0-9+]*://\S*|(?<![\w.])/[\w\-./]+|\"[^\"]*\"|\S*\*{3,}")
TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*(?:[.@][A-Za-z0-9_\-]+)*")


def allowed_token(token: str) -> bool:
    letters = re.sub(r"[^A-Za-z]", "", token)
    if len(letters) < 2 or token.lower() in FORMATS or token in NOTATIONS:
        return True  # numbers, single letters (a plate's province letter, 第 N 项)
    if any(c.isdigit() for c in token) or "_" in token:
        return True  # codes, numbers, identifiers
    if "@" in token or ("." in token and token.rsplit(".", 1)[-1].lower() in FILE_EXTENSIONS):
        return True  # e-mail addresses and file names
    if "." in token and re.fullmatch(r"[a-z0-9\-]+(\.[a-z0-9\-]+)+", token):
        return True  # host names, dotted module names
    parts = [p for p in re.split(r"[-./]", token) if p]
    return all(p in ACRONYMS or p in PRODUCTS or len(re.sub(r"[^A-Za-z]", "", p)) < 2 for p in parts)


def english_in(texts: list[str]) -> list[str]:
    found = {}
    for text in texts:
        words = [t for t in TOKEN.findall(LITERALS.sub(" ", text)) if not allowed_token(t)]
        if words:
            found[text.strip()[:100]] = "、".join(dict.fromkeys(words))
    return [f"{words}（见于“{text}”）" for text, words in found.items()]


# The text a sighted user reads: rendered text nodes (not code, not hidden, not screen-reader-only), tooltips,
# placeholders, the labels of submit inputs and the window title.
COLLECT_TEXT = """() => {
  const skip = 'script,style,template,noscript,code,pre,kbd,samp,.visually-hidden,.visually-hidden-focusable';
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const t = n.nodeValue.trim();
    const el = n.parentElement;
    if (t && !el.closest(skip) && el.checkVisibility({visibilityProperty: true})) out.push(t);
  }
  for (const el of document.querySelectorAll('[title],[placeholder],input[type=submit][value]')) {
    if (!el.checkVisibility()) continue;
    for (const a of ['title', 'placeholder']) if (el.getAttribute(a)) out.push(el.getAttribute(a));
    if (el.matches('input[type=submit]')) out.push(el.value);
  }
  out.push(document.title);
  return out;
}"""

# Cells with text whose content box is narrower than two characters of their own font — or than the text itself
# when that is shorter (a count "1" needs no more than its digit), i.e. cells where the text has to wrap or clip.
NARROW_CELLS = """() => {
  const out = [];
  const ctx = document.createElement('canvas').getContext('2d');
  for (const cell of document.querySelectorAll('table th, table td')) {
    const text = cell.innerText.trim();
    if (!text || !cell.getClientRects().length) continue;
    const style = getComputedStyle(cell);
    const width = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    ctx.font = style.font;
    const need = Math.min(2 * parseFloat(style.fontSize), ctx.measureText(text).width);
    if (width + 0.5 < need) out.push(`${Math.round(width)}px < ${Math.round(need)}px: ${text.slice(0, 30)}`);
  }
  return out;
}"""

# Buttons whose short label (up to eight characters) breaks over two lines: squeezed by their neighbours.
BROKEN_BUTTONS = """() => {
  const out = [];
  for (const b of document.querySelectorAll('.btn, button')) {
    const text = b.innerText.trim();
    if (!text || text.length > 8 || !b.checkVisibility()) continue;
    const range = document.createRange();
    range.selectNodeContents(b);
    const rects = Array.from(range.getClientRects()).filter(r => r.width > 0);
    if (!rects.length) continue;
    const height = Math.max(...rects.map(r => r.bottom)) - Math.min(...rects.map(r => r.top));
    const style = getComputedStyle(b);
    const line = parseFloat(style.lineHeight) || 1.5 * parseFloat(style.fontSize);
    if (height > 1.6 * line) out.push(text);
  }
  return out;
}"""

LINKS = (
    "() => Array.from(document.querySelectorAll('a[href]'), a => [a.href, a.innerText.trim().slice(0, 40)])"
)


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    """One sandbox (league 152500000 with every fault once) for the whole module; the database rows are made anew
    for each role, since a transactional test empties the database."""
    from caiwei.sandbox import service

    var = tmp_path_factory.mktemp("walk-var")
    with override_settings(VAR_DIR=var, CAIWEI_SANDBOX_URL=f"sqlite:///{var / 'sandbox.sqlite3'}"):
        service.load_default(payments=600)
        yield var


@pytest.fixture
def accounts(make_user, role):
    made = {}
    for r in dict.fromkeys([*DATA_ROLES, role]):
        username, grants = ACCOUNTS[r]
        made[r] = make_user(username, r, regions=grants)
    return made


@pytest.fixture
def data(var_dir, accounts, regions):
    """A few tickets in several states, hotline calls, the sandbox registered with a first check run (a job)."""
    from datetime import timedelta

    from django.utils import timezone

    from caiwei.bizcalendar.defaults import ensure_defaults
    from caiwei.bizcalendar.models import BusinessCalendar, KeyPeriod
    from caiwei.checks.services import register_sandbox, start_run
    from caiwei.desk import flow, services

    ensure_defaults(BusinessCalendar, KeyPeriod)
    fields = {
        "system": "国库集中支付",
        "ticket_type": "故障",
        "severity": "一般",
        "description": "支付凭证发送人民银行后未收到回单，请协助核查。",
        "requester_name": "经办人（演示）",
        "requester_kind": "unit",
        "channel": "hotline",
    }
    agent, unit, bank = accounts[Role.AGENT], accounts[Role.UNIT_USER], accounts[Role.BANK_USER]
    city, county, other = regions["152500000"], regions["152502000"], regions["152501000"]
    first = services.create_ticket(agent, region=city, title="支付凭证未回单", **fields)
    services.comment(agent, first, "已联系代理银行核实", internal=True)
    services.comment(agent, first, "正在核查，请稍候")
    services.change_status(agent, first, flow.RESPONDED)
    services.assign(agent, first, accounts[Role.ENGINEER], tier="second")
    second = services.create_ticket(
        agent, region=county, title="用款计划无法提交", **{**fields, "ticket_type": "咨询"}
    )
    services.change_status(agent, second, flow.RESPONDED)
    services.change_status(agent, second, flow.CONFIRMING, "已指导重新提交")
    services.create_ticket(unit, region=county, title="单位账户余额查询", **{**fields, "channel": "portal"})
    services.create_ticket(
        bank,
        region=other,
        title="清算回单重复",
        **{**fields, "channel": "portal", "requester_kind": "bank", "requester_name": "银行柜员（演示）"},
    )
    now = timezone.now()
    services.log_call(agent, region=city, answered=True, caller_number="0479-8220001", summary="咨询凭证状态")
    services.log_call(
        agent, region=city, at=now - timedelta(minutes=30), answered=False, caller_number="0479-8220002"
    )
    services.log_call(agent, region=county, answered=True, caller_number="0479-8220003", ticket=second)
    start_run(agent, register_sandbox(run_first=False))  # through the job runner: a job on the jobs page
    # 监控: a service nobody answers on (down twice: an alert and its incident ticket), a heartbeat, a window.
    from caiwei.monitor import services as monitor
    from caiwei.monitor.models import Item, MaintenanceWindow

    monitor.ensure_default_rules()
    engineer = accounts[Role.ENGINEER]
    down, _ = monitor.save_item(
        engineer,
        Item(
            region=city,
            system="国库集中支付",
            name="支付前置服务",
            kind="tcp",
            config={"host": "127.0.0.1", "port": 9},
        ),
    )
    monitor.run_item_now(down)
    monitor.run_item_now(down)
    monitor.save_item(
        engineer,
        Item(
            region=city, system="工资统发", name="工资批量任务", kind="heartbeat", config={"period_s": 86400}
        ),
    )
    monitor.save_window(
        engineer,
        MaintenanceWindow(
            region=city,
            reason="年结升级",
            starts_at=now + timedelta(days=1),
            ends_at=now + timedelta(days=1, hours=3),
        ),
    )
    return accounts


def route_key(url: str) -> tuple | None:
    """Pages of one route with the same query keys are the same page for this walk (one ticket stands for all)."""
    parts = urlsplit(url)
    try:
        match = resolve(parts.path)
    except Resolver404:
        return (parts.path, ())
    return (match.route, tuple(sorted({k for k, _ in parse_qsl(parts.query)})))


def page_name(url: str) -> str:
    parts = urlsplit(url)
    try:
        match = resolve(parts.path)
        name = match.view_name.replace(":", "-")
    except Resolver404:
        name = parts.path.strip("/").replace("/", "-") or "home"
    keys = "-".join(sorted({k for k, _ in parse_qsl(parts.query)}))
    return f"{name}{'--' + keys if keys else ''}"


class Walk:
    def __init__(self, page, base: str, role: str):
        self.page, self.base, self.role = page, base, role
        self.failures: list[str] = []
        self.fetched: dict[tuple, tuple[int, str]] = {}
        self.visited: set[tuple] = set()
        self.errors: list[str] = []
        self.shown_links: set[str] = set()
        self.count = 0
        self.log: list[str] = []
        page.on("console", lambda msg: self.errors.append(self.console(msg)) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        shutil.rmtree(SHOTS / role, ignore_errors=True)
        (SHOTS / role).mkdir(parents=True)

    def console(self, msg) -> str:
        source = (msg.location or {}).get("url", "").replace(self.base, "")
        return f"{msg.text}（{source}）" if source else msg.text

    def fail(self, where: str, what: str) -> None:
        self.failures.append(f"[{self.role}] {where.replace(self.base, '')}: {what}")

    def links(self) -> list[tuple[str, str]]:
        keep = []
        for href, text in self.page.evaluate(LINKS):
            parts = urlsplit(href)
            if (
                href.startswith(("mailto:", "tel:", "javascript:"))
                or f"{parts.scheme}://{parts.netloc}" != self.base
            ):
                continue
            url = href.split("#")[0]
            if not url or parts.path.startswith(("/logout", "/admin/logout", "/static/")):
                continue
            self.shown_links.add(parts.path)
            keep.append((url, text))
        return keep

    def fetch(self, url: str, text: str, source: str) -> tuple[int, str]:
        key = route_key(url)
        if key not in self.fetched:
            response = self.page.request.get(url)
            kind = response.headers.get("content-type", "")
            status = response.status
            if urlsplit(response.url).path.startswith("/login"):
                status = 401
            self.fetched[key] = (status, kind)
            self.log.append(
                f"{status} {kind.split(';')[0]:<24} {url.replace(self.base, '')}（{text}，见于 {source}）"
            )
            if status >= 400:
                self.fail(source, f"链接“{text}” → {url.replace(self.base, '')} 答 {status}")
            elif "text/html" not in kind and not kind:
                self.fail(source, f"下载“{text}” → {url.replace(self.base, '')} 没有内容类型")
        return self.fetched[key]

    def check(self, url: str, expect: int = 200) -> bool:
        """Open ``url`` in the browser, check it and screenshot it; False when it is not a page to walk. ``expect``
        is the status of a refusal page (403, 404) being checked as a page in its own right."""
        key = route_key(url)
        if key in self.visited:
            return False
        self.visited.add(key)
        self.errors.clear()
        response = self.page.goto(url)
        if self.page.locator("[hx-trigger]").count():
            self.page.wait_for_load_state("networkidle")  # parts of the page that htmx loads after it
        where = url.replace(self.base, "") or "/"
        if response is None or (response.status >= 400 and response.status != expect):
            self.fail(where, f"答 {response.status if response else '无响应'}")
        if expect >= 400:  # Chromium reports the page's own status as a console error
            self.errors[:] = [e for e in self.errors if not e.endswith(f"（{where}）")]
        self.count += 1
        name = page_name(url)
        self.log.append(f"打开 {self.count:02d}-{name}: {where}")
        self.page.screenshot(path=str(SHOTS / self.role / f"{self.count:02d}-{name}.png"), full_page=True)
        if not urlsplit(url).path.startswith("/api/docs"):
            for word in english_in(self.page.evaluate(COLLECT_TEXT)):
                self.fail(where, f"英文：{word}")
        for cell in self.page.evaluate(NARROW_CELLS):
            self.fail(where, f"列太窄：{cell}")
        for label in self.page.evaluate(BROKEN_BUTTONS):
            self.fail(where, f"按钮文字折行：{label}")
        for error in filter(None, self.errors):
            self.fail(where, f"控制台报错：{error[:200]}")
        return True

    def walk(self, level0: list[str]) -> None:
        """Open the pages of ``level0`` and then every page they link to (level 1), breadth first, and fetch every
        link on all of them."""
        level1: dict[tuple, str] = {}
        for depth, urls in ((0, level0), (1, level1)):
            for url in list(urls if depth == 0 else urls.values()):
                if not self.check(url):
                    continue
                source = url.replace(self.base, "") or "/"
                for link, text in self.links():
                    status, kind = self.fetch(link, text, source)
                    key = route_key(link)
                    if depth == 0 and status < 400 and "text/html" in kind and key not in self.visited:
                        level1.setdefault(key, link)


@pytest.fixture
def walk_page(browser):  # noqa: F811 (the fixture imported above)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("role", list(ACCOUNTS), ids=[str(r.value) for r in ACCOUNTS])
def test_walk(live_server, data, walk_page, role):
    user = data[role]
    log_in(walk_page, live_server, user.username)
    walk = Walk(walk_page, live_server.url, role.value)
    home = f"{live_server.url}/"
    # Level 0: the home page and the tiles of the navigation; level 1: every page they link to.
    tiles = [href for href, _ in walk_page.evaluate(LINKS) if href.startswith(home)]
    walk.walk(list(dict.fromkeys([home, *tiles])))

    # /admin/: usable, or the Chinese 403 page with the navigation — never a redirect loop; no link to it otherwise.
    admin = walk_page.request.get(f"{live_server.url}/admin/", max_redirects=0)
    walk.log.append(f"/admin/ 答 {admin.status}")
    if admin.status == 403:
        walk.check(f"{live_server.url}/admin/", expect=403)
        if (
            walk_page.locator("h1").inner_text() != "无权访问（403）"
            or not walk_page.locator(".cw-navbar").count()
        ):
            walk.fail("/admin/", "403 页面不是带导航的中文页面")
        admin_links = sorted(p for p in walk.shown_links if p.startswith("/admin/"))
        if admin_links:
            walk.fail("/admin/", f"不能使用配置管理，却看到链接 {admin_links}")
    elif admin.status == 200:
        walk.check(f"{live_server.url}/admin/")  # a role with a screen there (targets, change requests ...)
    else:
        walk.fail("/admin/", f"答 {admin.status}（应为 200 或 403，不跳转）")
    # An unknown page: the Chinese 404 page with the navigation.
    walk.check(f"{live_server.url}/no-such-page/", expect=404)
    if (
        walk_page.locator("h1").inner_text() != "页面或对象不存在（404）"
        or not walk_page.locator(".cw-navbar").count()
    ):
        walk.fail("/no-such-page/", "不是带导航的中文 404 页面")

    print(f"\n{role.value}: {walk.count} pages opened, {len(walk.fetched)} links fetched")
    (SHOTS / role.value / "failures.txt").write_text("\n".join(walk.failures) + "\n", encoding="utf-8")
    (SHOTS / role.value / "walk.txt").write_text("\n".join(walk.log) + "\n", encoding="utf-8")
    assert not walk.failures, "\n".join(walk.failures)
