"""Attachment checks 附件检查: name, type by name, size, and type by content, for page, API and mail alike.

A file is accepted only when its name is a plain file name, its extension is allowed, it is within the size
limit and its bytes are what the extension says (magic numbers; Office Open XML and OFD by their zip parts;
text by decoding). Executable content is refused whatever the name.
"""

from __future__ import annotations

import io
import unicodedata
import zipfile
from pathlib import PurePosixPath

from django.conf import settings

DANGEROUS = {
    "exe",
    "bat",
    "cmd",
    "com",
    "scr",
    "pif",
    "js",
    "jse",
    "vbs",
    "vbe",
    "wsf",
    "ps1",
    "msi",
    "jar",
    "dll",
    "sh",
    "hta",
    "lnk",
    "reg",
    "cpl",
}
# Windows device names: a file called CON.txt cannot be opened once it reaches a Windows desktop.
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
WINDOWS_FORBIDDEN = set('<>:"|?*')
MAX_NAME = 200
EXECUTABLE_MAGIC = (
    b"MZ",  # Windows PE
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",  # Mach-O
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal / Java class
    b"#!",  # script with an interpreter line
)
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def allowed_types() -> set[str]:
    return set(
        getattr(
            settings, "CAIWEI_ATTACHMENT_TYPES", "pdf png jpg jpeg gif txt csv xls xlsx doc docx ofd zip rar"
        ).split()
    )


def max_bytes() -> int:
    return int(getattr(settings, "CAIWEI_ATTACHMENT_MAX_MB", 10)) * 1024 * 1024


def shown(name: str) -> str:
    """The name as it may be printed in a message: control characters dropped, cut at 60 characters."""
    text = "".join(c if c.isprintable() else "?" for c in name)
    return text if len(text) <= 60 else text[:60] + "…"


def check_name(name: str) -> str | None:
    """Why ``name`` is not a plain file name that is safe on every system, or None."""
    if not name or not name.strip():
        return "附件缺少文件名"
    label = shown(name)
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name):
        # Cf covers the bidi overrides that make "invoice\u202efdp.exe" look like "invoiceexe.pdf".
        return f"附件“{label}”的文件名含控制字符或方向控制符，不予接收"
    if "/" in name or "\\" in name:
        return f"附件“{label}”的文件名含路径（/ 或 \\），不予接收"
    if len(name) > MAX_NAME or len(name.encode("utf-8", "surrogatepass")) > 255:
        return f"附件“{label}”的文件名过长（上限 {MAX_NAME} 个字符）"
    if name.strip(". ") == "" or name.endswith((".", " ")):
        return f"附件“{label}”的文件名不能以句点或空格结尾"
    if WINDOWS_FORBIDDEN & set(name):
        return f'附件“{label}”的文件名含 Windows 不允许的字符（< > : " | ? *）'
    if name.split(".")[0].strip().upper() in WINDOWS_RESERVED:
        return f"附件“{label}”使用了 Windows 保留的设备名"
    return None


def suffixes(name: str) -> list[str]:
    return [s.lower().lstrip(".") for s in PurePosixPath(name).suffixes]


def extension(name: str) -> str:
    found = suffixes(name)
    return found[-1] if found else ""


def check_attachment(name: str, size: int, content: bytes | None = None) -> str | None:
    """Why an attachment is refused (in Chinese, naming it), or None when it is acceptable.

    Without ``content`` only the name and size are judged; every caller that has the bytes passes them.
    """
    reason = check_name(name)
    if reason:
        return reason
    kinds = suffixes(name)
    if any(s in DANGEROUS for s in kinds):
        return f"附件“{name}”是可执行或脚本类文件，出于安全原因不予接收"
    if not kinds or kinds[-1] not in allowed_types():
        return f"附件“{name}”的类型不在允许范围（{'、'.join(sorted(allowed_types()))}）"
    if size > max_bytes():
        return f"附件“{name}”大小 {size / 1024 / 1024:.1f} MB，超过上限 {max_bytes() // 1024 // 1024} MB"
    if size == 0 or content == b"":
        return f"附件“{name}”是空文件"
    if content is not None:
        return check_content(name, content)
    return None


