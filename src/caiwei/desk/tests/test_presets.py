"""Preset SLA policies carry Chinese names, and rows made under the first names follow after ``migrate``."""

import re

import pytest
from django.core.management import call_command

from caiwei.desk import services
from caiwei.desk.models import SlaPolicy
from caiwei.desk.presets import LEGACY_NAMES, PRESETS, rename_legacy


def test_preset_names_are_chinese():
    for code, preset in PRESETS.items():
        assert preset.id == code
        assert not re.search(r"[A-Za-z]", preset.name), preset.name


@pytest.mark.django_db
def test_rows_under_the_first_names_are_renamed_and_renamed_rows_are_left_alone():
    services.apply_preset("daxing")
    services.apply_preset("foshan")
    SlaPolicy.objects.filter(code="daxing").update(name=LEGACY_NAMES["daxing"])
    SlaPolicy.objects.filter(code="foshan").update(name="佛山市本地约定")
    rename_legacy()
    assert SlaPolicy.objects.get(code="daxing").name == PRESETS["daxing"].name
    assert SlaPolicy.objects.get(code="foshan").name == "佛山市本地约定"


@pytest.mark.django_db
def test_migrate_renames():
    services.apply_preset("xilingol")
    SlaPolicy.objects.filter(code="xilingol").update(name=LEGACY_NAMES["xilingol"])
    call_command("migrate", "desk", verbosity=0)
    assert SlaPolicy.objects.get(code="xilingol").name == PRESETS["xilingol"].name
