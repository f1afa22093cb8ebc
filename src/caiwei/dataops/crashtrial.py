"""Crash trials of data changes: executions and rollbacks run in a child process (``caiwei data change execute|
rollback``) that is killed with SIGKILL — right after a named journal step (``CAIWEI_CHANGE_KILL_AT``) or after a
random delay — then recovery runs and the target table is checked row by row:

- every change is either applied in full, with before-images equal to the rows the predicate selected before, or
  not applied at all (the table exactly as before);
- a rollback either restores exactly the rows of the before-image or leaves the change applied;
- no change or rollback is left 执行中, and no row is lost (the whole table compared, and its checksum).

Used by bench/change_crash.py (hundreds of trials per engine) and by a test (a few kills per engine)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from django.db import connection
from django.utils import timezone

from . import changes as eng
from . import changes_services as services
from .models_changes import ChangeAttempt, ChangeRequest

EXEC_STEPS = ("begin", "connect", "image", "statement", "images", "commit", "committed")
ROLLBACK_STEPS = ("begin", "connect", "check", "restore", "commit", "committed")
TABLE = "crash_acct"


@dataclass
class Tally:
    engine: str
    executions: int = 0
    applied: int = 0
    not_applied: int = 0
    rollbacks: int = 0
    rolled_back: int = 0
    rollback_not_applied: int = 0
    killed: int = 0
    recovered: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.engine}：执行 {self.executions} 次（生效 {self.applied}，未生效 {self.not_applied}），"
            f"回滚 {self.rollbacks} 次（已回滚 {self.rolled_back}，未生效 {self.rollback_not_applied}），"
            f"被杀 {self.killed} 次，恢复判定 {self.recovered} 个，问题 {len(self.problems)} 个"
        )


def make_table(engine: sa.Engine, rows: int) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
        conn.exec_driver_sql(
            f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, payee VARCHAR(40) NOT NULL, "
            "amount DECIMAL(14, 2) NOT NULL, status VARCHAR(12) NOT NULL)"
        )
        table = sa.Table(TABLE, sa.MetaData(), autoload_with=conn)
        conn.execute(
            table.insert(),
            [
                {
                    "id": i,
                    "payee": f"收款人{i}",
                    "amount": Decimal(i % 997) + Decimal("0.10"),
                    "status": "paid",
                }
                for i in range(1, rows + 1)
            ],
        )


def table_rows(engine: sa.Engine) -> dict[int, tuple]:
    with engine.connect() as conn:
        return {r[0]: tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {TABLE} ORDER BY id")}  # noqa: S608


def checksum(rows: dict[int, tuple]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for key in sorted(rows):
        digest.update(repr(rows[key]).encode())
    return digest.hexdigest()


def platform_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _child(
    op: str,
    change: ChangeRequest,
    user,
    kill_at: str | None,
    delay: float | None,
    pause: float,
    fork: bool = False,
) -> tuple[int, bool]:
    """Run ``op`` (execute | rollback) of ``change`` in another process and kill it as told: the command
    (``caiwei data change …``, a fresh interpreter) or, with ``fork``, a fork of this process (no start-up cost)."""
    if fork:
        return _forked(op, change, user, kill_at, delay, pause)
    env = dict(os.environ)
    env["DATABASE_URL"] = platform_url()
    env["PYTHONPATH"] = str(
        Path(__file__).resolve().parents[2]
    )  # this checkout's src, ahead of any installed copy
    env.pop(eng.KILL_ENV, None)
    if kill_at:
        env[eng.KILL_ENV] = kill_at
    if pause:
        env[eng.SLEEP_ENV] = str(pause)
    args = [sys.executable, "-m", "django", "data", "change", op, str(change.pk), "--user", user.username]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = False
    if delay is not None:
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            killed = True
    proc.wait()
    return proc.returncode, killed or proc.returncode == -signal.SIGKILL


def _forked(op, change, user, kill_at, delay, pause) -> tuple[int, bool]:
    from django.db import connections

    from caiwei.audit.context import acting_as

    connections.close_all()  # the child opens its own connections; none is shared across the fork
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.environ.pop(eng.KILL_ENV, None)
            if kill_at:
                os.environ[eng.KILL_ENV] = kill_at
            if pause:
                os.environ[eng.SLEEP_ENV] = str(pause)
            fresh = ChangeRequest.objects.select_related("database", "database__target").get(pk=change.pk)
            with acting_as(user, "crashtrial"):
                if op == "execute":
                    services.execute(user, fresh)
                else:
                    services.rollback(user, fresh)
            code = 0
        finally:
            os._exit(code)
    killed, status = False, None
    if delay is not None:
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
                break
            time.sleep(0.01)
        else:
            os.kill(pid, signal.SIGKILL)
            killed = True
    if status is None:
        _, status = os.waitpid(pid, 0)
    signalled = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return (os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1), killed or signalled


def _approved(database, author, approver, sql: str, k: int) -> ChangeRequest:
    now = timezone.now()
    change = services.create_change(
        database=database, author=author, title=f"崩溃试验 {k}", sql=sql, reason="崩溃试验"
    )
    change = services.save_change(
        author,
        change,
        emergency_plan="停止并恢复",
        rollback_plan="按前镜像回滚",
        window_start=now - timedelta(minutes=5),
        window_end=now + timedelta(hours=6),
    )
    services.submit(author, change)
    from caiwei.audit.context import acting_as

    with acting_as(approver, "crashtrial"):
        return services.decide(approver, change, approve=True)


def _statement(
    rng: random.Random, k: int, rows: dict[int, tuple], next_id: list[int]
) -> tuple[str, callable]:
    """A change and the function giving the rows it should leave from the rows before it."""
    ids = sorted(rows)
    kind = rng.choice(["update"] * 6 + ["delete"] * 2 + ["insert"] * 2)
    if kind == "update" or len(ids) < 50:
        lo = rng.choice(ids[: max(1, len(ids) - 40)])
        hi = lo + rng.randint(20, 250)
        tag = f"c{k}"

        def expect(pre):
            return {i: (r[0], r[1], r[2] + 1, tag) if lo <= i <= hi else r for i, r in pre.items()}

        return (
            f"UPDATE {TABLE} SET amount = amount + 1, status = '{tag}' WHERE id BETWEEN {lo} AND {hi}",  # noqa: S608
            expect,
        )
    if kind == "delete":
        lo = rng.choice(ids)
        hi = lo + rng.randint(0, 15)
        return f"DELETE FROM {TABLE} WHERE id BETWEEN {lo} AND {hi}", lambda pre: {  # noqa: S608
            i: r for i, r in pre.items() if not lo <= i <= hi
        }
    new = list(range(next_id[0], next_id[0] + rng.randint(1, 6)))
    next_id[0] += len(new)
    values = ", ".join(f"({i}, '新增{i}', {i % 50}.55, 'new')" for i in new)

    def expect_insert(pre):
        out = dict(pre)
        out.update({i: (i, f"新增{i}", Decimal(f"{i % 50}.55"), "new") for i in new})
        return out

    return f"INSERT INTO {TABLE} (id, payee, amount, status) VALUES {values}", expect_insert  # noqa: S608


def _attempt(change: ChangeRequest, kind: str) -> ChangeAttempt | None:
    return change.attempts.filter(kind=kind).order_by("-pk").first()


def run(
    database,
    target: sa.Engine,
    author,
    approver,
    *,
    label: str,
    executions: int,
    rollbacks: int,
    seed: int = 1,
    rows: int = 3000,
    kill_steps: tuple[str, ...] | None = None,
    random_kills: bool = True,
    pause: float = 0.15,
    fork: bool = False,
    log=print,
) -> Tally:
    """``executions`` executions (and up to ``rollbacks`` rollbacks right after an applied one), each child killed at
    the next step of ``kill_steps`` in turn, or after a random delay, or not at all."""
    rng = random.Random(seed)
    tally = Tally(label)
    make_table(target, rows)
    next_id = [rows + 1000]
    exec_points = list(kill_steps or EXEC_STEPS)
    rb_points = [s for s in (kill_steps or ROLLBACK_STEPS) if s in ROLLBACK_STEPS] or list(ROLLBACK_STEPS)
    plain_seconds = None
    for k in range(executions):
        pre = table_rows(target)
        sql, expect = _statement(rng, k, pre, next_id)
        change = _approved(database, author, approver, sql, k)
        mode = k % 3 if random_kills else 0
        kill_at, delay = None, None
        if mode == 0:
            kill_at = exec_points[(k // (3 if random_kills else 1)) % len(exec_points)]
        elif mode == 1 and plain_seconds:
            delay = rng.uniform(plain_seconds * 0.6, plain_seconds * 1.1)
        started = time.monotonic()
        _, killed = _child("execute", change, author, kill_at, delay, pause, fork)
        if mode == 2 and not killed:
            plain_seconds = time.monotonic() - started
        tally.executions += 1
        tally.killed += killed
        tally.recovered += len(services.recover())
        change.refresh_from_db()
        _check_execution(tally, change, target, pre, expect(pre), f"执行 {k}（{kill_at or delay or '不杀'}）")
        if change.status == ChangeRequest.Status.DONE:
            tally.applied += 1
        else:
            tally.not_applied += 1
        if (
            change.status == ChangeRequest.Status.DONE
            and tally.rollbacks < rollbacks
            and (not random_kills or rng.random() < max(0.5, rollbacks / max(1, executions) * 2))
        ):
            point = (
                rb_points[tally.rollbacks % len(rb_points)]
                if tally.rollbacks % 2 == 0 or not random_kills
                else None
            )
            rb_delay = (
                None
                if point
                else (rng.uniform(plain_seconds * 0.6, plain_seconds * 1.2) if plain_seconds else None)
            )
            _rollback_trial(
                tally,
                change,
                target,
                author,
                pre,
                point,
                rb_delay,
                pause,
                f"回滚 {k}（{point or rb_delay or '不杀'}）",
            )
        if (k + 1) % 10 == 0:
            log(f"  {label} {k + 1}/{executions}：{tally.line()}")
    return tally


def _rollback_trial(tally, change, target, author, pre, point, delay, pause, where, fork=False) -> None:
    post = table_rows(target)
    _, killed = _child("rollback", change, author, point, delay, pause, fork)
    tally.rollbacks += 1
    tally.killed += killed
    tally.recovered += len(services.recover())
    change.refresh_from_db()
    now = table_rows(target)
    if change.status == ChangeRequest.Status.ROLLED_BACK:
        tally.rolled_back += 1
        if now != pre:
            tally.problems.append(
                f"{where}：已回滚，但表与变更前不同（校验和 {checksum(now)[:12]} ≠ {checksum(pre)[:12]}）"
            )
    elif change.status == ChangeRequest.Status.DONE:
        tally.rollback_not_applied += 1
        if now != post:
            tally.problems.append(f"{where}：回滚未生效，但表已不是变更后的样子")
    else:
        tally.problems.append(f"{where}：停在“{change.get_status_display()}”")
    if ChangeAttempt.objects.filter(change=change, state=ChangeAttempt.State.RUNNING).exists():
        tally.problems.append(f"{where}：仍有进行中的回滚")


def run_rollbacks(
    database, target, author, approver, *, tally: Tally, steps, seed: int = 2, fork: bool = False
) -> Tally:
    """One rollback killed at each of ``steps``, each of a change executed here first (not killed)."""
    rng = random.Random(seed)
    next_id = [10**6]
    for n, point in enumerate(steps):
        pre = table_rows(target)
        sql, _ = _statement(rng, 1000 + n, pre, next_id)
        change = _approved(database, author, approver, sql, 1000 + n)
        services.execute(author, change)
        change.refresh_from_db()
        if change.status != ChangeRequest.Status.DONE:
            tally.problems.append(f"回滚试验 {n}：变更未能执行：{change.status_note}")
            continue
        _rollback_trial(tally, change, target, author, pre, point, None, 0, f"回滚（杀于 {point}）", fork)
    return tally


def _check_execution(tally: Tally, change, target, pre, expected, where: str) -> None:
    now = table_rows(target)
    if ChangeAttempt.objects.filter(change=change, state=ChangeAttempt.State.RUNNING).exists():
        tally.problems.append(f"{where}：仍有进行中的执行")
    if change.status == ChangeRequest.Status.DONE:
        if now != expected:
            tally.problems.append(
                f"{where}：已执行，但表不是预期的结果（校验和 {checksum(now)[:12]} ≠ {checksum(expected)[:12]}）"
            )
        attempt = services.applied_execution(change)
        plan = services.plan_of(change)
        source = services.chunk_source(attempt)
        for st in plan:
            _, before = eng.load_images(source, st, "before")
            selected = {i for i in pre if expected.get(i) != pre[i]} if st.kind != "insert" else set()
            if {k[0] for k in before} != selected or any(before[(i,)] != pre[i] for i in selected):
                tally.problems.append(f"{where}：前镜像不完整或与变更前的行不同")
    elif change.status == ChangeRequest.Status.FAILED or (
        change.status == ChangeRequest.Status.APPROVED and not change.attempts.exists()
    ):  # failed, or killed before it began (still 已批准, no attempt): the table exactly as before
        if now != pre:
            tally.problems.append(f"{where}：未执行，但表已改变（丢失或多出 {len(set(pre) ^ set(now))} 行）")
    else:
        tally.problems.append(f"{where}：停在“{change.get_status_display()}”")
