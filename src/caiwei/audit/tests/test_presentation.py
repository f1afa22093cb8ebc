"""The audit page and its CSV as an auditor reads them: details as Chinese key/value lists, every time in Beijing
time, one format (issue 10, item 9). The stored rows and their hashes stay as they were."""

import csv
import io
import re
from datetime import UTC, datetime

from django.utils import timezone

from caiwei.audit.log import record
from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.audit.verify import verify_chain

LOCKED_UNTIL = datetime(2026, 5, 1, 2, 30, tzinfo=UTC)  # 10:30 in Beijing


def make_events(users):
    record(
        AuditAction.LOCKED,
        object_type="accounts.user",
        object_id=str(users["agent"].pk),
        object_repr="t_agent",
        detail={"until": LOCKED_UNTIL.isoformat(), "failures": 5, "unknown_account": False},
    )
    record(
        AuditAction.EXPORT,
        object_type="checks.run",
        detail={"rows": 12, "filters": {"since": "2026-01-01", "q": "演练"}, "at": "2026-05-01T02:30:00Z"},
    )
    user = users["finance"]
    user.first_name = "财务"
    user.save()  # an update: before/after with the model's own fields


def test_the_page_shows_readable_details_in_beijing_time(users, client_for):
    make_events(users)
    page = client_for(users["auditor"]).get("/audit/").content.decode()
    assert "{'" not in page and "+00:00" not in page and "UTC" not in page
    assert re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", page) is None  # no ISO stamps left
    assert "<dt>锁定至</dt><dd>2026-05-01 10:30:00</dd>" in page
    assert "<dt>失败次数</dt><dd>5</dd>" in page and "<dt>账号不存在</dt><dd>否</dd>" in page
    filters = re.search(r"<dt>筛选条件</dt><dd>([^<]*)</dd>", page)[1]  # JSON keys come back in any order
    assert sorted(filters.split("；")) == ["关键字：演练", "起始日期：2026-01-01"]
    assert "<dt>时间</dt><dd>2026-05-01 10:30:00</dd>" in page
    assert "<dt>名字</dt>" in page or "<dt>first name</dt>" in page  # the model's own verbose name
    for event in AuditEvent.objects.all()[:50]:
        local = timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M:%S")
        assert f'<td class="text-nowrap" data-at>{local}</td>' in page
    assert "时间（北京时间）" in page


def test_the_csv_names_the_zone_and_writes_beijing_time(users, client_for):
    make_events(users)
    response = client_for(users["auditor"]).get("/audit/export.csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][1] == "时间（北京时间，UTC+8）"
    assert "+00:00" not in body and not re.search(r'\d{2}:\d{2}(\.\d+)?Z"', body)
    locked = next(r for r in rows[1:] if "2026-05-01T10:30:00+08:00" in r[12])
    event = AuditEvent.objects.get(seq=int(locked[0]))
    assert locked[1] == timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M:%S")


def test_presentation_leaves_the_stored_rows_and_chain_alone(users, client_for):
    make_events(users)
    stored = list(AuditEvent.objects.order_by("seq").values("seq", "detail", "hash"))
    client = client_for(users["auditor"])
    client.get("/audit/")
    b"".join(client.get("/audit/export.csv").streaming_content)
    after = list(
        AuditEvent.objects.filter(seq__lte=stored[-1]["seq"]).order_by("seq").values("seq", "detail", "hash")
    )
    assert after == stored
    assert any(r["detail"].get("until") == LOCKED_UNTIL.isoformat() for r in stored)  # still stored in UTC
    assert verify_chain()[1] is None
