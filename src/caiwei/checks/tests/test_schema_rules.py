"""The schema_derived pack 由表结构约束生成的规则: committed files equal what the model generates, every rule renders on
the target dialects and respects the scope, a clean sandbox gives no finding on SQLite, PostgreSQL and MariaDB, and on
a faulted sandbox every flagged row is a row of the manifest (precision 1.0)."""

import os
from datetime import date

import pytest
from django.core.management import CommandError, call_command

from caiwei.checks.engine import load_pack, select_rules, shipped_packs
from caiwei.checks.runner import Options, run_url
from caiwei.checks.schema import generate as gen
from caiwei.checks.schema import model as schema_model
from caiwei.checks.sqlplan import Scope, plan, render
from caiwei.checks.truth import compare, findings, key_table, truth
from caiwei.sandbox.generator import GenerateSpec, generate, parse_faults
from caiwei.sandbox.tests.test_generator import SERVER_DB, engine_url

AS_OF = date(2026, 12, 31)
# The server database these tests use; CAIWEI_SCHEMA_TEST_DB lets a session run beside another on the same server.
DB = os.environ.get("CAIWEI_SCHEMA_TEST_DB", f"{SERVER_DB}_schema")


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def server_url(request, tmp_path_factory):
    return engine_url(request.param, DB, tmp_path_factory)


def derived():
    return list(shipped_packs()[gen.PACK].rules)


def test_committed_files_are_what_the_model_generates(tmp_path, monkeypatch):
    call_command("checks", "generate-rules", "--check")  # raises CommandError when they differ
    assert gen.check() == []
    folder = tmp_path / gen.PACK
    assert len(gen.write(folder)) == len(gen.files())
    (folder / "gen-ref-001.yaml").write_text("id: GEN-REF-001\n", encoding="utf-8")
    (folder / "gen-zzz-999.yaml").write_text("id: X\n", encoding="utf-8")
    monkeypatch.setattr(gen, "PACK_DIR", folder)
    with pytest.raises(
        CommandError, match="2 个规则文件与约束模型不一致：gen-ref-001.yaml、gen-zzz-999.yaml"
    ):
        call_command("checks", "generate-rules", "--check")
    call_command("checks", "generate-rules")
    assert gen.check(folder) == [] and not (folder / "gen-zzz-999.yaml").exists()


def test_the_pack_loads_with_every_kind_and_renders_on_every_dialect():
    pack = load_pack(gen.PACK_DIR)
    assert pack.title == "由表结构约束生成的规则"
    kinds = {r.id.split("-")[1] for r in pack.rules}
    sections = {kind for kind, _ in schema_model.MODEL.sections if kind}
    assert kinds == {"REF", "KEY", "AMT", "DATE", "CODE", "FLOW"} | sections
    assert {r.id for r in pack.rules} <= {r.id for r in select_rules("all")}
    scope = Scope(regions=("152500000",), year=2026, date_from=date(2026, 3, 1), date_to=date(2026, 3, 31))
    for rule in pack.rules:
        assert "请勿手工修改" in (gen.PACK_DIR / f"{rule.id.lower()}.yaml").read_text(encoding="utf-8")
        planned = plan(rule, as_of=AS_OF, scope=scope)
        where = planned.tree.args["where"].sql()
        for column in rule.scope.values():
            assert column in where, rule.id  # the scope reaches the rule's outer WHERE
        for dialect in ("sqlite", "postgresql", "mysql", "oracle"):
            assert render(planned.tree, dialect).startswith("SELECT"), (rule.id, dialect)


def test_clean_sandbox_gives_no_finding_and_faults_only_manifest_rows(server_url):
    rules = derived()
    generate(server_url, GenerateSpec(payments=4000, seed=4))
    clean = run_url(server_url, rules, Options(as_of=AS_OF))
    assert [(o.rule.id, o.count, o.error, o.keys[:3]) for o in clean if o.count or o.error] == []

    manifest = generate(
        server_url, GenerateSpec(payments=8000, seed=21, faults=parse_faults("all=2"))
    ).as_dict()
    outcomes = run_url(server_url, rules, Options(as_of=AS_OF))
    assert [o.error for o in outcomes if o.error] == []
    found = findings((o.rule.id, o.keys) for o in outcomes)
    assert compare(manifest, found)["stray"] == {}  # precision 1.0: every flagged row is a manifest row
    flagged = set().union(*found.values())
    # The structural faults of the injector are found by the generated rules alone (recall on those types).
    for fault in (
        "code_not_in_set",
        "non_leaf_code",
        "indicator_overspent",
        "plan_over_indicator",
        "carryover_mismatch",
        "element_mismatch",
        "tracking_id_lost",
        "asset_book_date_invalid",
        "asset_value_mismatch",
        "salary_run_sum_mismatch",
        "depr_sum_mismatch",
    ):
        expected = truth(manifest, fault)
        assert expected and expected <= flagged, fault
    assert (
        {key_table(o.rule) for o in outcomes if o.count}
        <= {
            "ba_bgt_info",
            "pay_plan_voucher",
            "pay_voucher",
            "gl_voucher",
            "ba_bgt_carryovers",
            "asset_card",
            "pay_salary_run",
            "pay_plan_detail",
            "ba_bgt_adjust",
            "pay_voucher_bill",  # a blank voucher sender (blank_operator) is no system user (GEN-REF-019); refund_exceeds_paid
            "gl_voucher_line",  # gl_subject_not_leaf
            "pay_back_info",  # refund_after_as_of, repayment_exceeds_refund
        }
    )