def _zip_names(data: bytes) -> list[str] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, NotImplementedError, OSError, EOFError):
        return None


def _is_text(data: bytes) -> bool:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark (Excel's "Unicode text")
        try:
            data.decode("utf-16")
        except UnicodeDecodeError:
            return False
        return True
    if b"\x00" in data:
        return False
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return True
    return False


def _pdf(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"%PDF-")


def _zip_with(*required: str):
    def check(data: bytes) -> bool:
        names = _zip_names(data) if data.startswith(b"PK\x03\x04") else None
        return names is not None and all(r in names for r in required)

    return check


def _zip(data: bytes) -> bool:
    return data.startswith((b"PK\x03\x04", b"PK\x05\x06")) and _zip_names(data) is not None


# What each extension's bytes must look like, and the name of the format for the message.
SIGNATURES = {
    "pdf": ("PDF 文档", _pdf),
    "png": ("PNG 图片", lambda d: d.startswith(b"\x89PNG\r\n\x1a\n")),
    "jpg": ("JPEG 图片", lambda d: d.startswith(b"\xff\xd8\xff")),
    "jpeg": ("JPEG 图片", lambda d: d.startswith(b"\xff\xd8\xff")),
    "gif": ("GIF 图片", lambda d: d[:6] in (b"GIF87a", b"GIF89a")),
    "bmp": ("BMP 图片", lambda d: d.startswith(b"BM")),
    "tif": ("TIFF 图片", lambda d: d[:4] in (b"II*\x00", b"MM\x00*")),
    "tiff": ("TIFF 图片", lambda d: d[:4] in (b"II*\x00", b"MM\x00*")),
    "doc": ("Word 97-2003 文档", lambda d: d.startswith(OLE)),
    "xls": ("Excel 97-2003 表格", lambda d: d.startswith(OLE)),
    "ppt": ("PowerPoint 97-2003 演示文稿", lambda d: d.startswith(OLE)),
    "wps": ("WPS 文字文档", lambda d: d.startswith(OLE)),
    "et": ("WPS 表格", lambda d: d.startswith(OLE)),
    "docx": ("Word 文档", _zip_with("[Content_Types].xml", "word/document.xml")),
    "xlsx": ("Excel 表格", _zip_with("[Content_Types].xml", "xl/workbook.xml")),
    "pptx": ("PowerPoint 演示文稿", _zip_with("[Content_Types].xml", "ppt/presentation.xml")),
    "ofd": ("OFD 版式文件", _zip_with("OFD.xml")),
    "zip": ("ZIP 压缩包", _zip),
    "rar": ("RAR 压缩包", lambda d: d.startswith((b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00"))),
    "7z": ("7z 压缩包", lambda d: d.startswith(b"7z\xbc\xaf\x27\x1c")),
    "txt": ("文本文件", _is_text),
    "csv": ("CSV 文本", _is_text),
    "log": ("文本文件", _is_text),
    "xml": ("XML 文本", _is_text),
}


def check_content(name: str, data: bytes) -> str | None:
    """Why the bytes of ``name`` are refused: executable content, or not the format its extension names."""
    if data.startswith(EXECUTABLE_MAGIC):
        return f"附件“{name}”的内容是可执行程序或脚本，出于安全原因不予接收"
    ext = extension(name)
    label, matches = SIGNATURES.get(ext, (None, None))
    if matches is not None and not matches(data):
        return f"附件“{name}”的内容不是 {label}（与扩展名 .{ext} 不符），不予接收"
    if ext in {"zip", "docx", "xlsx", "pptx", "ofd"}:
        inner = [n for n in _zip_names(data) or [] if any(s in DANGEROUS for s in suffixes(n))]
        if inner:
            return f"附件“{name}”内含可执行或脚本类文件（{shown(inner[0])}），不予接收"
    return None
