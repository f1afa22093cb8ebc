"""The monthly sign-off 月度对账签认: a bank user of that bank and a finance user of that region each sign (either
first), never one person for both; each signature is in the audit chain with the figures signed; once both signed,
the month of that bank is read-only — resolving, assigning, commenting, carrying or re-running are refused with a
Chinese error and nothing is written. Also the page, the API and the command line."""

from __future__ import annotations

import json
from datetime import date
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from caiwei.accounts.roles import Role
from caiwei.audit.context import acting_as
from caiwei.audit.models import AuditEvent
from caiwei.desk.models import Ticket
from caiwei.recon import services
from caiwei.recon.models import BreakComment, ReconBreak, ReconRun, ReconSignoff
from caiwei.recon.services import PeriodSigned, sign

from . import scenario

JAN = date(2026, 1, 1)
LEAGUE = "152500000"


@pytest.fixture
def run(regions):
    return scenario.execute(regions[LEAGUE])


def bank_user(make_user, name: str, code: str, *roles, regions=(LEAGUE,)):
    user = make_user(name, Role.BANK_USER, *roles, regions=regions)
    user.bank_code = code
    user.save(update_fields=["bank_code"])
    return user


@pytest.fixture
def people(make_user):
    return {
        "bank": bank_user(make_user, "s_bank", scenario.BANK),
        "other_bank": bank_user(make_user, "s_other_bank", scenario.OTHER),
        "finance": make_user("s_finance", Role.FINANCE_STAFF, regions=(LEAGUE,)),
        "approver": make_user("s_approver", Role.FINANCE_APPROVER, regions=(LEAGUE,)),
        "county_finance": make_user("s_county", Role.FINANCE_STAFF, regions=("152502000",)),
        "both": bank_user(make_user, "s_both", scenario.BANK, Role.FINANCE_STAFF),
        "engineer": make_user("s_engineer", Role.ENGINEER, regions=(LEAGUE,)),
    }


def signed(run, people) -> ReconSignoff:
    sign(people["bank"], run, scenario.BANK, JAN)
    return sign(people["finance"], run, scenario.BANK, JAN)


def sign_events(signoff) -> list[AuditEvent]:
    return [
        e
        for e in AuditEvent.objects.filter(
            object_type="recon.reconsignoff", object_id=str(signoff.pk)
        ).order_by("seq")
        if (e.detail or {}).get("event") == "对账签认"
    ]


def test_bank_then_finance(run, people):
    with acting_as(people["bank"], "web"):
        first = sign(people["bank"], run, scenario.BANK, JAN)
    assert first.state == ReconSignoff.State.BANK and first.bank_user == people["bank"]
    assert first.figures["balanced"] is True and first.figures["adjusted_bank"] == "2560.00"
    with acting_as(people["finance"], "web"):
        second = sign(people["finance"], run, scenario.BANK, JAN)
    assert second.pk == first.pk and second.state == ReconSignoff.State.SIGNED
    assert second.finance_user == people["finance"] and second.finance_signed_at and second.bank_signed_at
    events = sign_events(second)
    assert [e.detail["side"] for e in events] == ["银行", "财政"]
    assert [e.actor for e in events] == ["s_bank", "s_finance"]
    assert events[0].detail["figures"]["book_paid"] == "2390.00" and events[1].detail["state"] == "signed"


def test_finance_then_bank(run, people):
    first = sign(people["approver"], run, scenario.BANK, JAN)
    assert first.state == ReconSignoff.State.FINANCE
    assert sign(people["bank"], run, scenario.BANK, JAN).state == ReconSignoff.State.SIGNED


def test_a_side_signs_once_and_a_signed_month_not_again(run, people):
    sign(people["finance"], run, scenario.BANK, JAN)
    with pytest.raises(ValidationError, match="财政方已由"):
        sign(people["approver"], run, scenario.BANK, JAN)
    sign(people["bank"], run, scenario.BANK, JAN)
    with pytest.raises(PeriodSigned, match="已于"):
        sign(people["bank"], run, scenario.BANK, JAN)


def test_the_same_person_cannot_sign_both_sides(run, people):
    with pytest.raises(ValidationError, match="银行（bank）还是财政"):
        sign(people["both"], run, scenario.BANK, JAN)  # two roles: say which side
    sign(people["both"], run, scenario.BANK, JAN, side="bank")
    with pytest.raises(ValidationError, match="同一人不能同时代表银行和财政签认"):
        sign(people["both"], run, scenario.BANK, JAN, side="finance")
    signoff = ReconSignoff.objects.get()
    assert signoff.state == ReconSignoff.State.BANK and signoff.finance_user is None
    # and the database refuses it too
    with pytest.raises(IntegrityError), transaction.atomic():
        ReconSignoff.objects.filter(pk=signoff.pk).update(finance_user=signoff.bank_user)


