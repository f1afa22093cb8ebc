"""A near-duplicate finding as people and programs read it: both payments on the result page, side by side, and in
the API's findings, field by field; the rule's parameters on the rules page."""

import re

import pytest

from caiwei.checks import services
from caiwei.checks.engine import find_rule
from caiwei.checks.tests.test_app import sandbox, target_db  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def test_the_api_and_the_page_carry_both_payments(target_db, users, client_for, token_for):  # noqa: F811
    run = services.start_run(users["engineer"], target_db, "duplicate_payment", inline=True)
    result = run.results.get(rule_id="DUP-003")
    assert result.count == 1
    row = result.sample[0]
    rule = find_rule("DUP-003")
    client = client_for(users["finance"])
    full = client.get(f"/api/checks/results/{result.pk}", **token_for(users["finance"])).json()
    [pair] = full["pairs"]
    assert pair["key"] == [row["pay_app_id"], row["first_pay_app_id"]] == result.keys[0]
    fields = {f["name"]: f for f in pair["fields"]}
    for second, first in rule.pair.items():  # every paired column, both sides, as the sample holds them
        assert (fields[second]["first"], fields[second]["second"]) == (row[first], row[second])
    assert (
        fields["payee_acct_name"]["differs"] and not fields["pay_app_id"]["differs"]
    )  # ids differ by nature
    assert fields["pay_amt"]["same_row"] and fields["pay_amt"]["first"] == row["pay_amt"]
    assert (
        "pairs"
        not in client.get(
            f"/api/checks/results/{run.results.get(rule_id='DUP-001').pk}", **token_for(users["finance"])
        ).json()
    )

    page = client.get(f"/checks/results/{result.pk}/").content.decode()
    table = page[page.index('id="pairs"') :]
    table = table[: table.index("</table>")]
    assert re.search(r"<th>第一笔</th><th>第二笔</th>", table)
    name_row = re.search(r'<tr data-field="payee_acct_name" data-differs[^>]*>(.*?)</tr>', table, re.S).group(
        1
    )
    cells = re.findall(r'<td class="cw-wrap" data-side="(first|second)">(.*?)</td>', name_row, re.S)
    assert cells == [("first", row["first_payee_acct_name"]), ("second", row["payee_acct_name"])]
    assert "不同" in name_row and "每对只计报出的第二笔" in page


def test_the_rules_page_lists_the_normaliser_parameters(users, client_for):
    page = client_for(users["finance"]).get("/checks/rules/").content.decode()
    block = page[page.index("DUP-003") :]
    block = block[: block.index("DUP-004")]
    assert "申请日期最多相差的天数 = 7" in block and "比较时去掉的前缀（用、分隔） = （无）" in block
    assert "DUP-003.suffixes=值" in block
