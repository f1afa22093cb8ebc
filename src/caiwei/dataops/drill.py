"""灾难恢复演练的引擎: restore a backup into a scratch database and verify it, timing every step. Plain Python.

The steps: check the backup file against its recorded SHA-256; restore it whole into a scratch database; count the
rows of every table backed up and compare with the counts recorded at backup time; run the data-check packs on the
restored copy (checks/runner.py, counts only); then drop the scratch database. RTO is the time from the start to
the end of verification (the scratch database is dropped after the clock stops); RPO is the age of the backup's
snapshot when the drill started.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .backup import BackupError, Conn, count_rows, verify
from .restore import drop_database, restore_all


@dataclass
class Step:
    name: str
    started_at: datetime
    seconds: float = 0.0
    ok: bool = True
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "started_at": self.started_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "note": self.note,
        }


@dataclass
class DrillOutcome:
    started_at: datetime
    verified_at: datetime | None = None
    steps: list[Step] = field(default_factory=list)
    counts: list[dict] = field(default_factory=list)  # per table: recorded, restored, ok
    checks: list[dict] = field(default_factory=list)  # per rule: id, title, count, error
    error: str = ""

    @property
    def counts_ok(self) -> bool:
        return bool(self.counts) and all(c["ok"] for c in self.counts)

    @property
    def checks_ok(self) -> bool:
        return not any(c["error"] for c in self.checks)

    @property
    def passed(self) -> bool:
        """Restored and every table's count as recorded. Check rules that could not run are reported (a target
        whose schema is not the logical one runs few of them), they do not decide."""
        return not self.error and self.counts_ok

    @property
    def rto_seconds(self) -> float | None:
        if self.verified_at is None:
            return None
        return (self.verified_at - self.started_at).total_seconds()


def run_drill(
    server: Conn,
    backup_path: str,
    sha256: str,
    recorded: dict[str, int],
    scratch: str,
    run_checks: Callable[[str], list[dict]] | None = None,
    log: Callable[[str], None] | None = None,
) -> DrillOutcome:
    """Restore ``backup_path`` into ``scratch`` on ``server`` (SQLite: a file path) and verify it.
    ``run_checks(url)`` runs the data checks on the restored copy and returns one dict per rule."""
    outcome = DrillOutcome(started_at=datetime.now(UTC))
    say = log or (lambda _: None)

    def step(name: str, fn):
        s = Step(name, datetime.now(UTC))
        outcome.steps.append(s)
        say(f"{name}……")
        started = time.perf_counter()
        try:
            result = fn(s)
        except BackupError as exc:
            s.ok, s.note = False, str(exc)
            raise
        finally:
            s.seconds = time.perf_counter() - started
        return result

    restored: Conn | None = None
    try:
        step("校验备份文件（SHA-256）", lambda s: verify(backup_path, sha256))

        def restore(s: Step):
            nonlocal restored
            restored = restore_all(server, backup_path, scratch)
            s.note = f"恢复到临时库 {scratch}"

        step("恢复到临时库", restore)

        def counts(s: Step):
            engine = restored.engine()
            try:
                with engine.connect() as c:
                    now = count_rows(c, restored.dialect, list(recorded))
            except Exception as exc:  # a table missing from the restored copy
                raise BackupError(
                    f"核对行数失败：{str(getattr(exc, 'orig', exc)).splitlines()[0][:300]}"
                ) from exc
            finally:
                engine.dispose()
            for table, expected in recorded.items():
                outcome.counts.append(
                    {
                        "table": table,
                        "recorded": expected,
                        "restored": now[table],
                        "ok": now[table] == expected,
                    }
                )
            bad = [c["table"] for c in outcome.counts if not c["ok"]]
            s.ok = not bad
            s.note = f"{len(recorded)} 张表" + (f"，不一致：{'、'.join(bad)}" if bad else "，全部一致")

        step("核对各表行数", counts)
        if run_checks is not None:

            def checks(s: Step):
                url = restored.url().render_as_string(hide_password=False)
                try:
                    outcome.checks = run_checks(url)
                except Exception as exc:  # noqa: BLE001  (reported, the restore itself is judged by the counts)
                    s.ok, s.note = False, f"数据检查未能运行：{exc}"[:300]
                    return
                errors = sum(1 for c in outcome.checks if c["error"])
                found = sum(1 for c in outcome.checks if c["count"])
                s.note = f"规则 {len(outcome.checks)} 条，发现问题 {found} 条，执行出错 {errors} 条"

            step("在恢复出的库上运行数据检查", checks)
        outcome.verified_at = datetime.now(UTC)
    except BackupError as exc:
        outcome.error = str(exc)
    finally:
        if restored is not None or server.dialect != "sqlite":

            def drop(s: Step):
                drop_database(server, scratch)
                s.note = f"已删除 {scratch}"

            try:
                step("删除临时库", drop)
            except BackupError as exc:
                outcome.error = outcome.error or str(exc)
    return outcome