def test_a_user_of_another_bank_is_refused(run, people):
    with pytest.raises(PermissionDenied, match="中国农业银行"):
        sign(people["other_bank"], run, scenario.BANK, JAN)
    assert not ReconSignoff.objects.exists()
    assert AuditEvent.objects.filter(action="denied", object_type="recon.signoff").exists()


def test_a_bank_user_without_a_bank_is_refused(run, make_user):
    user = make_user("s_nobank", Role.BANK_USER, regions=(LEAGUE,))
    with pytest.raises(PermissionDenied, match="未设置所属代理银行"):
        sign(user, run, scenario.BANK, JAN)


def test_a_finance_user_without_the_region_is_refused(run, people):
    with pytest.raises(PermissionDenied, match="区划授权"):
        sign(people["county_finance"], run, scenario.BANK, JAN)
    assert not ReconSignoff.objects.exists()


def test_roles_that_do_not_sign_are_refused(run, people):
    with pytest.raises(PermissionDenied):
        sign(people["engineer"], run, scenario.BANK, JAN)
    with pytest.raises(PermissionDenied, match="只有银行用户"):
        sign(people["finance"], run, scenario.BANK, JAN, side="bank")


def test_only_a_whole_month_of_the_newest_run(regions, people):
    half = scenario.execute(regions[LEAGUE], end=date(2026, 1, 15))
    with pytest.raises(ValidationError, match="不含整个"):
        sign(people["bank"], half, scenario.BANK, JAN)
    older = scenario.execute(regions[LEAGUE])
    newer = scenario.execute(regions[LEAGUE])
    with pytest.raises(ValidationError, match=f"更新的第 {newer.pk} 次对账"):
        sign(people["bank"], older, scenario.BANK, JAN)
    with pytest.raises(ValidationError, match="没有银行"):
        sign(people["finance"], newer, "B999", JAN)


def test_a_new_run_voids_a_half_signed_month(regions, run, people):
    sign(people["bank"], run, scenario.BANK, JAN)
    again = scenario.execute(regions[LEAGUE])
    signoff = ReconSignoff.objects.get()
    assert signoff.state == ReconSignoff.State.PENDING and signoff.run == again and signoff.bank_user is None
    assert AuditEvent.objects.filter(
        object_type="recon.reconsignoff", object_id=str(signoff.pk), detail__event="签认作废"
    ).exists()
    third = scenario.execute(regions[LEAGUE])  # nobody had signed again: the sign-off follows the newest run
    with pytest.raises(ValidationError, match=f"更新的第 {third.pk} 次"):
        sign(people["bank"], again, scenario.BANK, JAN)
    done = signed(third, people)
    assert done.state == ReconSignoff.State.SIGNED and done.run == third


# --- read-only once signed ----------------------------------------------------------------------------------------


def snapshot(run) -> list:
    return sorted(
        ReconBreak.objects.filter(region=run.region).values_list(
            "pk", "state", "resolution", "owner_id", "last_run_id", "lines"
        )
    )


