"""The demo region tree: a league and three of its counties (public administrative division codes)."""

from caiwei.audit.context import acting_as

from .models import Region, RegionLevel

DEMO_REGIONS = [
    ("150000000", "内蒙古自治区", RegionLevel.PROVINCE, None),
    ("152500000", "锡林郭勒盟", RegionLevel.CITY, "150000000"),
    ("152501000", "二连浩特市", RegionLevel.COUNTY, "152500000"),
    ("152502000", "锡林浩特市", RegionLevel.COUNTY, "152500000"),
    ("152522000", "阿巴嘎旗", RegionLevel.COUNTY, "152500000"),
]


def ensure_demo_regions() -> None:
    with acting_as(None, "setup"):
        for code, name, level, parent in DEMO_REGIONS:
            if not Region.objects.filter(code=code).exists():
                Region.objects.create(
                    code=code,
                    name=name,
                    level=level,
                    parent=Region.objects.get(code=parent) if parent else None,
                )
