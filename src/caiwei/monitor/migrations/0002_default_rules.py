from django.db import migrations


def add_rules(apps, schema_editor):
    from caiwei.monitor.alerts import DEFAULT_RULES

    AlertRule = apps.get_model("monitor", "AlertRule")
    if AlertRule.objects.exists():
        return
    for name, kind, metric, op, threshold, severity, n, m in DEFAULT_RULES:
        AlertRule.objects.create(
            name=name, kind=kind, metric=metric, op=op, threshold=threshold, severity=severity,
            open_after=n, resolve_after=m,
        )


class Migration(migrations.Migration):
    dependencies = [("monitor", "0001_initial")]
    operations = [migrations.RunPython(add_rules, migrations.RunPython.noop)]
