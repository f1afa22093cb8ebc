from django.db import migrations, models


def shipped_formats(apps, schema_editor):
    from caiwei.recon.services import ensure_shipped_formats

    ensure_shipped_formats(apps.get_model("recon", "BankFormat"))


class Migration(migrations.Migration):
    dependencies = [("recon", "0003_intake")]

    operations = [
        migrations.AddField(
            model_name="reconbreak",
            name="bank_code",
            field=models.CharField(blank=True, db_index=True, max_length=12, verbose_name="银行编码"),
        ),
        migrations.RunPython(shipped_formats, migrations.RunPython.noop),
    ]
