import re

import pytest

from knowledge.ingestion import Block, chunk_blocks, tokenizer_counter
from knowledge.ingestion.chunk import split_sentences

CHINESE_SENTENCES = [
    "本行于二〇二四年调整了个人住房贷款的审批流程。",
    "所有贷款申请须先经支行初审！",
    "初审通过后，材料报送分行信贷管理部复核？",
    "复核意见应在五个工作日内反馈；",
    "逾期未反馈的，视为同意。",
] * 6

ENGLISH = (
    "The credit committee meets every Tuesday. It reviews loans above one million yuan! "
    "Does it also review renewals? Yes; renewals follow the same path. "
) * 8


def test_token_counter_uses_the_real_tokenizer_and_counts_unknown_chinese(count_tokens):
    assert count_tokens("Hello world") == 2
    assert count_tokens("贷款审批") == 4
    # Characters outside the vocabulary become [UNK]: still one token each, not zero.
    assert count_tokens("𠀀𠀁") == 2
    assert count_tokens("word " * 1000) == 1000  # no truncation at the model's maximum length


def test_tokenizer_counter_refuses_a_hub_id():
    with pytest.raises(ValueError):
        tokenizer_counter("sentence-transformers/all-MiniLM-L6-v2")


def test_sentence_split_includes_chinese_and_ascii_marks():
    assert split_sentences("第一句。第二句！“第三句？”第四句；Fifth. Sixth is 3.5 long! Seventh?") == [
        "第一句。", "第二句！", "“第三句？”", "第四句；", "Fifth.", "Sixth is 3.5 long!", "Seventh?",
    ]  # fmt: skip


def test_chunks_respect_the_token_limit_with_the_real_tokenizer(count_tokens):
    unbroken = "无标点的超长文本" * 200  # no sentence end at all: cut by tokens
    long_word_run = " ".join(f"token{n}" for n in range(400))
    blocks = [
        Block("heading", "Mixed", ["Mixed"], level=1),
        Block("paragraph", "".join(CHINESE_SENTENCES), ["Mixed"], {"page": 1}),
        Block("paragraph", ENGLISH, ["Mixed"], {"page": 2}),
        Block("paragraph", unbroken, ["Mixed"], {"page": 3}),
        Block("paragraph", long_word_run, ["Mixed"], {"page": 4}),
    ]
    for chunk_tokens, overlap in ((64, 8), (128, 16), (256, 32)):
        chunks = chunk_blocks(blocks, count_tokens=count_tokens, chunk_tokens=chunk_tokens, overlap_tokens=overlap)
        assert len(chunks) > 3
        for index, chunk in enumerate(chunks):
            assert chunk.index == index
            assert chunk.token_count == count_tokens(chunk.text)
            assert 0 < chunk.token_count <= chunk_tokens
            assert chunk.heading_path == ["Mixed"]
        covered = "".join(chunk.text for chunk in chunks)
        for sentence in set(CHINESE_SENTENCES):
            assert sentence in covered


def test_chinese_chunks_end_at_sentence_ends(count_tokens):
    block = Block("paragraph", "".join(CHINESE_SENTENCES), ["规定"], {"page": 2})
    chunks = chunk_blocks([block], count_tokens=count_tokens, chunk_tokens=48, overlap_tokens=0)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.text[-1] in "。！？；"
        assert chunk.position == {"page": 2}
    assert "".join(chunk.text for chunk in chunks) == block.text


def test_overlap_repeats_the_end_of_the_previous_chunk(count_tokens):
    block = Block("paragraph", "".join(CHINESE_SENTENCES), [], {"page": 1})
    chunks = chunk_blocks([block], count_tokens=count_tokens, chunk_tokens=60, overlap_tokens=20)
    assert len(chunks) > 3
    for previous, chunk in zip(chunks, chunks[1:]):
        shared = _shared_prefix_suffix(previous.text, chunk.text)
        assert shared, (previous.text, chunk.text)
        assert count_tokens(shared) <= 20


def test_overlap_of_a_long_sentence_carries_its_tail(count_tokens):
    text = " ".join(f"word{n}" for n in range(300))  # one sentence far over the limit
    chunks = chunk_blocks([Block("paragraph", text)], count_tokens=count_tokens, chunk_tokens=64, overlap_tokens=10)
    for previous, chunk in zip(chunks, chunks[1:]):
        shared = _shared_prefix_suffix(previous.text, chunk.text)
        assert shared and count_tokens(shared) <= 10
        assert chunk.token_count <= 64


