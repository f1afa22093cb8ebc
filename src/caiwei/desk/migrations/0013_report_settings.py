# 运维月报的页眉与落款（合同名称、报送单位、主送单位），按区划由项目经理维护。

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("regions", "0001_initial"),
        ("desk", "0012_ticket_sla_instants"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReportSettings",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("contract_name", models.CharField(max_length=120, verbose_name="合同名称")),
                (
                    "issuer",
                    models.CharField(
                        help_text="运维服务商或项目组，用于页眉与落款", max_length=60, verbose_name="报送单位"
                    ),
                ),
                (
                    "recipient",
                    models.CharField(blank=True, help_text="如某某财政局，可不填", max_length=60, verbose_name="主送单位"),
                ),
                (
                    "region",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="report_settings",
                        to="regions.region",
                        verbose_name="财政区划",
                    ),
                ),
            ],
            options={"verbose_name": "月报设置", "verbose_name_plural": "月报设置", "ordering": ["region__path"]},
        ),
    ]
