from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.utils.html import format_html

from caiwei.regions.models import Region
from caiwei.regions.scoping import scope, visible_regions


class CaiweiAdminSite(admin.AdminSite):
    site_header = "财维 · 配置管理"
    site_title = "财维配置管理"
    index_title = "配置管理"

    def login(self, request, extra_context=None):
        # One login page for everybody, with the same lock-out; the admin's own form would demand is_staff.
        return redirect_to_login(request.GET.get("next", "/admin/"))

    def has_permission(self, request):
        # Entry for anyone one of whose capabilities some registered screen needs; each screen checks again.
        user = request.user
        if not (user.is_active and user.is_authenticated):
            return False
        return any(model_admin.has_module_permission(request) for model_admin in self._registry.values())

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def guarded(request, *args, **kwargs):
            # A signed-in account with no screen here gets a 403, not a redirect to the login page that sends it
            # straight back (the loop a business role used to hit from the 配置管理 link).
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied("无权限：配置管理中没有您可用的页面")
            return inner(request, *args, **kwargs)

        return guarded


UNDECLARED = object()


def code_column(model, field: str = "code"):
    """A ``list_display`` column showing an identifier (a slug such as ``workday``, a region code) in ``<code>``: it
    is a value to type or match, not a word of the interface. Keeps the field's label and sorts by the field."""

    @admin.display(description=model._meta.get_field(field).verbose_name, ordering=field)
    def column(obj):
        return format_html("<code>{}</code>", getattr(obj, field))

    column.__name__ = column.__qualname__ = field
    return column


def covers_whole_tree(user) -> bool:
    """Whether ``user`` sees every region except the ones above their own grants (a league grant in a one-league
    tree covers it; a county grant does not)."""
    paths = list(user.regions.values_list("path", flat=True)) if user.is_authenticated else []
    above = {code for path in paths for code in path.split("/") if code}
    foreign = Region.objects.exclude(pk__in=visible_regions(user).values("pk")).exclude(code__in=above)
    return bool(paths) and not foreign.exists()


class CapabilityAdmin(admin.ModelAdmin):
    """Admin screens answer to capabilities (see accounts.roles), never to Django's per-model permissions.

    Each screen also declares ``region_field``: the path from its model to a Region (``"region"``,
    ``"target__region"``, ``"regions"`` for a many-to-many), or None for configuration that belongs to no region.
    The list, every object page and every foreign-key choice go through the same ``regions.scoping.scope`` as the
    pages, so a county account neither sees nor edits another county's rows here. A test fails for a screen that
    does not declare it.
    """

    capability: str = ""
    view_capability: str = ""
    region_field = UNDECLARED
    # Extra foreign keys whose choices must be narrowed: field name -> function(user) -> queryset.
    scoped_choices: dict = {}

    def _can(self, request, capability: str) -> bool:
        return bool(capability) and request.user.is_authenticated and request.user.can(capability)

    def has_module_permission(self, request):
        return self._can(request, self.capability) or self._can(request, self.view_capability)

    def _reachable(self, request, obj) -> bool:
        if obj is None or not self.region_field:
            return True
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and self._reachable(request, obj)

    def has_add_permission(self, request):
        return self._can(request, self.capability)

    def _writable(self, request, obj) -> bool:
        """A row of a several-regions screen that is tied to no region is shared by all of them: the default SLA
        policy applies wherever nothing more specific does, a preset is a template any region may adopt. Only an
        account whose grant covers the whole tree (every region but those above its own grants) may change or
        delete it; a county account may read it, not rewrite the service levels of its neighbours."""
        if obj is None or not self.region_field or not self.region_field.endswith("regions"):
            return True
        if getattr(obj, self.region_field).exists():
            return True
        return covers_whole_tree(request.user)

    def has_change_permission(self, request, obj=None):
        return (
            self._can(request, self.capability)
            and self._reachable(request, obj)
            and self._writable(request, obj)
        )

    def has_delete_permission(self, request, obj=None):
        return (
            self._can(request, self.capability)
            and self._reachable(request, obj)
            and self._writable(request, obj)
        )

    def get_list_filter(self, request):
        # Django's filter on a foreign key offers every row of the related table (every region's name, every
        # ticket); offer only the values present in this user's own rows.
        narrowed = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and "__" not in item:
                field = self.model._meta.get_field(item)
                if field.is_relation:
                    item = (item, admin.RelatedOnlyFieldListFilter)
            narrowed.append(item)
        return narrowed

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if self.region_field is UNDECLARED:
            raise PermissionDenied("该配置页面未声明区划范围")
        if not self.region_field:
            return qs
        if self.region_field.endswith("regions"):
            # A row tied to several regions (an SLA policy) is someone else's as soon as one of them is outside
            # the grant; one tied to none is a template that applies nowhere yet.
            foreign = Region.objects.exclude(pk__in=visible_regions(request.user).values("pk"))
            outside = qs.filter(**{f"{self.region_field}__in": foreign})
            return qs.exclude(pk__in=outside.values("pk"))
        return scope(qs, request.user, self.region_field)

    def _narrow(self, request, db_field, kwargs):
        related: type[Model] = db_field.related_model
        if db_field.name in self.scoped_choices:
            kwargs["queryset"] = self.scoped_choices[db_field.name](request.user)
        elif related is Region:
            kwargs["queryset"] = visible_regions(request.user)
        elif hasattr(related._default_manager.all(), "visible_to"):
            kwargs["queryset"] = related._default_manager.all().visible_to(request.user)
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(db_field, request, **self._narrow(request, db_field, kwargs))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return super().formfield_for_manytomany(db_field, request, **self._narrow(request, db_field, kwargs))