def test_every_writer_is_refused_once_signed_and_nothing_is_written(regions, run, people, make_user):
    signoff = signed(run, people)
    before, comments, runs = snapshot(run), BreakComment.objects.count(), ReconRun.objects.count()
    brk = ReconBreak.objects.get(last_run=run, kind="amount")
    owner = make_user("s_owner", Role.ENGINEER, regions=(LEAGUE,))

    brk.state, brk.resolution = ReconBreak.State.RESOLVED, "银行已更正"
    with pytest.raises(PeriodSigned, match="2026年1月中国工商银行（演练）（B102）的对账已于.*只读"):
        brk.save()
    brk.refresh_from_db()
    brk.owner = owner
    with pytest.raises(PeriodSigned, match="不能修改差异"):
        brk.save()
    with pytest.raises(PeriodSigned, match="不能填写意见"):
        BreakComment.objects.create(brk=ReconBreak.objects.get(pk=brk.pk), author=owner, text="已联系银行")
    with pytest.raises(PeriodSigned, match="不能删除差异"):
        ReconBreak.objects.get(pk=brk.pk).delete()
    # the services behind the pages and the API: nothing written, no ticket opened
    tickets = Ticket.objects.count()
    for write in (
        lambda: services.resolve_break(owner, ReconBreak.objects.get(pk=brk.pk), "银行已更正"),
        lambda: services.assign_break(owner, ReconBreak.objects.get(pk=brk.pk), owner),
        lambda: services.comment_break(owner, ReconBreak.objects.get(pk=brk.pk), "已联系银行"),
        lambda: services.open_ticket(owner, ReconBreak.objects.get(pk=brk.pk)),
    ):
        with pytest.raises(PeriodSigned):
            write()
    assert Ticket.objects.count() == tickets
    # moving the break out of the month first is no way round
    moved = ReconBreak.objects.get(pk=brk.pk)
    moved.day, moved.state, moved.resolution = date(2026, 2, 1), ReconBreak.State.RESOLVED, "改日期"
    with pytest.raises(PeriodSigned):
        moved.save()
    # re-running January (any bank: the run would rewrite this bank's month) — through keep_breaks or a whole run
    with pytest.raises(PeriodSigned, match="不能重新对账"):
        services.keep_breaks(
            ReconRun.objects.create(region=run.region, period_start=JAN, period_end=JAN, as_of=JAN), []
        )
    with pytest.raises(PeriodSigned, match="不能重新对账"):
        scenario.execute(regions[LEAGUE])
    whole = ReconRun.objects.create(
        region=run.region, period_start=JAN, period_end=date(2026, 3, 31), as_of=JAN
    )
    with pytest.raises(PeriodSigned, match="不能重新对账"):  # refused before any source is read
        services.run_reconciliation(whole, book_url="sqlite:///nowhere.sqlite3", bank_files=[])
    # the signed run and the sign-off itself
    run.refresh_from_db()
    run.message = "改"
    with pytest.raises(PeriodSigned):
        run.save()
    signoff.refresh_from_db()
    signoff.figures = {}
    with pytest.raises(ValidationError, match="不能再修改"):
        signoff.save()
    with pytest.raises(ValidationError, match="不能删除"):
        signoff.delete()

    assert snapshot(run) == before and BreakComment.objects.count() == comments
    assert ReconRun.objects.count() == runs + 3  # the refused runs exist and changed nothing
    whole.refresh_from_db()
    assert whole.status == ReconRun.Status.FAILED and "不能重新对账" in whole.message
    assert ReconSignoff.objects.get().figures["adjusted_bank"] == "2560.00"


def test_other_months_and_banks_stay_writable(regions, run, people):
    # only the other bank's January is signed: this bank's breaks can still be worked on…
    sign(people["other_bank"], run, scenario.OTHER, JAN)
    sign(people["finance"], run, scenario.OTHER, JAN)
    brk = ReconBreak.objects.get(last_run=run, kind="amount")
    brk.state, brk.resolution = ReconBreak.State.RESOLVED, "银行已更正"
    brk.save()
    BreakComment.objects.create(brk=brk, author=people["finance"], text="已处理")
    # …but January is not re-run for any bank
    with pytest.raises(PeriodSigned, match="中国农业银行"):
        scenario.execute(regions[LEAGUE])


def test_a_later_period_leaves_the_signed_breaks_as_signed(regions, run, people):
    signed(run, people)
    before = snapshot(run)
    february = scenario.execute(regions[LEAGUE], start=date(2026, 2, 1), end=date(2026, 2, 28))
    assert february.status == ReconRun.Status.DONE and "已签认期间的差异" in february.message
    assert snapshot(run) == before  # not carried, not cleared: last_run and state as signed


# --- page, API, command line --------------------------------------------------------------------------------------


def test_page_shows_state_downloads_and_signs(run, people, client_for):
    url = f"/recon/statements/runs/{run.pk}/?bank={scenario.BANK}&month=2026-01"
    page = client_for(people["bank"]).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "余额调节表" in html and "调节后余额相等" in html and 'data-sign="bank"' in html
    assert "中国农业银行" not in html  # a bank user sees their bank only
    response = client_for(people["bank"]).post(
        f"/recon/statements/runs/{run.pk}/sign/", {"bank": scenario.BANK, "month": "2026-01", "side": "bank"}
    )
    assert response.status_code == 302
    assert ReconSignoff.objects.get().state == ReconSignoff.State.BANK
    html = client_for(people["finance"]).get(url).content.decode()
    assert "银行已签" in html and 'data-sign="finance"' in html
    client_for(people["finance"]).post(
        f"/recon/statements/runs/{run.pk}/sign/",
        {"bank": scenario.BANK, "month": "2026-01", "side": "finance"},
    )
    html = client_for(people["finance"]).get(url).content.decode()
    assert "该月已由银行与财政双方签认" in html and "data-sign=" not in html
    download = client_for(people["finance"]).get(
        f"/recon/statements/runs/{run.pk}/download/?bank={scenario.BANK}&period=month&date=2026-01&format=docx"
    )
    assert download.status_code == 200 and download.content[:2] == b"PK"
    other = client_for(people["bank"]).get(
        f"/recon/statements/runs/{run.pk}/download/?bank={scenario.OTHER}&period=month&date=2026-01"
    )
    assert other.status_code == 404


