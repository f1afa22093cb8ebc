from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404, render

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability, Role
from caiwei.regions.scoping import visible_regions

from .models import Job
from .runner import worker_alive


def visible_jobs(user) -> QuerySet[Job]:
    """Everyone sees the jobs they started; a project manager also those on objects of the regions granted to them,
    the system administrator also the platform's own jobs (those tied to no region)."""
    qs = Job.objects.select_related("created_by")
    mine = Q(created_by=user)
    if user.has_role(Role.PROJECT_MANAGER):
        mine |= Q(region__in=visible_regions(user))
    if user.has_role(Role.SYSTEM_ADMIN):
        mine |= Q(region__isnull=True)
    return qs.filter(mine)


@require(Capability.VIEW_JOBS)
def job_list(request):
    page = Paginator(visible_jobs(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "jobs/list.html", {"page": page, "worker_alive": worker_alive()})


@require(Capability.VIEW_JOBS)
def job_detail(request, pk: int):
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    template = "jobs/_status.html" if request.headers.get("HX-Request") else "jobs/detail.html"
    return render(request, template, {"job": job})
