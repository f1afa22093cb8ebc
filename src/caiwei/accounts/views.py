from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from caiwei.regions.models import Region
from caiwei.regions.scoping import visible_regions

from . import lockout, login_steps, services, twofactor
from .forms import CodeForm, DecisionForm, GrantForm, StatusChangeForm, TokenForm
from .models import AccountChangeRequest, ApiToken, ChangeStatus, User
from .permissions import require
from .roles import Capability


@login_required
def profile(request):
    password_form = PasswordChangeForm(request.user)
    token_form = TokenForm()
    new_key = None
    if request.method == "POST" and request.POST.get("form") == "password":
        password_form = PasswordChangeForm(request.user, request.POST)
        if password_form.is_valid():
            user = password_form.save()
            update_session_auth_hash(request, user)
            messages.success(request, "密码已修改")
            return redirect("accounts:profile")
    elif request.method == "POST" and request.POST.get("form") == "token":
        token_form = TokenForm(request.POST)
        if token_form.is_valid():
            expires = timezone.now() + timedelta(days=token_form.cleaned_data["days"])
            _, new_key = ApiToken.issue(request.user, token_form.cleaned_data["name"], expires)
            token_form = TokenForm()
    return render(
        request,
        "accounts/profile.html",
        {
            "password_form": password_form,
            "token_form": token_form,
            "new_key": new_key,
            "tokens": request.user.api_tokens.filter(revoked=False),
            "regions": visible_regions(request.user),
            "otp_device": twofactor.confirmed_device(request.user),
            "otp_required": twofactor.required(request.user),
            "can_approve": request.user.can(Capability.APPROVE_CHANGES),
        },
    )


