import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="BusinessCalendar",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code", models.SlugField(max_length=30, unique=True, verbose_name="代码")),
                ("name", models.CharField(max_length=60, verbose_name="名称")),
                ("always_open", models.BooleanField(default=False, verbose_name="7×24 小时")),
                (
                    "periods",
                    models.CharField(
                        default="08:30-12:00,14:30-18:00",
                        help_text="如 08:30-12:00,14:30-18:00；7×24 日历忽略此项",
                        max_length=120,
                        verbose_name="工作时段",
                    ),
                ),
                ("use_statutory", models.BooleanField(default=True, verbose_name="采用国家法定节假日与调休")),
                ("description", models.CharField(blank=True, max_length=200, verbose_name="说明")),
            ],
            options={"verbose_name": "业务日历", "verbose_name_plural": "业务日历", "ordering": ["code"]},
        ),
        migrations.CreateModel(
            name="KeyPeriod",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code", models.SlugField(max_length=30, verbose_name="代码")),
                ("name", models.CharField(max_length=60, verbose_name="名称")),
                ("start", models.DateField(verbose_name="开始日期")),
                ("end", models.DateField(verbose_name="结束日期")),
                ("note", models.CharField(blank=True, max_length=200, verbose_name="说明")),
            ],
            options={
                "verbose_name": "关键时期",
                "verbose_name_plural": "关键时期",
                "ordering": ["start"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("end__gte", models.F("start"))), name="keyperiod_start_le_end"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="CalendarDay",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("date", models.DateField(verbose_name="日期")),
                (
                    "kind",
                    models.CharField(
                        choices=[("holiday", "休息日"), ("workday", "工作日")], max_length=10, verbose_name="类型"
                    ),
                ),
                ("note", models.CharField(blank=True, max_length=100, verbose_name="说明")),
                (
                    "calendar",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="days",
                        to="bizcalendar.businesscalendar",
                        verbose_name="日历",
                    ),
                ),
            ],
            options={
                "verbose_name": "日历例外日期",
                "verbose_name_plural": "日历例外日期",
                "ordering": ["date"],
                "constraints": [models.UniqueConstraint(fields=("calendar", "date"), name="calendarday_once")],
            },
        ),
    ]
