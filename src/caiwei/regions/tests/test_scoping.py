"""Region scoping: a grant covers its subtree, nothing else; the same filter serves pages and the API."""

import pytest

from caiwei.accounts import services
from caiwei.accounts.roles import Role
from caiwei.regions.models import Region
from caiwei.regions.scoping import scope, visible_regions

pytestmark = pytest.mark.django_db


def codes(qs) -> set[str]:
    return set(qs.values_list("code", flat=True))


def test_city_grant_sees_its_counties(users):
    assert codes(visible_regions(users["agent"])) == {"152500000", "152501000", "152502000", "152522000"}


def test_county_grant_sees_only_that_county(users):
    assert codes(visible_regions(users["unit"])) == {"152502000"}
    assert codes(visible_regions(users["bank"])) == {"152501000"}


def test_no_grant_sees_nothing(users):
    assert codes(visible_regions(users["sysadmin"])) == set()


def test_inactive_user_sees_nothing(users):
    user = users["agent"]
    user.is_active = False
    assert codes(visible_regions(user)) == set()


def test_scope_filters_related_rows(users):
    """The filter works through a foreign key path — what every later list view uses."""
    from caiwei.accounts.models import RegionGrant

    qs = RegionGrant.objects.all()
    assert {g.user.username for g in scope(qs, users["unit"])} == {"t_unit"}
    county_codes = {g.region.code for g in scope(qs, users["agent"])}
    assert county_codes == {"152500000", "152501000", "152502000"}


def test_grant_change_takes_effect(users):
    services.set_regions(None, users["unit"], ["152501000", "152522000"])
    assert codes(visible_regions(users["unit"])) == {"152501000", "152522000"}


def test_moving_a_county_moves_its_visibility(users, regions):
    province = regions["150000000"]
    other_city = Region.objects.create(code="150100000", name="呼和浩特市", level=2, parent=province)
    county = regions["152522000"]
    county.parent = other_city
    county.save()
    assert "152522000" not in codes(visible_regions(users["agent"]))
    assert codes(Region.objects.filter(path__startswith=other_city.path)) == {"150100000", "152522000"}


def test_page_and_api_show_the_same_regions(users, client_for, token_for):
    user = users["unit"]
    page = client_for(user).get("/regions/").content.decode()
    assert "锡林浩特市" in page and "二连浩特市" not in page
    api = client_for(user).get("/api/regions", **token_for(user)).json()
    assert [r["code"] for r in api] == ["152502000"]
    home = client_for(user).get("/").content.decode()
    assert "锡林浩特市" in home and "阿巴嘎旗" not in home


def test_secadmin_sees_whole_tree_to_grant(users, client_for):
    page = client_for(users["secadmin"]).get("/regions/").content.decode()
    for name in ("内蒙古自治区", "锡林郭勒盟", "阿巴嘎旗"):
        assert name in page
    assert Role.SECURITY_ADMIN in users["secadmin"].role_codes