@login_required
@require_POST
def revoke_token(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    token.revoked = True
    token.save(update_fields=["revoked"])
    messages.success(request, f"令牌“{token.name}”已吊销")
    return redirect("accounts:profile")


@require(Capability.GRANT)
def grants(request):
    users = User.objects.order_by("username").prefetch_related("role_grants", "regions")
    q = request.GET.get("q", "").strip()
    if q:
        users = users.filter(
            Q(username__icontains=q) | Q(full_name__icontains=q) | Q(organization__icontains=q)
        )
    page = Paginator(users, 50).get_page(request.GET.get("page"))
    return render(request, "accounts/grants.html", {"page": page, "q": q})


@require(Capability.GRANT)
def grant_edit(request, pk: int):
    target = get_object_or_404(User, pk=pk)
    initial = {
        "roles": list(target.role_codes),
        "regions": list(target.regions.values_list("code", flat=True)),
    }
    form = GrantForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            pending = services.set_grants(
                request.user,
                target,
                form.cleaned_data["roles"],
                [r.code for r in form.cleaned_data["regions"]],
            )
        except (ValidationError, PermissionDenied) as exc:
            for message in getattr(exc, "messages", None) or [str(exc)]:
                form.add_error(None, message)
        else:
            if pending is not None:
                messages.warning(
                    request,
                    f"已更新 {target} 的区划；角色变更涉及三员，已提交申请 #{pending.pk}，待另一名三员批准后生效",
                )
                return redirect("accounts:requests")
            messages.success(request, f"已更新 {target} 的角色与区划")
            return redirect("accounts:grants")
    return render(
        request,
        "accounts/grant_edit.html",
        {"target": target, "form": form, "region_tree": Region.objects.all()},
    )


# --- signing in: the second step ----------------------------------------------------------------------


def _safe_next(request, url: str) -> str:
    ok = url_has_allowed_host_and_scheme(url, {request.get_host()}, require_https=request.is_secure())
    return url if ok else "/"


def _step_failed(request, message: str):
    """A lock ends the pending sign-in: back to the password, with the reason."""
    if message == lockout.LOCKED or "已锁定" in message:
        login_steps.clear(request)
        messages.error(request, message)
        return redirect("login")
    return None


def login_code(request):
    """输入动态口令: after the password, for an account with a bound authenticator."""
    user = login_steps.pending_user(request)
    if user is None:
        login_steps.clear(request)
        messages.info(request, "请先输入账号和密码")
        return redirect("login")
    if not twofactor.has_device(user):
        # The device went away in between: an administrator binds a new one, anyone else needs no code.
        if twofactor.required(user):
            return redirect("accounts:login_enrol")
        if not lockout.succeed(user):
            return _step_failed(request, lockout.LOCKED)
        return redirect(_safe_next(request, login_steps.finish(request, user)))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        error = twofactor.verify(user, form.cleaned_data["code"])
        if error is None:
            return redirect(_safe_next(request, login_steps.finish(request, user)))
        if (response := _step_failed(request, error)) is not None:
            return response
        form.add_error("code", error)
    return render(request, "accounts/login_code.html", {"form": form, "pending": user})


def login_enrol(request):
    """绑定动态口令: an administrator without an authenticator binds one before reaching any page."""
    user = login_steps.pending_user(request)
    if user is None:
        login_steps.clear(request)
        messages.info(request, "请先输入账号和密码")
        return redirect("login")
    if twofactor.has_device(user):
        return redirect("accounts:login_code")
    key = request.session.get(login_steps.ENROL_KEY) or twofactor.new_key()
    request.session[login_steps.ENROL_KEY] = key
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        error = twofactor.enrol(user, key, form.cleaned_data["code"])
        if error is None:
            next_url = login_steps.finish(request, user)
            messages.success(request, "动态口令已绑定，以后每次登录都需输入验证器应用 上的 6 位数字")
            return redirect(_safe_next(request, next_url))
        if (response := _step_failed(request, error)) is not None:
            return response
        form.add_error("code", error)
    return render(request, "accounts/login_enrol.html", _enrol_context(user, key, form))


def _enrol_context(user: User, key: str, form) -> dict:
    return {
        "form": form,
        "pending": user,
        "secret": twofactor.secret_text(key),
        "qr": twofactor.qr_data_uri(twofactor.config_url(user, key)),
    }


# --- 个人中心: one's own second factor --------------------------------------------------------------------


@login_required
def otp(request):
    """Bind an authenticator (anyone), or unbind it with a current code (not the three administrators)."""
    user = request.user
    device = twofactor.confirmed_device(user)
    form = CodeForm(request.POST or None)
    if device is not None:
        if request.method == "POST" and form.is_valid():
            if twofactor.required(user):
                raise PermissionDenied("三员必须使用动态口令；更换手机请由系统管理员提出“重置动态口令”申请")
            error = twofactor.verify(user, form.cleaned_data["code"])
            if error is None:
                twofactor.remove(user, "本人停用动态口令")
                messages.success(request, "已停用动态口令，请重新登录")
                return redirect("login")
            if (response := _step_failed(request, error)) is not None:
                return response
            form.add_error("code", error)
        return render(
            request,
            "accounts/otp.html",
            {"form": form, "device": device, "required": twofactor.required(user)},
        )
    key = request.session.get(login_steps.ENROL_KEY) or twofactor.new_key()
    request.session[login_steps.ENROL_KEY] = key
    if request.method == "POST" and form.is_valid():
        error = twofactor.enrol(user, key, form.cleaned_data["code"])
        if error is None:
            request.session.pop(login_steps.ENROL_KEY, None)
            messages.success(request, "动态口令已绑定，以后登录需输入验证器应用 上的 6 位数字")
            return redirect("accounts:profile")
        if (response := _step_failed(request, error)) is not None:
            return response
        form.add_error("code", error)
    return render(request, "accounts/otp.html", _enrol_context(user, key, form))


# --- 账号变更审批 (two people) ------------------------------------------------------------------------------


@require(Capability.APPROVE_CHANGES)
def change_requests(request):
    """The requests touching the three administrators: propose (系统管理员), approve or reject (another)."""
    form = StatusChangeForm(request.POST or None)
    if request.method == "POST":
        if not request.user.can(Capability.MANAGE_ACCOUNTS):
            raise PermissionDenied("无权限：需要“管理账号”权限")
        if form.is_valid():
            target, action = form.cleaned_data["username"], form.cleaned_data["action"]
            reason = form.cleaned_data["reason"]
            try:
                if action == "reset_password":
                    pending = services.reset_password(
                        request.user, target, form.cleaned_data["password"], reason=reason
                    )
                else:
                    pending = services.change_status(request.user, target, action, reason=reason)
            except (ValidationError, PermissionDenied) as exc:
                for message in getattr(exc, "messages", None) or [str(exc)]:
                    form.add_error(None, message)
            else:
                if pending is not None:
                    messages.warning(request, f"已提交申请 #{pending.pk}：{pending}，待另一名三员批准后生效")
                else:
                    messages.success(
                        request, f"已对 {target} 执行：{dict(form.fields['action'].choices)[action]}"
                    )
                return redirect("accounts:requests")
    requests = AccountChangeRequest.objects.select_related("subject", "proposer", "decided_by")
    status = request.GET.get("status", "")
    if status in ChangeStatus.values:
        requests = requests.filter(status=status)
    page = Paginator(requests, 50).get_page(request.GET.get("page"))
    rows = [(r, services.may_decide(request.user, r)) for r in page]
    return render(
        request,
        "accounts/requests.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "status": status,
            "statuses": ChangeStatus.choices,
            "can_propose": request.user.can(Capability.MANAGE_ACCOUNTS),
        },
    )


@require(Capability.APPROVE_CHANGES)
@require_POST
def change_request_decide(request, pk: int):
    req = get_object_or_404(AccountChangeRequest, pk=pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "请选择批准、驳回或撤回")
        return redirect("accounts:requests")
    decision = form.cleaned_data["decision"]
    try:
        services.decide(request.user, req, decision, form.cleaned_data["note"])
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
    else:
        done = {"approve": "已批准并执行", "reject": "已驳回", "withdraw": "已撤回"}[decision]
        messages.success(request, f"申请 #{req.pk}{done}")
    return redirect("accounts:requests")
