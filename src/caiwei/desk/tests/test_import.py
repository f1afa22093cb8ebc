"""Importing tickets from the spreadsheets they lived in: GBK CSV and Excel, all rows or none, errors by row and field."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from caiwei.conftest import PASSWORD
from caiwei.desk.models import Ticket

pytestmark = pytest.mark.django_db
HEADER = "区划代码,受理时间,渠道,系统,类型,严重程度,标题,问题描述,联系人,单位,电话,状态\n"


def test_gbk_csv_imports_all_rows(users, regions, tmp_path, monkeypatch):
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    path = tmp_path / "台账.csv"
    path.write_bytes(
        (
            HEADER
            + "152502000,2026-03-02 09:15,热线,工资统发,咨询,一般,工资表导入失败,,某县教育局经办人,某县教育局,,已关闭\n"
            "152501000,2026-03-03 14:00,邮件,国库集中支付,故障,紧急,凭证被退回,银行退回,代理银行经办人,某银行,,处理中\n"
        ).encode("gbk")
    )
    out = StringIO()
    call_command("desk", "import", str(path), "--actor", "t_agent", stdout=out)
    assert "已导入 2 张工单" in out.getvalue()
    closed = Ticket.objects.get(title="工资表导入失败")
    assert closed.status == "closed" and closed.channel == "hotline" and closed.opened_at.month == 3
    assert Ticket.objects.get(title="凭证被退回").due_resolution is not None


def test_bad_rows_are_named_and_nothing_is_written(users, regions, tmp_path, monkeypatch):
    monkeypatch.setenv("CAIWEI_PASSWORD", PASSWORD)
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "152502000,2026-03-02 09:15,热线,工资统发,咨询,一般,好的一行,,甲,,,\n"
        "150100000,2026/03/02,传真,工资,投诉,一般,,,乙,,,\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError) as info:
        call_command("desk", "import", str(path), "--actor", "t_unit", stdout=StringIO())
    assert "无权限" in str(info.value)  # a budget-unit account may not import
    with pytest.raises(CommandError) as info:
        call_command("desk", "import", str(path), "--actor", "t_agent", stdout=StringIO())
    message = str(info.value)
    for fragment in (
        "第 3 行“标题”：不能为空",
        "第 3 行“区划代码”",
        "第 3 行“受理时间”",
        "第 3 行“渠道”",
        "第 3 行“系统”",
        "第 3 行“类型”",
    ):
        assert fragment in message
    assert Ticket.objects.count() == 0


def test_excel_import(users, regions, tmp_path):
    from datetime import datetime

    from openpyxl import Workbook

    from caiwei.desk.importer import import_tickets

    book = Workbook()
    book.active.append(HEADER.strip().split(","))
    book.active.append(
        [
            "152500000",
            datetime(2026, 4, 1, 10, 0),
            "门户",
            "指标管理",
            "数据查询",
            "一般",
            "查指标余额",
            "",
            "财政局经办人",
            "",
            "",
            "",
        ]
    )
    path = tmp_path / "台账.xlsx"
    book.save(path)
    assert import_tickets(users["agent"], path) == 1
    assert Ticket.objects.get().ticket_type == "数据查询"
