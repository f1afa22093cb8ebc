# The queue's 即将超时 / 已超时 views filter on two stored instants per ticket (desk.sla.queue_instants); the SLA
# sweep fills them for tickets that were open before this migration within a minute.

from django.db import migrations, models


OPEN = ["confirming", "in_progress", "new", "responded", "waiting"]


class Migration(migrations.Migration):
    dependencies = [
        ("desk", "0011_ticket_assignment"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="sla_warn_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="预警时刻"),
        ),
        migrations.AddField(
            model_name="ticket",
            name="sla_overdue_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="超时时刻"),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(("status__in", OPEN)), fields=["sla_overdue_at"], name="ticket_open_overdue"
            ),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(("status__in", OPEN)), fields=["sla_warn_at"], name="ticket_open_warn"
            ),
        ),
    ]
