"""Attachments: type by content (magic bytes), all or nothing per batch, and what requesters may see."""

import io
import zipfile
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from caiwei.desk import services
from caiwei.desk.files import check_attachment
from caiwei.desk.models import TicketAttachment, TicketComment

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
MZ = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"
    + b"\x00" * 64
    + b"This program cannot be run in DOS mode"
)
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100


def zipped(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


def xlsx() -> bytes:
    from openpyxl import Workbook

    buffer = io.BytesIO()
    Workbook().save(buffer)
    return buffer.getvalue()


DOCX = zipped("[Content_Types].xml", "word/document.xml")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("凭证.pdf", PDF),
        ("截图.png", PNG),
        ("照片.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
        ("动图.gif", b"GIF89a\x01\x00"),
        ("说明.docx", DOCX),
        ("对账单.xlsx", None),
        ("旧表.xls", OLE),
        ("旧文档.doc", OLE),
        ("日志.txt", "指标余额不足".encode("gbk")),
        ("明细.csv", "单位,金额\n教育局,100\n".encode()),
        ("明细.csv", "\ufeff单位,金额".encode("utf-16")),
        ("材料.zip", zipped("a.pdf", "b.xlsx")),
        ("发票.ofd", zipped("OFD.xml", "Doc_0/Document.xml")),
        ("包.rar", b"Rar!\x1a\x07\x01\x00rest"),
    ],
)
def test_real_files_are_accepted(name, data):
    data = xlsx() if data is None else data
    assert check_attachment(name, len(data), data) is None


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("发票.pdf", MZ, "可执行程序"),
        ("截图.png", MZ, "可执行程序"),
        ("说明.txt", MZ, "可执行程序"),
        ("工具.zip", b"\x7fELF\x02\x01\x01", "可执行程序"),
        ("run.txt", b"#!/bin/sh\nrm -rf /\n", "可执行程序"),
        ("发票.pdf", PNG, "不是 PDF 文档"),
        ("截图.png", PDF, "不是 PNG 图片"),
        ("照片.jpeg", b"GIF89a", "不是 JPEG 图片"),
        ("说明.docx", zipped("evil.txt"), "不是 Word 文档"),
        ("对账单.xlsx", DOCX, "不是 Excel 表格"),
        ("旧表.xls", PDF, "不是 Excel 97-2003 表格"),
        ("明细.csv", b"a,b\x00\x01\x02", "不是 CSV 文本"),
        ("材料.zip", zipped("readme.txt", "setup.exe"), "内含可执行"),
        ("材料.zip", b"PK\x03\x04broken", "不是 ZIP 压缩包"),
    ],
)
def test_content_must_match_the_name(name, data, fragment):
    reason = check_attachment(name, len(data), data)
    assert reason is not None and fragment in reason and name in reason


def make_ticket(users, regions, requester=None):
    return services.create_ticket(
        users["agent"],
        region=regions["152502000"],
        system="其他",
        ticket_type="咨询",
        title="t",
        description="d",
        requester_name="n",
        requester=requester,
    )


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def test_upload_on_the_page(users, regions, client_for, media):
    ticket = make_ticket(users, regions)
    client = client_for(users["agent"])
    client.post(
        f"/desk/{ticket.number}/act/",
        {"action": "comment", "body": "附上截图", "files": [SimpleUploadedFile("截图.png", PNG)]},
    )
    item = ticket.attachments.get()
    assert b"".join(client.get(f"/desk/{ticket.number}/files/{item.pk}/").streaming_content) == PNG
    assert item.comment.body == "附上截图" and "截图" not in item.file.name  # stored under a generated name
    assert client_for(users["bank"]).get(f"/desk/{ticket.number}/files/{item.pk}/").status_code == 404


def test_executable_named_pdf_is_refused_on_the_page(users, regions, client_for, media):
    ticket = make_ticket(users, regions)
    page = client_for(users["agent"]).post(
        f"/desk/{ticket.number}/act/",
        {"action": "comment", "body": "发票", "files": [SimpleUploadedFile("发票.pdf", MZ)]},
        follow=True,
    )
    assert "“发票.pdf”的内容是可执行程序" in page.content.decode()
    assert not ticket.attachments.exists() and not ticket.comments.exists()


