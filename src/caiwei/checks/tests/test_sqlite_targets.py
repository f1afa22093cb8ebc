"""Issue 9, finding 1: a data check must never read the platform's own database (or any of its files).

The attack as reported: a SQLite target named ``file:/…/caiwei.sqlite3?mode=ro&uri=true`` slipped past a guard that
compared spellings, a mapping pointed a logical table at ``django_session``, and the run stored the session keys as
result keys (never masked) — one replayed, one logged in. Here: every spelling of a platform file is refused at save
and again at connect time, a file swapped for a link after it was saved is refused when the run connects, and result
keys are masked by the same classification as samples (including the names the mapping gives the columns).
"""

import json
import os
import sqlite3
from datetime import date
from io import BytesIO
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from django.core.exceptions import ValidationError
from openpyxl import load_workbook

from caiwei.checks import services, sqlitefile
from caiwei.checks.mask import mask_key
from caiwei.checks.models import CheckRun, RuleResult, Target, TargetDatabase
from caiwei.sandbox.generator import GenerateSpec, generate, parse_faults

SESSION_KEY = "q7v2yx0c9m3k8w1r6t4p5n2b7j0h3g9f"
# The reported mapping: PERSON-002 lists rows whose "ID number" is malformed — every session row — keyed on person_id.
MAPPING = {
    "tables": {"person_info": "django_session"},
    "columns": {
        "person_info": {
            "person_id": "session_key",
            "iden_no": "session_data",
            "agency_code": "expire_date",
            "person_name": "session_key",
        }
    },
}


