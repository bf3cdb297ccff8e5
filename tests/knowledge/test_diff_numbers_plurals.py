"""Issue 12: diffs keep numbers whole (4.35 → 3.85 is one change) and counts are pluralized in
both languages ("1 unchanged line")."""

import pytest
from django.urls import reverse

from knowledge import services
from knowledge.diff import diff_texts, tokenize
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory, published_document


def _changes(old: str, new: str) -> list[tuple[str, str]]:
    return [(op, text) for op, text in diff_texts(old, new)["inline"] if op != "equal"]


@pytest.mark.parametrize("old,new,removed,added", [
    ("The rate is 4.35% a year.", "The rate is 3.85% a year.", "4.35%", "3.85%"),
    ("贷款年利率为4.35%。", "贷款年利率为3.85%。", "4.35%", "3.85%"),
    ("Limit: 1,000,000 yuan.", "Limit: 2,500,000 yuan.", "1,000,000", "2,500,000"),
])
def test_a_changed_number_is_one_change(old, new, removed, added):
    assert _changes(old, new) == [("delete", removed), ("insert", added)]


def test_tokens_still_join_to_the_text():
    text = "v2 of 3rd rule: 4.35%, 12:30, 2024年3月 rate 3.85."
    assert "".join(tokenize(text)) == text


@pytest.mark.parametrize("language,one,many", [
    ("en", "1 unchanged line", "5 unchanged lines"),
    ("zh-hans", "1 行未变化", "5 行未变化"),
])
def test_unchanged_line_counts_are_pluralized(credit, people, language, one, many):
    kb = KnowledgeBaseFactory(department=credit)
    manager = people["credit_manager"]
    lines = [f"line {n}" for n in range(1, 18)]
    old = "\n".join(lines) + "\n"
    # change lines 5 and 17: 1 unchanged line before the first change's context, 5 between
    new_lines = list(lines)
    new_lines[4] = "line five"
    new_lines[16] = "line seventeen"
    doc = published_document(kb, manager, people["credit_reviewer"], content=old)
    services.document_version_create(
        actor=manager, document=doc, content="\n".join(new_lines) + "\n", base_version_number=1, change_note="n"
    )
    page = login(manager).get(
        reverse("knowledge:diff", args=[doc.pk]) + "?a=1&b=2", HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()
    assert one in page and many in page
    if language == "en":
        assert "1 unchanged lines" not in page
        assert "2 words added," in page and "2 words removed." in page
