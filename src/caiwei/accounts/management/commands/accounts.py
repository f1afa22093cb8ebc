import getpass
import os

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from caiwei.audit.context import acting_as

from ... import services
from ...cli import authenticate_actor
from ...demo import ensure_demo_accounts
from ...models import AccountChangeRequest, ChangeStatus, User, UserRole
from ...roles import TRI_ADMIN_ROLES, Capability, Role

ROLE_HELP = "，".join(f"{r.value}={r.label}" for r in Role)


def errors(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "；".join(f"{k}：{'，'.join(v)}" for k, v in exc.message_dict.items())
    return "；".join(exc.messages)


class Command(BaseCommand):
    help = "账号管理（系统管理员建号、安全保密管理员授权）。除 demo/bootstrap 外均须以 --actor 指定操作人并验证密码"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("demo", help="创建每个角色一个演示账号并打印账号和密码")
        boot = sub.add_parser("bootstrap", help="首次安装：创建一个三员账号（仅当该角色尚无账号时）")
        boot.add_argument("username")
        boot.add_argument("--role", required=True, choices=sorted(TRI_ADMIN_ROLES))
        lst = sub.add_parser("list", help="列出账号、角色和区划")
        lst.add_argument("--actor", required=True)
        create = sub.add_parser("create", help="新建账号（系统管理员）")
        create.add_argument("username")
        create.add_argument("--actor", required=True)
        create.add_argument("--full-name", default="")
        create.add_argument("--organization", default="")
        roles = sub.add_parser("roles", help=f"设置账号角色（安全保密管理员）。角色：{ROLE_HELP}")
        roles.add_argument("username")
        roles.add_argument("roles", nargs="*")
        roles.add_argument("--actor", required=True)
        regions = sub.add_parser("regions", help="设置账号授权区划（安全保密管理员）")
        regions.add_argument("username")
        regions.add_argument("codes", nargs="*")
        regions.add_argument("--actor", required=True)
        unlock = sub.add_parser("unlock", help="解除登录锁定（系统管理员）")
        unlock.add_argument("username")
        unlock.add_argument("--actor", required=True)
        passwd = sub.add_parser(
            "passwd", help="重置密码（系统管理员；新密码从 CAIWEI_NEW_PASSWORD 或提示输入）"
        )
        passwd.add_argument("username")
        passwd.add_argument("--actor", required=True)
        status = sub.add_parser(
            "status",
            help="停用、启用、锁定、解锁、重置动态口令（系统管理员；对三员账号提交申请，待另一名三员批准）",
        )
        status.add_argument("username")
        status.add_argument("change", choices=sorted(services.STATUS_ACTIONS), help="操作")
        status.add_argument("--reason", default="")
        status.add_argument("--actor", required=True)
        reqs = sub.add_parser("requests", help="列出涉及三员的账号变更申请（三员）")
        reqs.add_argument("--status", choices=ChangeStatus.values)
        reqs.add_argument("--actor", required=True)
        decide = sub.add_parser("decide", help="批准（approve）、驳回（reject）或撤回（withdraw）申请")
        decide.add_argument("request_id", type=int)
        decide.add_argument("decision", choices=["approve", "reject", "withdraw"])
        decide.add_argument("--note", default="")
        decide.add_argument("--actor", required=True)

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"do_{action}")(**options)
        except ValidationError as exc:
            raise CommandError(errors(exc)) from exc
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc

    def target(self, username: str) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"账号“{username}”不存在")
        return user

    def new_password(self, name: str) -> str:
        return os.environ.get(name) or getpass.getpass("新密码：")

    def do_demo(self, **_):
        rows = ensure_demo_accounts()
        width = max(len(r[0]) for r in rows)
        self.stdout.write("演示账号（每个角色一个）：")
        for username, label, password in rows:
            self.stdout.write(f"  {username.ljust(width)}  {password}  {label}")
        self.stdout.write(
            "三员账号（sysadmin、secadmin、auditor）首次登录时须用手机验证器应用 扫码绑定动态口令，之后每次登录输入 6 位数字。"
        )

    def do_bootstrap(self, username, role, **_):
        if UserRole.objects.filter(role=role).exists():
            raise CommandError(f"已有{Role(role).label}账号：请由现任管理员按职责操作")
        password = self.new_password("CAIWEI_NEW_PASSWORD")
        with acting_as(None, "setup"):
            user = services.create_user(None, username=username, password=password)
            services.set_roles(None, user, [role])
        self.stdout.write(f"已创建{Role(role).label}账号 {username}")

    def do_list(self, actor, **_):
        with authenticate_actor(actor, Capability.MANAGE_ACCOUNTS):
            for user in User.objects.order_by("username").prefetch_related("role_grants", "regions"):
                regions = "、".join(r.name for r in user.regions.all()) or "-"
                roles = "、".join(user.role_labels()) or "-"
                state = "锁定" if user.is_locked else ("停用" if not user.is_active else "正常")
                self.stdout.write(f"{user.username}\t{user.full_name}\t{roles}\t{regions}\t{state}")

    def do_create(self, actor, username, full_name, organization, **_):
        with authenticate_actor(actor, Capability.MANAGE_ACCOUNTS) as me:
            services.create_user(
                me,
                username=username,
                password=self.new_password("CAIWEI_NEW_PASSWORD"),
                full_name=full_name,
                organization=organization,
            )
        self.stdout.write(f"已创建账号 {username}（尚无角色，请安全保密管理员授权）")

    def pending(self, req: AccountChangeRequest | None) -> bool:
        if req is not None:
            self.stdout.write(f"涉及三员，已提交申请 #{req.pk}（{req.describe()}），待另一名三员批准后生效")
        return req is not None

    def do_roles(self, actor, username, roles, **_):
        with authenticate_actor(actor, Capability.GRANT) as me:
            target = self.target(username)
            if self.pending(services.set_roles(me, target, roles)):
                return
            result = sorted(target.role_codes)
        self.stdout.write(f"{username} 的角色：{'、'.join(Role(r).label for r in result) or '无'}")

    def do_regions(self, actor, username, codes, **_):
        with authenticate_actor(actor, Capability.GRANT) as me:
            result = services.set_regions(me, self.target(username), codes)
        self.stdout.write(f"{username} 的授权区划：{'、'.join(sorted(result)) or '无'}")

    def do_unlock(self, actor, username, **_):
        with authenticate_actor(actor, Capability.MANAGE_ACCOUNTS) as me:
            if self.pending(services.unlock(me, self.target(username))):
                return
        self.stdout.write(f"已解锁 {username}")

    def do_passwd(self, actor, username, **_):
        with authenticate_actor(actor, None) as me:
            req = services.reset_password(me, self.target(username), self.new_password("CAIWEI_NEW_PASSWORD"))
            if self.pending(req):
                return
        self.stdout.write(f"已重置 {username} 的密码")

    def do_status(self, actor, username, change, reason, **_):
        with authenticate_actor(actor, Capability.MANAGE_ACCOUNTS) as me:
            if self.pending(services.change_status(me, self.target(username), change, reason=reason)):
                return
        self.stdout.write(f"已对 {username} 执行：{services.STATUS_ACTIONS[change][0]}")

    def do_requests(self, actor, status=None, **_):
        with authenticate_actor(actor, Capability.APPROVE_CHANGES):
            requests = AccountChangeRequest.objects.select_related("subject", "proposer", "decided_by")
            if status:
                requests = requests.filter(status=status)
            for r in requests[:500]:
                decided = f"{r.decided_by.username} {r.decided_at:%Y-%m-%d %H:%M}" if r.decided_by else "-"
                self.stdout.write(
                    f"#{r.pk}\t{r.subject.username}\t{r.describe()}\t{r.proposer.username}"
                    f"\t{r.proposed_at:%Y-%m-%d %H:%M}\t{r.get_status_display()}\t{decided}"
                )

    def do_decide(self, actor, request_id, decision, note, **_):
        with authenticate_actor(actor, Capability.APPROVE_CHANGES) as me:
            req = AccountChangeRequest.objects.filter(pk=request_id).first()
            if req is None:
                raise CommandError(f"申请 #{request_id} 不存在")
            req = services.decide(me, req, decision, note)
        self.stdout.write(f"申请 #{req.pk}：{req.get_status_display()}")