def _shared_prefix_suffix(previous: str, text: str) -> str:
    for length in range(min(len(previous), len(text)), 0, -1):
        if previous.endswith(text[:length]):
            return text[:length]
    return ""


def test_chunks_never_span_two_sections_and_keep_heading_paths(count_tokens):
    blocks = [
        Block("heading", "信贷管理办法", ["信贷管理办法"], {"page": 1}, level=1),
        Block("heading", "第一章 总则", ["信贷管理办法", "第一章 总则"], {"page": 1}, level=2),
        Block("paragraph", "为规范贷款管理，制定本办法。", ["信贷管理办法", "第一章 总则"], {"page": 1}),
        Block("heading", "第二章 审批", ["信贷管理办法", "第二章 审批"], {"page": 2}, level=2),
        Block("paragraph", "贷款须经两级审批。", ["信贷管理办法", "第二章 审批"], {"page": 2}),
        Block("paragraph", "审批意见须书面记录。", ["信贷管理办法", "第二章 审批"], {"page": 3}),
    ]
    chunks = chunk_blocks(blocks, count_tokens=count_tokens, chunk_tokens=256, overlap_tokens=32)
    assert [(chunk.text, chunk.heading_path, chunk.position) for chunk in chunks] == [
        (
            # The top heading has no body of its own: it travels with its first subsection.
            "信贷管理办法\n第一章 总则\n为规范贷款管理，制定本办法。",
            ["信贷管理办法", "第一章 总则"],
            {"page": 1},
        ),
        (
            "第二章 审批\n贷款须经两级审批。\n\n审批意见须书面记录。",
            ["信贷管理办法", "第二章 审批"],
            {"page": 2, "end": {"page": 3}},
        ),
    ]


def test_table_chunks_repeat_the_header_row(count_tokens):
    header = "| 产品 | 利率 | 期限 |\n| --- | --- | --- |"
    rows = [
        Block("table_row", f"| 贷款产品{n} | {3 + n / 10:.1f}% | {n}年 |", ["利率表"], {"sheet": "利率表", "row": n + 1}, header)
        for n in range(1, 41)
    ]
    blocks = [Block("heading", "利率表", ["利率表"], {"sheet": "利率表"}, level=1), *rows]
    chunks = chunk_blocks(blocks, count_tokens=count_tokens, chunk_tokens=80, overlap_tokens=0)
    assert len(chunks) > 3
    seen_rows = []
    for number, chunk in enumerate(chunks):
        lines = chunk.text.split("\n")
        body = lines[1:] if number == 0 else lines
        assert lines[0] == "利率表" if number == 0 else True
        assert "\n".join(body[:2]) == header
        assert all(re.fullmatch(r"\| 贷款产品\d+ \| [\d.]+% \| \d+年 \|", line) for line in body[2:])
        assert chunk.token_count <= 80
        first_row = int(re.search(r"贷款产品(\d+)", body[2]).group(1)) + 1
        last_row = int(re.search(r"贷款产品(\d+)", body[-1]).group(1)) + 1
        start = {"sheet": "利率表", "row": first_row} if number else {"sheet": "利率表"}
        end = {"sheet": "利率表", "row": last_row}
        assert chunk.position == (start if start == end else {**start, "end": end})
        seen_rows += body[2:]
    assert seen_rows == [row.text for row in rows]


def test_whole_markdown_table_block_is_split_by_rows_with_header(count_tokens):
    table = "| name | value |\n| --- | --- |\n" + "\n".join(f"| item number {n} | {n * 100} |" for n in range(60))
    block = Block("table", table, ["Data"])
    chunks = chunk_blocks([block], count_tokens=count_tokens, chunk_tokens=64, overlap_tokens=8)
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.text.startswith("| name | value |\n| --- | --- |\n| item number")
        assert chunk.token_count <= 64


def test_list_items_and_paragraphs_are_packed_in_order(count_tokens):
    blocks = [
        Block("paragraph", "Steps to apply:", ["Apply"]),
        Block("list_item", "Fill in the form.", ["Apply"]),
        Block("list_item", "Attach your ID.", ["Apply"]),
        Block("code", "submit --form loan.pdf", ["Apply"]),
    ]
    (chunk,) = chunk_blocks(blocks, count_tokens=count_tokens)
    assert chunk.text == "Steps to apply:\n\nFill in the form.\nAttach your ID.\n\nsubmit --form loan.pdf"


def test_invalid_sizes_are_refused(count_tokens):
    with pytest.raises(ValueError):
        chunk_blocks([], count_tokens=count_tokens, chunk_tokens=64, overlap_tokens=40)
    assert chunk_blocks([], count_tokens=count_tokens) == []