def _sessions(path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE django_session (session_key varchar(40) PRIMARY KEY, session_data text NOT NULL, "
        "expire_date datetime NOT NULL)"
    )
    conn.execute(
        "INSERT INTO django_session VALUES (?, ?, ?)",
        (SESSION_KEY, "eyJfYXV0aF91c2VyX2lkIjoiMSJ9:x", "2099-01-01"),
    )
    conn.commit()
    conn.close()


@pytest.fixture
def layout(tmp_path, settings, monkeypatch):
    """A var/ directory as the platform lays it out: its database (with sessions), the huey file, the keys, the
    sandbox, and var/targets/ (the default SQLite target directory) holding one honest target file."""
    var = tmp_path / "var"
    var.mkdir()
    settings.VAR_DIR = var
    settings.CAIWEI_SQLITE_TARGET_DIR = ""
    settings.CAIWEI_SANDBOX_URL = f"sqlite:///{var / 'sandbox.sqlite3'}"
    settings.HUEY = {
        "huey_class": "huey.SqliteHuey",
        "filename": str(var / "huey.sqlite3"),
        "immediate": True,
    }
    db = var / "caiwei.sqlite3"
    _sessions(db)
    for name in (
        "caiwei.sqlite3-wal",
        "caiwei.sqlite3-shm",
        "huey.sqlite3",
        "vault_key",
        "audit_key",
        "secret_key",
    ):
        (var / name).write_bytes(b"\0" * 64)
    (var / "sandbox.sqlite3").write_bytes(b"")
    targets = sqlitefile.target_dir()
    assert targets == (var / "targets").resolve()
    ok = targets / "ok.sqlite3"
    _sessions(ok)  # an honest target (its own tables; what they are called is the owner's business)
    outside = tmp_path / "elsewhere.sqlite3"
    _sessions(outside)
    fds: list[int] = []
    counter = iter(range(1000))

    def link(source) -> str:
        path = targets / f"link{next(counter)}.sqlite3"
        path.symlink_to(source)
        return str(path)

    def hardlink(source) -> str:
        path = targets / f"hard{next(counter)}.sqlite3"
        os.link(source, path)
        return str(path)

    def fd(source) -> int:
        fds.append(os.open(source, os.O_RDONLY))
        return fds[-1]

    def home(name) -> str:
        monkeypatch.setenv("HOME", str(var))
        return name

    yield SimpleNamespace(
        var=var,
        db=db,
        targets=targets,
        ok=ok,
        outside=outside,
        huey=var / "huey.sqlite3",
        link=link,
        hardlink=hardlink,
        fd=fd,
        home=home,
    )
    for n in fds:
        os.close(n)


PLATFORM = [
    ("plain path", lambda c: str(c.db)),
    ("sqlite:///", lambda c: f"sqlite:///{c.db}"),
    ("sqlite+pysqlite file: uri", lambda c: f"sqlite+pysqlite:///file:{c.db}?uri=true"),
    ("reported file: uri", lambda c: f"file:{c.db}?mode=ro&uri=true"),
    ("file://localhost", lambda c: f"file://localhost{c.db}?mode=ro"),
    ("file: percent-encoded", lambda c: "file:" + quote(str(c.db), safe="").replace(".", "%2E")),
    ("relative", lambda c: "../caiwei.sqlite3"),
    ("relative through a subdirectory", lambda c: "./x/../../caiwei.sqlite3"),
    ("tilde", lambda c: c.home("~/caiwei.sqlite3")),
    ("symlink in targets", lambda c: c.link(c.db)),
    ("symlink to the directory", lambda c: c.link(c.var) + "/caiwei.sqlite3"),
    ("hard link in targets", lambda c: c.hardlink(c.db)),
    ("/proc/self/fd", lambda c: f"/proc/self/fd/{c.fd(c.db)}"),
    ("/dev/fd", lambda c: f"/dev/fd/{c.fd(c.db)}"),
    ("/proc/<pid>/root", lambda c: f"/proc/{os.getpid()}/root{c.db}"),
    ("-wal", lambda c: f"{c.db}-wal"),
    ("-shm", lambda c: f"{c.db}-shm"),
    ("huey", lambda c: str(c.huey)),
    ("huey hard link in targets", lambda c: c.hardlink(c.huey)),
    ("vault_key", lambda c: str(c.var / "vault_key")),
    ("audit_key via a link", lambda c: c.link(c.var / "audit_key")),
    ("secret_key", lambda c: f"file:{c.var / 'secret_key'}"),
    ("var itself", lambda c: str(c.var)),
]
TRICKS = [
    ("outside the target directory", lambda c: str(c.outside)),
    ("a link leading outside", lambda c: c.link(c.outside)),
    ("the target directory itself", lambda c: str(c.targets)),
    ("mode=memory", lambda c: f"file:{c.ok}?mode=memory"),
    ("mode=memory through sqlalchemy", lambda c: f"sqlite:///file:{c.ok}?mode=memory&uri=true"),
    (":memory:", lambda c: ":memory:"),
    ("file::memory:", lambda c: "file::memory:?cache=shared"),
    ("sqlite:// (memory)", lambda c: "sqlite://"),
    ("vfs", lambda c: f"file:{c.ok}?vfs=unix-none"),
    ("immutable", lambda c: f"file:{c.ok}?immutable=1"),
    ("immutable through sqlalchemy", lambda c: f"sqlite+pysqlite:///file:{c.ok}?uri=true&immutable=1"),
    ("mode=rwc creates files", lambda c: f"file:{c.targets / 'new.sqlite3'}?mode=rwc"),
    ("another host", lambda c: f"file://files.example{c.ok}"),
    ("a query on a plain path", lambda c: f"{c.ok}?mode=memory"),
    ("a missing file", lambda c: str(c.targets / "missing.sqlite3")),
    ("a fifo", lambda c: (os.mkfifo(c.targets / "pipe"), str(c.targets / "pipe"))[1]),
    ("empty", lambda c: ""),
    ("a decoded NUL", lambda c: f"file:{c.ok}%00.x"),
    ("a NUL", lambda c: f"{c.ok}\x00"),
]


@pytest.fixture
def target(regions):
    return Target.objects.create(name="越权尝试", system="其他", region=regions["152500000"])


@pytest.fixture
def pm(make_user):
    from caiwei.accounts.roles import Role

    return make_user("t_pm_targets", Role.PROJECT_MANAGER, regions=("152500000",))


@pytest.mark.parametrize("name", [n for n, _ in PLATFORM + TRICKS])
def test_no_spelling_of_a_platform_file_or_trick_is_accepted(name, layout, target, pm):
    """Save (the page, the admin form, the API all come through full_clean) and connect both refuse."""
    value = dict(PLATFORM + TRICKS)[name](layout)
    database = TargetDatabase(target=target, name="x", dialect="sqlite", database=value)
    with pytest.raises(ValidationError) as refused:
        services.save_database(pm, database)
    assert "database" in refused.value.message_dict
    if name in dict(PLATFORM):
        assert "不能把财维自己的数据文件" in refused.value.message_dict["database"][0]
    with pytest.raises(sqlitefile.TargetRefused):
        sqlitefile.engine(value)
    assert not TargetDatabase.objects.exists()


def test_the_platform_database_is_refused_by_inode_even_inside_the_target_directory(
    layout, target, pm, settings
):
    """A misconfiguration puts the platform's database in the target directory: it is still the platform's."""
    inside = layout.targets / "platform.sqlite3"
    _sessions(inside)
    settings.DATABASES = {
        **settings.DATABASES,
        "other": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(inside)},
    }
    with pytest.raises(ValidationError, match="不能把财维自己的数据文件"):
        services.save_database(
            pm,
            TargetDatabase(target=target, name="x", dialect="sqlite", database="platform.sqlite3"),
        )