def test_page_refusal_is_a_chinese_message(run, people, client_for):
    client = client_for(people["other_bank"])
    response = client.post(
        f"/recon/statements/runs/{run.pk}/sign/",
        {"bank": scenario.BANK, "month": "2026-01", "side": "bank"},
        follow=True,
    )
    assert "不能签认中国工商银行" in response.content.decode()
    assert not ReconSignoff.objects.exists()


def test_api(run, people, client_for):
    bank = client_for(people["bank"])
    overview = bank.get(f"/api/recon/statements/{run.pk}").json()
    assert [b["code"] for b in overview["banks"]] == [scenario.BANK]
    jan = overview["months"][0]
    assert jan["balanced"] and jan["adjusted_book"] == "2560.00" and jan["may_sign"] == {"bank": "可以签认"}
    body = bank.get(
        f"/api/recon/statements/{run.pk}/statement?bank={scenario.BANK}&period=day&date=2026-01-30"
    ).json()
    assert body["reconciliation"]["balanced"] and body["reconciliation"]["bank_items"]
    assert bank.get(f"/api/recon/statements/{run.pk}/statement?bank={scenario.OTHER}").status_code == 404
    file = bank.get(f"/api/recon/statements/{run.pk}/file?bank={scenario.BANK}&format=xlsx&date=2026-01")
    assert file.status_code == 200 and file.content[:2] == b"PK"
    refused = client_for(people["other_bank"]).post(
        "/api/recon/signoffs",
        json.dumps({"run": run.pk, "bank_code": scenario.BANK, "month": "2026-01"}),
        content_type="application/json",
    )
    assert refused.status_code == 403 and "不能签认" in refused.json()["detail"]
    done = bank.post(
        "/api/recon/signoffs",
        json.dumps({"run": run.pk, "bank_code": scenario.BANK, "month": "2026-01"}),
        content_type="application/json",
    )
    assert done.status_code == 200 and done.json()["state"] == "bank"
    finance = client_for(people["finance"])
    done = finance.post(
        "/api/recon/signoffs",
        json.dumps({"run": run.pk, "bank_code": scenario.BANK, "month": "2026-01"}),
        content_type="application/json",
    ).json()
    assert done["state"] == "signed" and done["bank_user"] and done["finance_user"]
    again = finance.post(
        "/api/recon/signoffs",
        json.dumps({"run": run.pk, "bank_code": scenario.BANK, "month": "2026-01"}),
        content_type="application/json",
    )
    assert again.status_code == 400 and "已于" in again.json()["detail"]
    listed = client_for(people["other_bank"]).get("/api/recon/signoffs").json()
    assert listed == []  # another bank's sign-offs are not listed
    assert finance.get(f"/api/recon/signoffs/{done['id']}").json()["state"] == "signed"
    assert client_for(people["other_bank"]).get(f"/api/recon/signoffs/{done['id']}").status_code == 404


def test_command_line(run, people, monkeypatch):
    from caiwei.conftest import PASSWORD

    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    out = StringIO()
    call_command(
        "recon", "signoff", "sign", "--run", str(run.pk), "--bank", scenario.BANK, "--month", "2026-01",
        "--actor", "s_bank", stdout=out,
    )  # fmt: skip
    assert "银行已签" in out.getvalue()
    with pytest.raises(CommandError, match="同一人|不能签认|区划授权"):
        call_command(
            "recon", "signoff", "sign", "--run", str(run.pk), "--bank", scenario.BANK, "--month", "2026-01",
            "--actor", "s_county", stdout=StringIO(),
        )  # fmt: skip
    call_command(
        "recon", "signoff", "sign", "--run", str(run.pk), "--bank", scenario.BANK, "--month", "2026-01",
        "--actor", "s_finance", stdout=StringIO(),
    )  # fmt: skip
    out = StringIO()
    call_command("recon", "signoff", "list", "--json", stdout=out)
    rows = json.loads(out.getvalue())
    assert rows[0]["state"] == "signed" and rows[0]["figures"]["balanced"]
