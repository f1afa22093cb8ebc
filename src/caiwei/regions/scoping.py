"""Region scoping 区划范围: written once, used by every list, detail and API view.

A grant of a region covers its whole subtree (a city grant sees its counties).
"""

from functools import reduce
from operator import or_

from django.db.models import Q, QuerySet

from .models import Region


def visible_regions(user) -> QuerySet[Region]:
    if user is None or not user.is_authenticated or not user.is_active:
        return Region.objects.none()
    paths = list(user.regions.values_list("path", flat=True))
    if not paths:
        return Region.objects.none()
    return Region.objects.filter(reduce(or_, (Q(path__startswith=p) for p in paths)))


def scope(queryset: QuerySet, user, field: str = "region") -> QuerySet:
    """Filter ``queryset`` to rows whose ``field`` (a Region foreign key path) lies in the user's regions."""
    if queryset.model is Region and field in ("", "self"):
        return queryset.filter(pk__in=visible_regions(user).values("pk"))
    return queryset.filter(**{f"{field}__in": visible_regions(user).values("pk")})


class RegionScopedQuerySet(QuerySet):
    """Mix into a model's queryset; set ``region_field`` on the model when it is not ``region``."""

    def visible_to(self, user):
        return scope(self, user, getattr(self.model, "region_field", "region"))
