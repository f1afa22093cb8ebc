from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from caiwei.regions.models import Region
from caiwei.regions.scoping import visible_regions

from . import services
from .forms import GrantForm, TokenForm
from .models import ApiToken, User
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
            services.set_grants(
                request.user,
                target,
                form.cleaned_data["roles"],
                [r.code for r in form.cleaned_data["regions"]],
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            messages.success(request, f"已更新 {target} 的角色与区划")
            return redirect("accounts:grants")
    return render(
        request,
        "accounts/grant_edit.html",
        {"target": target, "form": form, "region_tree": Region.objects.all()},
    )
