"""The head carries a MAC over (seq, hash); append-only triggers on SQLite too, and on the head on both engines.

The triggers refuse UPDATE and DELETE on the audit table, DELETE on the head, and any change of the head that
does not move it forward onto a row that exists. Only someone who drops or disables them on purpose can tamper,
and then the chain, the keyed head and the seals outside the database name what was done.
"""

from django.db import migrations, models

GENESIS = "0" * 64
EVENT_REFUSED = "审计日志只能追加，不能修改或删除"
HEAD_DELETE_REFUSED = "审计链头不能删除"
HEAD_REWIND_REFUSED = "审计链头只能随追加前进，不能回退或改写"

# One statement each: SQLite's driver runs one statement per execute.
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_auditevent_no_update BEFORE UPDATE ON audit_auditevent
BEGIN SELECT RAISE(ABORT, '{EVENT_REFUSED}'); END""",
    f"""CREATE TRIGGER audit_auditevent_no_delete BEFORE DELETE ON audit_auditevent
BEGIN SELECT RAISE(ABORT, '{EVENT_REFUSED}'); END""",
    f"""CREATE TRIGGER audit_audithead_no_delete BEFORE DELETE ON audit_audithead
BEGIN SELECT RAISE(ABORT, '{HEAD_DELETE_REFUSED}'); END""",
    f"""CREATE TRIGGER audit_audithead_forward_only BEFORE UPDATE ON audit_audithead
WHEN NEW.id <> OLD.id OR NEW.seq <= OLD.seq
    OR NOT EXISTS (SELECT 1 FROM audit_auditevent WHERE seq = NEW.seq AND hash = NEW.hash)
BEGIN SELECT RAISE(ABORT, '{HEAD_REWIND_REFUSED}'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS audit_auditevent_no_update",
    "DROP TRIGGER IF EXISTS audit_auditevent_no_delete",
    "DROP TRIGGER IF EXISTS audit_audithead_no_delete",
    "DROP TRIGGER IF EXISTS audit_audithead_forward_only",
]

PG_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION audit_audithead_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '{HEAD_DELETE_REFUSED}';
    END IF;
    IF NEW.id <> OLD.id OR NEW.seq <= OLD.seq
        OR NOT EXISTS (SELECT 1 FROM audit_auditevent WHERE seq = NEW.seq AND hash = NEW.hash) THEN
        RAISE EXCEPTION '{HEAD_REWIND_REFUSED}';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_audithead_forward_only
    BEFORE UPDATE OR DELETE ON audit_audithead
    FOR EACH ROW EXECUTE FUNCTION audit_audithead_forward_only()""",
]
PG_DROP = [
    "DROP TRIGGER IF EXISTS audit_audithead_forward_only ON audit_audithead",
    "DROP FUNCTION IF EXISTS audit_audithead_forward_only()",
]


def sign_head(apps, schema_editor):
    """Sign the head as it stands. A missing head over existing rows is left missing: verify reports it."""
    from caiwei.audit.chain import head_mac
    from caiwei.audit.keys import audit_key

    head_model = apps.get_model("audit", "AuditHead")
    event_model = apps.get_model("audit", "AuditEvent")
    key = audit_key()
    head = head_model.objects.filter(pk=1).first()
    if head is None:
        if not event_model.objects.exists():
            head_model.objects.create(pk=1, seq=0, hash=GENESIS, mac=head_mac(key, 0, GENESIS))
        return
    head.mac = head_mac(key, head.seq, head.hash)
    head.save(update_fields=["mac"])


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in SQLITE_TRIGGERS if vendor == "sqlite" else PG_TRIGGERS if vendor == "postgresql" else []:
        schema_editor.execute(sql)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in SQLITE_DROP if vendor == "sqlite" else PG_DROP if vendor == "postgresql" else []:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_head_and_append_only")]

    operations = [
        migrations.AddField(
            model_name="audithead",
            name="mac",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("login", "登录"),
                    ("login_failed", "登录失败"),
                    ("logout", "退出"),
                    ("locked", "账号锁定"),
                    ("create", "新增"),
                    ("update", "修改"),
                    ("delete", "删除"),
                    ("export", "导出"),
                    ("admin", "管理操作"),
                    ("denied", "越权拒绝"),
                    ("chain_break", "审计链异常"),
                ],
                db_index=True,
                max_length=20,
                verbose_name="动作",
            ),
        ),
        # Signed before the head trigger exists: signing rewrites the head in place, which the trigger refuses.
        migrations.RunPython(sign_head, migrations.RunPython.noop),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
