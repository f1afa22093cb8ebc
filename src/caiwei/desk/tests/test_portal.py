"""Budget-unit and bank users file, follow, confirm and rate their own tickets and see nothing else."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from caiwei.desk import flow, services
from caiwei.desk.models import Complaint, Survey, Ticket

pytestmark = pytest.mark.django_db
FIELDS = {
    "system": "国库集中支付",
    "ticket_type": "咨询",
    "severity": "一般",
    "title": "如何查询凭证状态",
    "description": "请指导",
    "requester_name": "经办人（演示）",
    "requester_kind": "unit",
    "channel": "portal",
}


def test_unit_user_files_confirms_and_rates(users, regions, client_for):
    unit = client_for(users["unit"])
    unit.post("/desk/new/", {**FIELDS, "region": regions["152502000"].pk})
    ticket = Ticket.objects.get()
    assert ticket.requester == users["unit"]
    assert ticket.number in unit.get("/desk/mine/").content.decode()
    agent = users["agent"]
    services.comment(agent, ticket, "内部：先查日志", internal=True)
    services.change_status(agent, ticket, flow.RESPONDED)
    services.change_status(agent, ticket, flow.CONFIRMING, "请在“凭证查询”菜单按凭证号查询")
    page = unit.get(f"/desk/{ticket.number}/").content.decode()
    assert "请确认处理结果" in page and "内部：先查日志" not in page and "变更状态" not in page
    unit.post(f"/desk/{ticket.number}/confirm/", {"accepted": "0", "note": ""})
    assert Ticket.objects.get().status == flow.CONFIRMING  # rejecting needs a reason
    unit.post(f"/desk/{ticket.number}/confirm/", {"accepted": "1"})
    assert Ticket.objects.get().status == flow.RESOLVED
    unit.post(f"/desk/{ticket.number}/confirm/", {"action": "rate", "score": "5", "comment": "很及时"})
    assert Survey.objects.get(ticket=ticket).score == 5
    again = unit.post(f"/desk/{ticket.number}/confirm/", {"action": "rate", "score": "1"}, follow=True)
    assert "已评价" in again.content.decode()


def test_requesters_see_only_their_own(users, regions, client_for):
    mine = services.create_ticket(users["unit"], region=regions["152502000"], **FIELDS)
    colleague = services.create_ticket(users["agent"], region=regions["152502000"], **FIELDS)
    unit = client_for(users["unit"])
    assert unit.get(f"/desk/{colleague.number}/").status_code == 404
    assert [t["number"] for t in unit.get("/api/desk/tickets").json()] == [mine.number]
    with pytest.raises(PermissionDenied):
        services.rate(users["bank"], mine, 5)
    with pytest.raises(ValidationError, match="解决后"):
        services.rate(users["unit"], mine, 5)
    assert (
        unit.post(f"/desk/{mine.number}/act/", {"action": "status", "status": "responded"}).status_code == 403
    )


def test_satisfaction_and_complaints_per_region(users, regions):
    scores = {"152502000": [5, 4, 3], "152501000": [5, 5]}
    for code, values in scores.items():
        requester = users["unit"] if code == "152502000" else users["bank"]
        for score in values:
            ticket = services.create_ticket(requester, region=regions[code], **FIELDS)
            services.change_status(users["agent"], ticket, flow.RESOLVED)
            services.rate(requester, ticket, score)
    rows = {r["code"]: r for r in services.satisfaction_by_region(Survey.objects.all())}
    assert rows["152502000"]["satisfied"] == 2 and rows["152502000"]["rate"] == pytest.approx(2 / 3)
    assert rows["152501000"]["rate"] == 1.0
    for i in range(4):
        complaint = Complaint.objects.create(
            region=regions["152502000"], complainant=f"投诉人{i}", description="响应慢"
        )
        services.decide_complaint(users["pm"], complaint, valid=i < 3)
    with pytest.raises(PermissionDenied):
        services.decide_complaint(users["agent"], complaint, valid=True)
    year = Complaint.objects.first().at.year
    (row,) = services.complaints_per_region(Complaint.objects.all(), year)
    assert row["valid"] == 3 and row["breach"]


def test_pm_maintains_policies_in_admin(users, client_for):
    pm = client_for(users["pm"])
    listing = pm.get("/admin/desk/slapolicy/").content.decode()
    for code in ("daxing", "foshan", "nantong", "xilingol"):
        assert code in listing
    from caiwei.desk.models import SlaPolicy, SlaRule

    policy = SlaPolicy.objects.get(code="foshan")
    SlaRule.objects.filter(policy=policy).delete()
    pm.post("/admin/desk/slapolicy/", {"action": "reset_to_preset", "_selected_action": [policy.pk]})
    assert SlaRule.objects.filter(policy=policy).count() > 0
    assert client_for(users["agent"]).get("/admin/desk/slapolicy/").status_code in (302, 403)


def test_survey_reminder_once_and_email_when_configured(users, regions, settings):
    from datetime import timedelta

    from django.core import mail
    from django.utils import timezone

    from caiwei.desk.models import Notification

    settings.CAIWEI_NOTIFY_EMAIL = True
    users["unit"].email = "unit@example.invalid"
    users["unit"].save()
    ticket = services.create_ticket(users["unit"], region=regions["152502000"], **FIELDS)
    services.change_status(users["agent"], ticket, flow.RESOLVED)
    assert services.remind_surveys() == 0  # resolved today: not yet
    later = timezone.now() + timedelta(days=10)
    assert services.remind_surveys(now=later) == 1
    assert services.remind_surveys(now=later) == 0  # once
    note = Notification.objects.get(user=users["unit"])
    assert ticket.number in note.text and not mail.outbox  # queued, sent by the worker's tick
    from caiwei.desk.outbox import send_pending

    assert send_pending()["sent"] == 1 and mail.outbox[-1].to == ["unit@example.invalid"]


def test_satisfaction_per_agent(users, regions):
    from caiwei.desk.kpi import monthly_kpis

    ticket = services.create_ticket(users["unit"], region=regions["152502000"], **FIELDS)
    services.assign(users["agent"], ticket, users["engineer"])
    services.change_status(users["agent"], ticket, flow.RESOLVED)
    services.rate(users["unit"], ticket, 4)
    (row,) = monthly_kpis(users["pm"])["satisfaction_by_agent"]
    assert row["agent"] == str(users["engineer"]) and row["rate"] == 1.0
