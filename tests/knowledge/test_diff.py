import json

import pytest

from knowledge.diff import diff_texts, render_inline_html, render_side_by_side_html, tokenize


def _sides(diff):
    old = "".join(text for op, text in diff["inline"] if op != "insert")
    new = "".join(text for op, text in diff["inline"] if op != "delete")
    return old, new


def _changed_words(segments, op):
    return [text for kind, text in segments if kind == op]


def test_tokenize_keeps_every_character():
    text = "Hello, world!  今天天气很好。\n价格 3.5% 上涨\t"
    assert "".join(tokenize(text)) == text


def test_tokenize_cuts_chinese_into_words_and_english_into_words():
    tokens = tokenize("我们去公园 and the park")
    assert "公园" in tokens
    assert "我们" in tokens
    assert "park" in tokens
    assert " " in tokens  # blanks are tokens of their own


@pytest.mark.parametrize(
    "old,new",
    [
        ("", ""),
        ("", "new text"),
        ("old text", ""),
        ("a\nc", "a\nb\nc"),
        ("a", "a\n"),
        ("a\n\n", "a\n"),
        ("line\r\nwindows", "line\nwindows"),
        ("今天天气很好，我们去公园。\nHello world", "今天天气不好，我们去商场。\nHello brave world\n"),
    ],
)
def test_inline_reassembles_both_texts(old, new):
    diff = diff_texts(old, new)
    assert _sides(diff) == (old.replace("\r\n", "\n"), new.replace("\r\n", "\n"))
    json.dumps(diff)  # served as is by the API


def test_english_word_level():
    diff = diff_texts("The quick brown fox jumps.", "The quick red fox jumps high.")
    assert _changed_words(diff["inline"], "delete") == ["brown"]
    assert _changed_words(diff["inline"], "insert") == ["red", " high"]
    assert diff["stats"]["words_removed"] == 1
    assert diff["stats"]["words_added"] == 2


def test_chinese_word_level_marks_whole_words_not_the_whole_line():
    diff = diff_texts("我们明天去公园散步。", "我们明天去商场购物。")
    deleted = _changed_words(diff["inline"], "delete")
    inserted = _changed_words(diff["inline"], "insert")
    assert "".join(deleted) == "公园散步"
    assert "".join(inserted) == "商场购物"
    # the unchanged words stay unchanged
    assert ["equal", "我们明天去"] in diff["inline"]


def test_mixed_chinese_english_numbers():
    diff = diff_texts("贷款利率为 3.5%，期限 12 个月。", "贷款利率为 4.0%，期限 24 个月。")
    assert set(_changed_words(diff["inline"], "delete")) <= {"3.5%", "3.5", "12"}  # numbers stay whole
    assert "贷款" not in "".join(_changed_words(diff["inline"], "delete"))


def test_side_by_side_rows_pair_changed_lines_with_highlights():
    diff = diff_texts("title\nkeep\nold line here\n", "title\nkeep\nnew line here\nadded\n")
    kinds = [row["kind"] for row in diff["rows"]]
    assert kinds == ["equal", "equal", "replace", "insert"]
    replace = diff["rows"][2]
    assert (replace["old_no"], replace["new_no"]) == (3, 3)
    assert replace["old"] == [["delete", "old"], ["equal", " line here"]]
    assert replace["new"] == [["insert", "new"], ["equal", " line here"]]
    insert = diff["rows"][3]
    assert insert["old"] is None and insert["new"] == [["insert", "added"]]


def test_unchanged_texts():
    diff = diff_texts("same\ntext", "same\ntext")
    assert diff["stats"]["changed"] is False
    assert all(row["kind"] == "equal" for row in diff["rows"])


def test_context_collapses_far_unchanged_lines():
    old = "\n".join(f"line {i}" for i in range(50))
    new = old.replace("line 25", "line twenty-five")
    rows = diff_texts(old, new, context=2)["rows"]
    assert [row["kind"] for row in rows] == ["skip", "equal", "equal", "replace", "equal", "equal", "skip"]
    assert rows[0]["count"] == 23 and rows[-1]["count"] == 22


def test_rendering_escapes_everything():
    payload_old = "<script>alert(1)</script>"
    payload_new = '<img src=x onerror="alert(2)"> & "quotes"'
    diff = diff_texts(payload_old, payload_new)
    for html in (render_inline_html(diff), render_side_by_side_html(diff, old_label="<b>v1</b>", new_label="v2")):
        assert "<script" not in html
        assert "<img" not in html
        assert "<b>v1" not in html
        assert "&lt;script&gt;" in html or "&lt;" in html
    inline = render_inline_html(diff)
    assert '<del class="diff-delete">' in inline and '<ins class="diff-insert">' in inline


def test_side_by_side_html_has_one_row_per_line():
    html = render_side_by_side_html(diff_texts("a\nb\nc", "a\nB\nc"))
    assert html.count("<tr") == 3
    assert 'class="diff-row-replace"' in html
