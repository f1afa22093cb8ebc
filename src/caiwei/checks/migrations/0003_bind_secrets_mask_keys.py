"""Passwords sealed before they were bound to their connection are sealed again, bound to the connection they are
stored with now; result keys (and samples, per-unit codes) stored before keys were masked are masked now."""

from django.db import migrations


def bind_secrets(apps, schema_editor):
    TargetDatabase = apps.get_model("checks", "TargetDatabase")
    rows = TargetDatabase.objects.exclude(secret="")
    if not rows.exists():  # no key is read (or created) for a database without passwords
        return
    from caiwei.checks import vault
    from caiwei.checks.models import TargetDatabase as Current

    for row in rows.iterator():
        try:
            plain = vault.unseal(row.secret)  # sealed without a connection: the old form
        except vault.VaultError:
            continue  # already bound, or sealed with another key: left as it is (it will ask for the password)
        bound = Current(
            dialect=row.dialect, host=row.host, port=row.port, database=row.database, username=row.username
        )
        TargetDatabase.objects.filter(pk=row.pk).update(secret=vault.seal(plain, bound.connection_identity()))


def mask_results(apps, schema_editor):
    RuleResult = apps.get_model("checks", "RuleResult")
    if not RuleResult.objects.exists():
        return
    from caiwei.checks.engine import RuleError, shipped_rule
    from caiwei.checks.mask import aliases_of, is_masked_key, mask_key, mask_value, plain
    from caiwei.checks.sqlplan import Mapping

    mappings: dict[int, dict] = {}
    for result in RuleResult.objects.select_related("run", "run__database").iterator(chunk_size=200):
        database = result.run.database
        if database.pk not in mappings:
            try:
                mappings[database.pk] = aliases_of(Mapping.from_dict(database.mapping))
            except RuleError:
                mappings[database.pk] = {}
        aliases = mappings[database.pk]
        rule = shipped_rule(result.rule_id)
        names = [k.lower() for k in rule.key] if rule else []

        def keys(values, names=names, aliases=aliases):
            out = []
            for key in values:
                if not isinstance(key, list):
                    out.append(key)
                    continue
                out.append(
                    [
                        v if is_masked_key(v) else mask_key(names[i] if i < len(names) else "", v, aliases)
                        for i, v in enumerate(key)
                    ]
                )
            return out

        sample = [
            {c: plain(mask_value(c, v, aliases)) for c, v in row.items()} if isinstance(row, dict) else row
            for row in result.sample
        ]
        units = [
            {
                **u,
                "agency_code": plain(mask_value("agency_code", u.get("agency_code"), aliases)),
                "agency_name": plain(mask_value("agency_name", u.get("agency_name"), aliases)) or "",
            }
            if isinstance(u, dict) and "agency_code" in u
            else u
            for u in result.units
        ]
        changed = {
            "keys": keys(result.keys),
            "new_keys": keys(result.new_keys),
            "resolved_keys": keys(result.resolved_keys),
            "sample": sample,
            "units": units,
        }
        if any(getattr(result, f) != v for f, v in changed.items()):
            RuleResult.objects.filter(pk=result.pk).update(**changed)


class Migration(migrations.Migration):
    dependencies = [("checks", "0002_run_params")]

    operations = [
        migrations.RunPython(bind_secrets, migrations.RunPython.noop),
        migrations.RunPython(mask_results, migrations.RunPython.noop),
    ]
