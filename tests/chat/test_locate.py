"""A citation's character span is found in the version text even where cleaning changed the markup."""

from chat.pipeline import locate

VERSION = ("# 个人贷款审批流程\n\n1. 客户经理收集申请材料：身份证、收入证明、征信报告。\n"
           "2. 风险经理审核材料，评估还款能力，**债务收入比不得超过 50%**。\n"
           "3. 金额在 30 万元以下的贷款由支行行长审批；超过 30 万元的报分行信贷委员会。\n\n# 其他\n\n无关内容。\n")
CHUNK = ("个人贷款审批流程\n客户经理收集申请材料：身份证、收入证明、征信报告。\n"
         "风险经理审核材料，评估还款能力，**债务收入比不得超过 50%**。\n"
         "金额在 30 万元以下的贷款由支行行长审批；超过 30 万元的报分行信贷委员会。")


def test_the_span_of_a_chunk_whose_list_and_heading_markup_was_cleaned():
    start, end = locate(CHUNK, VERSION)
    assert VERSION[start:end].startswith("个人贷款审批流程")
    assert VERSION[start:end].endswith("报分行信贷委员会。")
    assert "其他" not in VERSION[start:end]


def test_an_exact_chunk_and_an_unrelated_one():
    assert locate("Loan applications", "# Loans\n\nLoan applications need approval.") == (9, 26)
    assert locate("完全不同的文字内容在这里", "# Loans\n\nLoan applications need approval.") == (0, 0)
