"""对照标准答案: the sandbox's manifest names every injected fault's rows; which rules stand for which fault type,
and how a run's findings compare (precision and recall per fault type). Used by the tests and the run page."""

from __future__ import annotations

from collections.abc import Iterable

from caiwei.sandbox.codes import FAULT_LABELS

from .engine import Rule, find_rule

FAULT_RULES = {
    "indicator_overspent": ["QUOTA-001"],
    "plan_over_indicator": ["QUOTA-003"],
    "carryover_mismatch": ["QUOTA-005"],
    "element_mismatch": ["ELEM-001"],
    "tracking_id_lost": ["ELEM-002"],
    "code_not_in_set": ["CODE-101", "CODE-201", "CODE-301", "CODE-401", "CODE-203"],
    "non_leaf_code": ["CODE-102", "CODE-202", "CODE-302", "CODE-402", "CODE-204"],
    "duplicate_payment": ["DUP-001"],
    "voucher_no_receipt": ["BIZ-001"],
    "paid_not_cleared": ["BIZ-002"],
    "voucher_sign_failed": ["BIZ-003"],
    "bank_amount_mismatch": ["BIZ-005"],
    "same_person_enter_approve": ["BIZ-008"],
    "person_duplicate_id": ["PERSON-001"],
    "person_malformed_id": ["PERSON-002"],
    "pay_item_implausible": ["PERSON-003"],
    "asset_book_date_invalid": ["ASSET-001"],
    "asset_no_duplicate": ["ASSET-002"],
    "asset_vehicle_no_plate": ["ASSET-003"],
    "asset_disposal_conflict": ["ASSET-004"],
    "asset_value_mismatch": ["ASSET-005"],
    # Rules generated from the constraint model (schema_derived): validity of codes on the date of use, the payee
    # master 收款人信息 and what an account kind may receive.
    "disabled_code_used": ["GEN-CODE-031", "GEN-CODE-036", "GEN-CODE-039", "GEN-CODE-044", "GEN-CODE-052"],
    "code_outside_validity": ["GEN-CODE-034", "GEN-CODE-038", "GEN-CODE-042", "GEN-CODE-046"],
    "code_wrong_year": ["GEN-CODE-033", "GEN-CODE-037", "GEN-CODE-041", "GEN-CODE-045", "GEN-CODE-053"],
    "payee_name_mismatch": ["GEN-REF-036"],
    "account_kind_not_allowed": ["GEN-CODE-047"],
    "zero_balance_account_receives": ["GEN-CODE-048"],
    # Master-data semantics 主数据语义 (master_data) and the HR section of the constraint model (GEN-HR).
    "person_status_date_conflict": ["MD-001"],
    "person_age_implausible": ["MD-002"],
    "salary_after_leave": ["MD-003"],
    "salary_run_sum_mismatch": ["MD-006", "GEN-HR-008"],
    "salary_wrong_agency": ["MD-004"],
    "salary_item_off_standard": ["MD-005"],
    "depr_sum_mismatch": ["GEN-HR-009"],
    "depr_non_depreciable": ["MD-007"],
    "depr_after_disposal": ["MD-008"],
    "reg_no_duplicate_in_region": ["MD-010"],
    "card_holder_departed": ["MD-011"],
    # Plan details and indicator adjustments (issue 11 §2), and codes retired this year (multi-year code sets); the
    # chain faults above include the plan details' codes (CODE-203/204, GEN-CODE-052/053).
    "plan_detail_sum_mismatch": ["GEN-FLOW-015"],
    "plan_detail_element_mismatch": ["GEN-REF-039", "GEN-REF-040"],
    "adjustment_not_applied": ["GEN-FLOW-016", "GEN-AMT-025"],
    "transfer_unbalanced": ["GEN-REF-043", "GEN-FLOW-017"],
    "reduction_below_paid": ["GEN-FLOW-019"],
    "adjustment_after_as_of": ["GEN-DATE-018"],
    "code_retired_this_year": [
        "GEN-CODE-060",
        "GEN-CODE-064",
        "GEN-CODE-068",
        "GEN-CODE-072",
        "GEN-CODE-075",
    ],
    # Who acted (level 5) and plausibility against peers and history (level 6).
    "approved_without_role": ["WHO-001", "WHO-002"],
    "admin_handles_business": ["WHO-004", "WHO-005"],
    "shared_operator_signed": ["WHO-006", "WHO-007"],
    "blank_operator": ["WHO-008", "WHO-009"],
    "acts_for_other_agency": ["WHO-010"],
    "amount_extra_digit": ["PLAUS-001"],
    "amount_history_outlier": ["PLAUS-002"],
    # The double-entry ledger, refunds and re-payments (issue 11 §2): the accounting pack and the model's section GL.
    "gl_unbalanced": ["ACC-002"],
    "gl_wrong_side": ["ACC-001"],
    "gl_subject_not_leaf": ["GEN-GL-013"],
    "refund_exceeds_paid": ["GEN-FLOW-009"],
    "refund_after_as_of": ["GEN-GL-010"],
    "repayment_exceeds_refund": ["GEN-GL-022"],
    "ledger_not_tie": ["ACC-003"],
    # Near-duplicates: the payee's name or account written differently, or paid again a few days later.
    "near_duplicate_payment": ["DUP-003", "DUP-004"],
}
# Faults that are not a matter of the finance database's data: bank files (reconciliation) and permissions.
NOT_DATA = {
    "voucher_missing_at_bank",
    "bank_line_no_voucher",
    "bank_returned_not_refunded",
    "bank_failed_line",
    "pboc_clearing_amount",
    "pboc_clearing_missing",
    "admin_two_roles",
    "dormant_account",
    "departed_staff_active",
}


def key_table(rule: Rule) -> str:
    """The table a rule's keys belong to: its outer FROM."""
    return rule.tree.args["from_"].this.name


def findings(results: Iterable[tuple[str, list]]) -> dict[str, set[tuple[str, str]]]:
    """(rule id, keys) pairs → rule id → {(table, first key)}."""
    return {rule_id: {(key_table(find_rule(rule_id)), str(k[0])) for k in keys} for rule_id, keys in results}


def truth(manifest: dict, fault: str | None = None) -> set[tuple[str, str]]:
    return {
        (table, key)
        for f in manifest.get("faults", [])
        if fault is None or f["type"] == fault
        for table, keys in f["rows"].items()
        for key in keys
    }


def compare(manifest: dict, found: dict[str, set[tuple[str, str]]]) -> dict:
    """Per data-matter fault type: rows injected, rows found, hits, precision and recall; and the stray findings
    (rows any rule flagged that no fault names)."""
    rows = []
    for fault, rule_ids in FAULT_RULES.items():
        detected = set().union(*(found.get(r, set()) for r in rule_ids))
        expected = truth(manifest, fault)
        hits = len(detected & expected)
        rows.append(
            {
                "fault": fault,
                "label": FAULT_LABELS.get(fault, fault),
                "rules": rule_ids,
                "expected": len(expected),
                "found": len(detected),
                "hits": hits,
                "precision": hits / len(detected) if detected else None,
                "recall": hits / len(expected) if expected else None,
            }
        )
    everything = truth(manifest)
    stray = {rule: sorted(keys - everything) for rule, keys in found.items() if keys - everything}
    return {"faults": rows, "stray": stray}
