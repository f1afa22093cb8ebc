from django.db import migrations

from caiwei.bizcalendar.defaults import ensure_defaults


def create(apps, schema_editor):
    ensure_defaults(apps.get_model("bizcalendar", "BusinessCalendar"), apps.get_model("bizcalendar", "KeyPeriod"))


class Migration(migrations.Migration):
    dependencies = [("bizcalendar", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