def test_batch_is_all_or_nothing_on_the_page(users, regions, client_for, media):
    """A refused file in the middle: nothing is saved, not the files before it nor the comment."""
    ticket = make_ticket(users, regions)
    files = [
        SimpleUploadedFile("a.png", PNG),
        SimpleUploadedFile("b.bat", b"@echo off"),
        SimpleUploadedFile("c.pdf", PDF),
        SimpleUploadedFile("d.pdf", MZ),
    ]
    page = (
        client_for(users["agent"])
        .post(
            f"/desk/{ticket.number}/act/",
            {"action": "comment", "body": "三个文件", "files": files},
            follow=True,
        )
        .content.decode()
    )
    assert "未保存任何附件" in page and "“b.bat”" in page and "“d.pdf”" in page
    assert not ticket.attachments.exists() and not ticket.comments.exists()
    assert [p for p in media.rglob("*") if p.is_file()] == []
    files = [SimpleUploadedFile("a.png", PNG), SimpleUploadedFile("c.pdf", PDF)]
    client_for(users["agent"]).post(
        f"/desk/{ticket.number}/act/", {"action": "comment", "body": "两个文件", "files": files}
    )
    assert sorted(ticket.attachments.values_list("name", flat=True)) == ["a.png", "c.pdf"]


def test_api_upload_checks_content_and_is_all_or_nothing(users, regions, client_for, media):
    ticket = make_ticket(users, regions, requester=users["unit"])
    unit = client_for(users["unit"])
    url = f"/api/desk/tickets/{ticket.number}/attachments"
    bad = unit.post(url, {"files": [SimpleUploadedFile("a.png", PNG), SimpleUploadedFile("发票.pdf", MZ)]})
    assert bad.status_code == 400 and "发票.pdf" in bad.json()["detail"]
    assert not TicketAttachment.objects.exists()
    ok = unit.post(url, {"files": [SimpleUploadedFile("a.png", PNG)], "body": "补充截图"})
    assert ok.status_code == 201 and [a["name"] for a in ok.json()] == ["a.png"]
    assert TicketComment.objects.get().attachments.count() == 1
    internal = unit.post(url, {"files": [SimpleUploadedFile("a.png", PNG)], "body": "x", "internal": "true"})
    assert internal.status_code == 403
    other = make_ticket(users, regions)
    assert (
        unit.post(
            f"/api/desk/tickets/{other.number}/attachments", {"files": [SimpleUploadedFile("a.png", PNG)]}
        ).status_code
        == 404
    )


def test_requester_sees_no_internal_or_vendor_notes(users, regions, client_for, media):
    ticket = make_ticket(users, regions, requester=users["unit"])
    agent = users["agent"]
    services.comment(agent, ticket, "公开回复：请重启客户端")
    services.comment(
        agent,
        ticket,
        "内部：疑似签章服务故障",
        internal=True,
        files=[SimpleUploadedFile("内部日志.txt", b"log")],
    )
    order = services.to_vendor(
        agent, ticket, reference="SJ-1", due=timezone.localdate() + timedelta(days=3), note="厂商提交说明"
    )
    services.follow_up(agent, order, "厂商称下周出补丁", "accepted")
    unit = client_for(users["unit"])
    page = unit.get(f"/desk/{ticket.number}/").content.decode()
    assert "公开回复" in page
    for secret in ("内部：疑似", "内部日志.txt", "SJ-1", "厂商提交说明", "厂商称下周出补丁"):
        assert secret not in page
    api = unit.get(f"/api/desk/tickets/{ticket.number}/comments")
    assert [c["body"] for c in api.json()] == ["公开回复：请重启客户端"]
    assert "SJ-1" not in unit.get(f"/api/desk/tickets/{ticket.number}").content.decode()
    hidden = ticket.attachments.get()
    assert unit.get(f"/desk/{ticket.number}/files/{hidden.pk}/").status_code == 404
    # Finance staff (view, not work) are not O&M either; the workers see everything.
    finance = client_for(users["finance"]).get(f"/desk/{ticket.number}/").content.decode()
    assert "厂商称下周出补丁" not in finance and "内部：疑似" not in finance
    worker = client_for(users["engineer"]).get(f"/desk/{ticket.number}/").content.decode()
    assert "厂商称下周出补丁" in worker and "内部：疑似" in worker and "内部日志.txt" in worker
    assert len(client_for(agent).get(f"/api/desk/tickets/{ticket.number}/comments").json()) == 2


def test_nul_in_a_note_is_a_400_not_a_500(users, regions, client_for, media):
    ticket = make_ticket(users, regions)
    response = client_for(users["agent"]).post(
        f"/api/desk/tickets/{ticket.number}/attachments",
        {"files": [SimpleUploadedFile("a.png", PNG)], "body": "a\x00b"},
    )
    assert response.status_code == 400 and "空字符" in response.json()["detail"]
    assert not TicketAttachment.objects.exists()


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("invoice\u202efdp.pdf", PDF, "方向控制符"),
        ("a\u200bb.pdf", PDF, "方向控制符"),
        ("空.pdf", b"", "空文件"),
        ("../x.pdf", PDF, "路径"),
        ("NUL.txt", b"x", "保留"),
        ("x" * 201 + ".pdf", PDF, "过长"),
    ],
)
def test_names_and_empty_files_are_refused(name, data, fragment):
    assert fragment in check_attachment(name, len(data), data)
