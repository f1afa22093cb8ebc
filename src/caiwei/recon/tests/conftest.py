"""A small sandbox (generated once per test session) registered as the finance database 演练库, and the accounts
of the reconciliation pages and API: the league's finance staff, engineer and project manager, a bank user of a
bank that has breaks and one of another bank, and a county's finance staff (another region)."""

from __future__ import annotations

from datetime import date

import pytest

from caiwei.accounts.roles import Role
from caiwei.sandbox.generator import GenerateSpec, parse_faults
from caiwei.sandbox.service import run_generate

FAULTS = "voucher_missing_at_bank=1,bank_line_no_voucher=1,bank_amount_mismatch=1"
LEAGUE, COUNTY = "152500000", "152502000"


@pytest.fixture(scope="session")
def recon_var(tmp_path_factory):
    var = tmp_path_factory.mktemp("recon-var")
    run_generate(
        f"sqlite:///{var / 'sandbox.sqlite3'}",
        GenerateSpec(payments=1200, seed=2, faults=parse_faults(FAULTS)),
        manifest=var / "sandbox-manifest.json",
        bank_dir=var / "sandbox-bank-files",
    )
    return var


@pytest.fixture
def recon(recon_var, regions, make_user, settings, tmp_path):
    from caiwei.checks.models import Target, TargetDatabase
    from caiwei.recon.services import ensure_shipped_formats

    settings.VAR_DIR = recon_var
    settings.CAIWEI_SANDBOX_URL = f"sqlite:///{recon_var / 'sandbox.sqlite3'}"
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    ensure_shipped_formats()
    target = Target.objects.create(
        name="演练库", system="国库集中支付", region=regions[LEAGUE], is_sandbox=True
    )
    database = TargetDatabase.objects.create(
        target=target,
        name="业务库",
        dialect="sqlite",
        database=str(recon_var / "sandbox.sqlite3"),
        as_of=date(2026, 12, 31),
    )
    people = {
        "finance": make_user("r_finance", Role.FINANCE_STAFF, regions=(LEAGUE,)),
        "engineer": make_user("r_engineer", Role.ENGINEER, regions=(LEAGUE,)),
        "pm": make_user("r_pm", Role.PROJECT_MANAGER, regions=(LEAGUE,)),
        "approver": make_user("r_approver", Role.FINANCE_APPROVER, regions=(LEAGUE,)),
        "bank": make_user("r_bank", Role.BANK_USER, regions=(LEAGUE,)),
        "other_bank": make_user("r_other_bank", Role.BANK_USER, regions=(LEAGUE,)),
        "county": make_user("r_county", Role.FINANCE_STAFF, Role.ENGINEER, regions=(COUNTY,)),
        "unit": make_user("r_unit", Role.UNIT_USER, regions=(LEAGUE,)),
    }
    return {"database": database, "people": people, "var": recon_var, "region": regions[LEAGUE]}


def set_bank(user, code: str):
    type(user).objects.filter(pk=user.pk).update(bank_code=code)
    user.refresh_from_db()
    return user


PERIOD = {"period_start": "2026-01-01", "period_end": "2026-12-31", "as_of": "2026-12-31"}


_LOADED: dict = {}


@pytest.fixture(autouse=True)
def bank_files_loaded_once(monkeypatch, tmp_path_factory):
    """The sandbox's 600-odd daily bank files are read once per session: later runs over the same files (and
    definitions) take the normalised lines from a Parquet copy — the rest of the run (book, matching, keeping the
    breaks) is done every time."""
    import copy

    from caiwei.recon import services

    real = services.load_bank_files
    folder = tmp_path_factory.getbasetemp() / "recon-bank-cache"
    folder.mkdir(exist_ok=True)

    def load(con, files, work):
        files = list(files)
        key = tuple((str(p), repr(d), b) for p, d, b in files)
        if key in _LOADED and con.execute("SELECT count(*) FROM bank").fetchone()[0] == 0:
            path, loaded = _LOADED[key]
            con.execute("INSERT INTO bank SELECT * FROM read_parquet(?)", [str(path)])
            return copy.deepcopy(loaded)
        loaded = real(con, files, work)
        if len(files) > 20:
            path = folder / f"bank-{len(_LOADED)}.parquet"
            con.execute(f"COPY bank TO '{path}' (FORMAT parquet)")
            _LOADED[key] = (path, copy.deepcopy(loaded))
        return loaded

    monkeypatch.setattr(services, "load_bank_files", load)
