from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404, render

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability, Role

from .models import Job
from .runner import worker_alive


def visible_jobs(user) -> QuerySet[Job]:
    """Everyone sees the jobs they started; the project manager and the system administrator see all."""
    qs = Job.objects.select_related("created_by")
    if user.has_role(Role.PROJECT_MANAGER, Role.SYSTEM_ADMIN):
        return qs
    return qs.filter(created_by=user)


@require(Capability.VIEW_JOBS)
def job_list(request):
    page = Paginator(visible_jobs(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "jobs/list.html", {"page": page, "worker_alive": worker_alive()})


@require(Capability.VIEW_JOBS)
def job_detail(request, pk: int):
    job = get_object_or_404(visible_jobs(request.user), pk=pk)
    template = "jobs/_status.html" if request.headers.get("HX-Request") else "jobs/detail.html"
    return render(request, template, {"job": job})