def test_honest_targets_and_the_sandbox_are_accepted(layout, target, users):
    for i, value in enumerate(
        [
            str(layout.ok),
            "ok.sqlite3",  # relative to the target directory, whatever the working directory
            f"sqlite:///{layout.ok}",
            f"file:{layout.ok}?mode=ro",
            layout.link(layout.ok),  # a link that stays inside the directory
            str(layout.var / "sandbox.sqlite3"),  # registered by `caiwei checks sandbox`
        ]
    ):
        saved = services.save_database(
            users["pm"], TargetDatabase(target=target, name=f"库{i}", dialect="sqlite", database=value)
        )
        assert saved.pk and sqlitefile.resolve(value)[0] in (
            layout.ok,
            (layout.var / "sandbox.sqlite3").resolve(),
        )
    ok, message = services.test_connection(users["pm"], target.databases.get(name="库0"))
    assert ok, message


def test_the_reported_attack_is_refused_on_every_path(layout, target, users, client_for, token_for):
    """``file:…/caiwei.sqlite3?mode=ro&uri=true`` with a mapping onto django_session: refused by the API and the page;
    a row that got in anyway (saved before the check, or written around it) fails when the run connects."""
    name = f"file:{layout.db}?mode=ro&uri=true"
    client, auth = client_for(users["pm"]), token_for(users["pm"])
    response = client.post(
        f"/api/checks/targets/{target.pk}/databases",
        {"name": "会话", "dialect": "sqlite", "database": name, "mapping": MAPPING, "as_of": "2026-12-31"},
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 400, response.content
    assert "不能把财维自己的数据文件" in response.json()["detail"]
    page = client.post(
        f"/checks/targets/{target.pk}/databases/new/",
        {
            "name": "会话",
            "dialect": "sqlite",
            "database": name,
            "timeout_s": "60",
            "read_only": "on",
            "mapping_text": json.dumps(MAPPING),
            "action": "test",
        },
    )
    assert page.status_code == 200 and "不能把财维自己的数据文件" in page.content.decode()
    assert not TargetDatabase.objects.exists()

    planted = TargetDatabase.objects.create(
        target=target, name="会话", dialect="sqlite", database=name, mapping=MAPPING, as_of=date(2026, 12, 31)
    )
    run = services.start_run(users["engineer"], planted, "personnel", inline=True)
    assert run.status == CheckRun.Status.FAILED and "不能把财维自己的数据文件" in run.message
    ok, message = services.test_connection(users["pm"], planted)
    assert not ok and "不能把财维自己的数据文件" in message
    stored = json.dumps(list(RuleResult.objects.values()), default=str, ensure_ascii=False)
    shown = client.get(f"/api/checks/runs/{run.pk}", **auth).content.decode()
    assert SESSION_KEY not in stored + shown


def test_a_target_swapped_for_a_link_after_saving_is_refused_when_the_run_connects(layout, target, users):
    path = layout.targets / "finance.sqlite3"
    generate(
        f"sqlite:///{path}", GenerateSpec(payments=600, seed=3, faults=parse_faults("person_duplicate_id=1"))
    )
    database = services.save_database(
        users["pm"],
        TargetDatabase(
            target=target, name="业务库", dialect="sqlite", database=str(path), as_of=date(2026, 12, 31)
        ),
    )
    assert services.start_run(users["engineer"], database, "personnel", inline=True).status == "done"

    engine = database.engine()  # judged now; the file is swapped before the connection opens
    swap = layout.targets / "swap.tmp"
    swap.symlink_to(layout.db)
    os.replace(swap, path)
    with pytest.raises(sqlitefile.TargetRefused, match="不能把财维自己的数据文件"):
        engine.connect()
    engine.dispose()
    run = services.start_run(users["engineer"], database, "personnel", inline=True)
    assert run.status == "failed" and "不能把财维自己的数据文件" in run.message
    assert services.test_connection(users["pm"], database)[0] is False

    path.unlink()
    os.link(layout.db, path)  # a hard link: the same inode under an allowed name
    run = services.start_run(users["engineer"], database, "personnel", inline=True)
    assert run.status == "failed" and "不能把财维自己的数据文件" in run.message


def test_result_keys_are_masked_like_samples_in_storage_diff_api_and_export(
    layout, target, users, client_for, token_for
):
    """A key column that classifies as secret (here by the name the mapping gives it) is never kept in the clear:
    stored keys, diff keys, the API and the Excel export carry it masked, and two runs still compare."""
    path = layout.targets / "hr.sqlite3"
    generate(
        f"sqlite:///{path}", GenerateSpec(payments=600, seed=4, faults=parse_faults("person_duplicate_id=1"))
    )
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE person_info RENAME COLUMN person_id TO session_key")
    conn.commit()
    duplicated = [
        r[0]
        for r in conn.execute(
            "SELECT session_key FROM person_info WHERE iden_no IN "
            "(SELECT iden_no FROM person_info GROUP BY iden_no HAVING COUNT(*) > 1)"
        )
    ]
    conn.close()
    assert len(duplicated) == 2
    database = services.save_database(
        users["pm"],
        TargetDatabase(
            target=target,
            name="人员库",
            dialect="sqlite",
            database="hr.sqlite3",
            mapping={"columns": {"person_info": {"person_id": "session_key"}}},
            as_of=date(2026, 12, 31),
        ),
    )
    first = services.start_run(users["engineer"], database, "personnel", inline=True)
    second = services.start_run(users["engineer"], database, "personnel", inline=True)
    result = second.results.get(rule_id="PERSON-001")
    assert result.count == 2 and (result.new_count, result.still_count, result.resolved_count) == (0, 2, 0)
    assert all(k[0].startswith("***") and "#" in k[0] for k in result.keys)
    assert all(row["person_id"].startswith("***") for row in result.sample)
    conn = sqlite3.connect(path)  # the duplicate is resolved: the diff names what went away, masked
    conn.execute(
        "UPDATE person_info SET iden_no = '110101199003074578' WHERE session_key = ?", (duplicated[0],)
    )
    conn.commit()
    conn.close()
    third = services.start_run(users["engineer"], database, "personnel", inline=True)
    resolved = third.results.get(rule_id="PERSON-001")
    assert resolved.count == 0 and resolved.resolved_count == 2
    assert sorted(resolved.resolved_keys) == sorted(result.keys)
    client, auth = client_for(users["finance"]), token_for(users["finance"])
    api = client.get(f"/api/checks/results/{result.pk}", **auth).content.decode()
    book = load_workbook(BytesIO(client.get(f"/checks/runs/{second.pk}/export.xlsx").content))
    exported = json.dumps([list(s.values) for s in book.worksheets], default=str, ensure_ascii=False)
    stored = json.dumps(
        list(RuleResult.objects.filter(run__in=[first, second, third]).values()),
        default=str,
        ensure_ascii=False,
    )
    for value in duplicated:
        assert value not in api and value not in exported and value not in stored


def test_key_masking_follows_the_sample_classification():
    assert mask_key("asset_id", "A0001") == "A0001" and mask_key("bgt_id", 42) == 42
    masked = mask_key("person_id", "152501199001011234")  # an ID number by its shape, whatever the column
    assert masked.startswith("152501**********34#") and masked == mask_key("person_id", "152501199001011234")
    assert mask_key("person_id", "152501199001011234") != mask_key("person_id", "152501199001019934")
    assert mask_key("payee_acct_no", "6222021234567890").startswith("6222********7890#")
    assert mask_key("person_id", SESSION_KEY, {"person_id": ("session_key",)}).startswith("******")
    assert SESSION_KEY not in mask_key("session_key", SESSION_KEY)
