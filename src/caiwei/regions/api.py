from ninja import Router, Schema

from caiwei.accounts.permissions import ensure
from caiwei.accounts.roles import Capability

from .views import regions_for

router = Router(tags=["财政区划"])


class RegionOut(Schema):
    code: str
    name: str
    level: int
    parent: str | None


@router.get("", response=list[RegionOut], summary="可见的财政区划")
def list_regions(request):
    ensure(request.user, Capability.VIEW_REGIONS, "api:regions")
    return [
        {"code": r.code, "name": r.name, "level": r.level, "parent": r.parent.code if r.parent else None}
        for r in regions_for(request.user).select_related("parent")
    ]
