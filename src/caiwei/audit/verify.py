"""Verify the stored chain: stream rows in order, never load the table at once; compare with the seals."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .chain import HASHED_FIELDS, MISSING, Break, Seal, SealFileError, verify_rows
from .keys import audit_key
from .models import AuditEvent, AuditHead
from .seals import load, seal_path, seal_time_text

CHUNK = 5000


@dataclass
class Report:
    rows: int
    broken: Break | None
    last: tuple[int, str] = (0, "")  # the last row walked: what a seal written after this verify may record
    seals: list[Seal] = field(default_factory=list)

    @property
    def latest_seal(self) -> Seal | None:
        return max(self.seals, key=lambda s: (s.seq, s.n)) if self.seals else None

    def seal_note(self) -> str:
        latest = self.latest_seal
        if latest is None:
            return "尚无封存点"
        return (
            f"已对照 {len(self.seals)} 个封存点，最近一个记录到第 {latest.seq} 行（{seal_time_text(latest)}）"
        )


def _load_seals(extra: Sequence[Path]) -> tuple[list[Seal], Break | None]:
    seals: list[Seal] = []
    for path in (seal_path(), *extra):
        try:
            seals += load(Path(path))
        except SealFileError as exc:
            return seals, Break(0, f"{exc}（{path}）")
    return seals, None


def check_chain(
    progress: Callable[[int, int], None] | None = None, seal_files: Sequence[Path] = ()
) -> Report:
    """Walk every row against the head and the seals (the live seal file and any exported copies given)."""
    total = AuditEvent.objects.count()
    head = AuditHead.objects.filter(pk=1).values_list("seq", "hash", "mac").first()
    seals, bad_file = _load_seals(seal_files)
    last = [0, ""]

    def rows() -> Iterator[dict]:
        query = AuditEvent.objects.order_by("seq").values(*HASHED_FIELDS, "hash")
        for done, row in enumerate(query.iterator(chunk_size=CHUNK), 1):
            if progress and done % CHUNK == 0:
                progress(done, total)
            last[:] = row["seq"], row["hash"]
            yield row

    broken = verify_rows(
        audit_key(), rows(), head if head is not None else MISSING, seals=seals, when=seal_time_text
    )
    if progress:
        progress(total, total)
    return Report(total, broken or bad_file, (last[0], last[1]), seals)


def verify_chain(
    progress: Callable[[int, int], None] | None = None, seal_files: Sequence[Path] = ()
) -> tuple[int, Break | None]:
    """Return (rows checked, first break or None)."""
    report = check_chain(progress, seal_files)
    return report.rows, report.broken
