"""Verify the stored chain: stream rows in order, never load the table at once."""

from collections.abc import Callable, Iterator

from .chain import HASHED_FIELDS, Break, verify_rows
from .keys import audit_key
from .models import AuditEvent, AuditHead

CHUNK = 5000


def _rows(progress: Callable[[int, int], None] | None, total: int) -> Iterator[dict]:
    for done, row in enumerate(
        AuditEvent.objects.order_by("seq").values(*HASHED_FIELDS, "hash").iterator(chunk_size=CHUNK), 1
    ):
        if progress and done % CHUNK == 0:
            progress(done, total)
        yield row


def verify_chain(progress: Callable[[int, int], None] | None = None) -> tuple[int, Break | None]:
    """Return (rows checked, first break or None)."""
    total = AuditEvent.objects.count()
    head = AuditHead.objects.filter(pk=1).values_list("seq", "hash").first()
    result = verify_rows(audit_key(), _rows(progress, total), head=head)
    if progress:
        progress(total, total)
    return total, result
