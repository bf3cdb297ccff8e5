"""What counts as a conflict, in both languages and both scripts (the extraction library)."""

import pytest

from health.facts import extract_facts, find_conflicts

pytestmark = pytest.mark.django_db  # the tokenizer reads settings


def conflicts(a: str, b: str):
    return find_conflicts(extract_facts(a, chunk=1, document=1) + extract_facts(b, chunk=2, document=2))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The personal loan interest rate is 4.35%.", "個人貸款利率為3.85%。"),
        ("个人贷款利率为4.35%。", "Personal loans carry an interest rate of 3.85 percent."),
        ("The new policy takes effect on January 1, 2025.", "新政策于2025年3月1日生效。"),
        ("The hotel cap for first-tier cities is 800 yuan per night.", "一线城市住宿上限每晚600元。"),
        ("报销上限为5万元。", "The reimbursement limit is RMB 30,000."),
        ("Probation lasts 3 months.", "试用期为六个月。"),
    ],
)
def test_different_values_for_the_same_thing_conflict(a, b):
    found = conflicts(a, b)
    assert len(found) == 1
    assert found[0].a.value != found[0].b.value


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # the same fact in other words
        ("The personal loan interest rate is 4.35%.", "Personal loans carry an interest rate of 4.35 percent."),
        # another unit or notation
        ("The reimbursement limit is 50,000 元.", "报销上限为5万元。"),
        ("个人贷款利率为百分之十。", "The personal loan interest rate is 10%."),
        ("Probation lasts 3 months.", "试用期为90天。"),
        # the other script
        ("個人貸款利率為4.35%。", "个人贷款利率为4.35%。"),
        # two different things with different values
        ("The hotel cap for first-tier cities is 800 yuan per night.", "其他城市住宿上限每晚500元。"),
        ("The personal loan interest rate is 4.35%.", "The mortgage interest rate is 3.85%."),
        ("The meal allowance is 100 元 per day.", "The hotel cap is 600 元 per night."),
    ],
)
def test_the_same_fact_or_different_things_do_not_conflict(a, b):
    assert conflicts(a, b) == []


def test_two_caps_in_one_sentence_keep_their_own_subjects():
    text = "Hotel cap for first-tier cities is 800 yuan per night, for other cities 500 yuan per night."
    other = "一线城市住宿上限每晚800元；其他城市住宿上限每晚450元。"
    found = conflicts(text, other)
    assert [(p.a.value, p.b.value) for p in found] == [("500", "450")]


def test_an_answer_borrows_the_subject_of_its_question():
    faq = "Q: What is the hotel cap in first-tier cities?\nA: 800 yuan per night."
    policy = "一线城市住宿上限每晚900元。"
    assert len(conflicts(faq, policy)) == 1


def test_values_are_highlighted_where_they_are_written():
    text = "個人貸款利率為3.85%。"
    (fact,) = extract_facts(text)
    assert text[fact.start:fact.end] == "3.85%"
