"""The check engine on the sandbox (groundwork for issue 5): rules written once, run on SQLite, PostgreSQL and
MariaDB, and their failing keys equal the sandbox's ground truth."""

from pathlib import Path

import pytest
import sqlalchemy as sa

from caiwei.checks.engine import RuleError, load_pack, load_rule, run_rule
from caiwei.sandbox.generator import GenerateSpec, generate, parse_faults
from caiwei.sandbox.tests.test_generator import db_url  # noqa: F401  (the three real databases)

PACK = Path(__file__).resolve().parent.parent / "rules" / "sandbox"
TRUTH = {
    "QUOTA-001": ("indicator_overspent", "ba_bgt_info"),
    "ELEM-001": ("element_mismatch", "pay_voucher"),
    "BIZ-002": ("voucher_no_receipt", "pay_voucher_bill"),
}


def test_rules_find_exactly_the_injected_faults(db_url):  # noqa: F811
    manifest = generate(
        db_url,
        GenerateSpec(
            payments=3000,
            seed=21,
            faults=parse_faults("indicator_overspent=2,element_mismatch=2,voucher_no_receipt=2"),
        ),
    )
    engine = sa.create_engine(db_url)
    try:
        for rule in load_pack(PACK):
            fault, table = TRUTH[rule.id]
            result = run_rule(engine, rule)
            assert {k[0] for k in result.keys} == set(manifest.keys(fault, table)), rule.id
            assert result.count == len(result.keys) == 2
    finally:
        engine.dispose()


def test_transpiled_for_every_dialect():
    rule = load_rule(PACK / "overdue_receipt.yaml")
    assert "CAST(:cutoff AS DATE)" in rule.render("postgresql")
    for dialect in ("sqlite", "mysql", "oracle"):
        assert "pay_bank_receipt" in rule.render(dialect)
    with pytest.raises(RuleError, match="不支持"):
        rule.render("db2")


def test_bad_rule_files_are_named(tmp_path):
    (tmp_path / "a.yaml").write_text("id: X\ntitle: t\n", encoding="utf-8")
    with pytest.raises(RuleError, match="a.yaml：缺少字段"):
        load_rule(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text(
        "id: X\ntitle: t\nseverity: 一般\nmodule: m\nkey: k\nsql: SELEKT 1\n", encoding="utf-8"
    )
    with pytest.raises(RuleError, match="b.yaml：SQL 无法解析"):
        load_rule(tmp_path / "b.yaml")
