from django.shortcuts import render

from caiwei.accounts.permissions import require
from caiwei.accounts.roles import Capability

from .models import Region
from .scoping import visible_regions


def regions_for(user):
    """The whole tree for those who maintain or grant it; everyone else sees their granted subtrees."""
    if user.can(Capability.MANAGE_REGIONS) or user.can(Capability.GRANT):
        return Region.objects.all()
    return visible_regions(user)


@require(Capability.VIEW_REGIONS)
def region_list(request):
    regions = regions_for(request.user).select_related("parent")
    can_manage = request.user.can(Capability.MANAGE_REGIONS)
    return render(request, "regions/list.html", {"regions": regions, "can_manage": can_manage})
