"""The monthly O&M report: a real .docx whose tables carry the month's figures, with charts, from page and CLI."""

import io
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from docx import Document

from caiwei.audit.models import AuditAction, AuditEvent
from caiwei.conftest import PASSWORD
from caiwei.desk import flow, services

pytestmark = pytest.mark.django_db


def rated_tickets(users, regions, ratings=(("152502000", 5), ("152501000", 2))):
    """Resolved consultations, each rated by its requester (the county's unit user or the bank user)."""
    for i, (code, score) in enumerate(ratings):
        requester = users["unit"] if code == "152502000" else users["bank"]
        ticket = services.create_ticket(
            requester,
            region=regions[code],
            system="国库集中支付",
            ticket_type="咨询",
            title=f"问题{i}",
            description="描述",
            requester_name="经办人（演示）",
        )
        ticket = services.change_status(users["agent"], ticket, flow.RESOLVED)
        services.rate(requester, ticket, score)


def test_report_from_the_page(users, regions, client_for):
    rated_tickets(users, regions)
    response = client_for(users["pm"]).get("/desk/report.docx")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    doc = Document(io.BytesIO(response.content))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert text.startswith("运维月报") and "本月受理工单 2 张" in text
    cells = [[c.text for c in row.cells] for table in doc.tables for row in table.rows]
    assert ["用户满意率", "≥ 95%", "2", "1", "—", "50%", "未达标"] in cells
    assert ["锡林浩特市", "1", "1", "100%", "90%", "达标"] in cells
    assert len(doc.inline_shapes) == 2  # the satisfaction and the systems charts
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT, object_type="desk.monthly_report").exists()
    assert client_for(users["unit"]).get("/desk/report.docx").status_code == 403
    pdf = client_for(users["pm"]).get("/desk/report.pdf?month=" + timezone.localdate().strftime("%Y-%m"))
    assert (
        pdf.status_code == 200
        and pdf["Content-Type"] == "application/pdf"
        and pdf.content.startswith(b"%PDF")
    )
    assert client_for(users["unit"]).get("/desk/report.pdf").status_code == 403
    api = client_for(users["pm"]).get("/api/desk/report?format=pdf")
    assert api.status_code == 200 and api.content.startswith(b"%PDF")
    from django.conf import settings

    sample = settings.VAR_DIR / "screenshots" / "monthly-report.docx"  # kept for rendering and looking at
    sample.parent.mkdir(parents=True, exist_ok=True)
    sample.write_bytes(response.content)


def test_report_from_the_cli(users, regions, tmp_path, monkeypatch):
    rated_tickets(users, regions)
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    out = tmp_path / "m.docx"
    call_command("desk", "report", "--actor", "t_pm", "-o", str(out), stdout=StringIO())
    assert "本月受理工单 2 张" in "\n".join(p.text for p in Document(out).paragraphs)
    pdf = tmp_path / "m.pdf"
    call_command("desk", "report", "--actor", "t_pm", "-o", str(pdf), stdout=StringIO())
    assert pdf.read_bytes().startswith(b"%PDF")
