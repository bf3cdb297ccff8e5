import pytest

from knowledge.ingestion import extract_entities
from knowledge.ingestion.entities import chinese_number


def found(text: str, kind: str) -> list[tuple]:
    return [(entity["text"], entity["value"]) for entity in extract_entities(text) if entity["type"] == kind]


def test_offsets_point_at_the_text():
    text = "On March 1, 2024 招商银行股份有限公司 paid ¥1,200 (3.5%)."
    entities = extract_entities(text)
    assert [entity["type"] for entity in entities] == ["date", "organization", "amount", "percentage"]
    for entity in entities:
        assert text[entity["start"] : entity["end"]] == entity["text"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("签署日期：2024-03-01。", [("2024-03-01", "2024-03-01")]),
        ("于2024年3月1日生效", [("2024年3月1日", "2024-03-01")]),
        ("二〇二四年三月一日发布", [("二〇二四年三月一日", "2024-03-01")]),
        ("自2024年12月起", [("2024年12月", "2024-12")]),
        ("Signed on March 1, 2024 and 1 Apr 2024.", [("March 1, 2024", "2024-03-01"), ("1 Apr 2024", "2024-04-01")]),
        ("Invalid 2024-02-30 is skipped", []),
    ],
)
def test_dates(text, expected):
    assert found(text, "date") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("费用¥1,200", [("¥1,200", {"amount": 1200.0, "currency": "CNY"})]),
        ("补贴1.2万元", [("1.2万元", {"amount": 12000.0, "currency": "CNY"})]),
        ("raised $3.5 million", [("$3.5 million", {"amount": 3_500_000.0, "currency": "USD"})]),
        ("fee of RMB 500", [("RMB 500", {"amount": 500.0, "currency": "CNY"})]),
        ("贷款三千万元", [("三千万元", {"amount": 30_000_000.0, "currency": "CNY"})]),
        ("营收5亿美元", [("5亿美元", {"amount": 500_000_000.0, "currency": "USD"})]),
        ("100 employees", []),
    ],
)
def test_amounts(text, expected):
    assert found(text, "amount") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("增长3.5%", [("3.5%", 3.5)]),
        ("下降１２％", [("１２％", 12.0)]),
        ("上调百分之五", [("百分之五", 5.0)]),
        ("占比百分之十二点五", [("百分之十二点五", 12.5)]),
        ("a 7 percent rise", [("7 percent", 7.0)]),
    ],
)
def test_percentages(text, expected):
    assert found(text, "percentage") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("本公司与招商银行股份有限公司签订协议", ["招商银行股份有限公司"]),
        ("中国银行和工商银行均已上调利率", ["中国银行", "工商银行"]),
        ("由人力资源部负责全部解释工作", ["人力资源部"]),
        ("国家金融监督管理总局发布通知", ["国家金融监督管理总局"]),
        ("根据中国人民银行的规定", ["中国人民银行"]),
        ("证券监督管理委员会批准", ["证券监督管理委员会"]),
        ("Apple Inc. and Deutsche Bank AG", ["Apple Inc.", "Deutsche Bank AG"]),
        ("The Ministry of Finance met the Bank of China.", ["Ministry of Finance", "Bank of China"]),
        ("Acme Holdings Ltd. signed", ["Acme Holdings Ltd."]),
        ("该银行表示，本公司同意。", []),
    ],
)
def test_organizations(text, expected):
    assert [name for name, _ in found(text, "organization")] == expected


def test_chinese_numbers():
    assert chinese_number("二〇二四") == 2024
    assert chinese_number("三千五百") == 3500
    assert chinese_number("十二") == 12
    assert chinese_number("两亿三千万") == 230_000_000
    assert chinese_number("五点五") == 5.5
