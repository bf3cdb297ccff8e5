from knowledge.ingestion import Block, ExtractedDocument, clean_blocks, clean_document
from knowledge.ingestion.clean import normalize_text, remove_page_furniture


def test_full_width_letters_and_digits_become_ascii_but_chinese_punctuation_stays():
    assert normalize_text("ＡＢＣ　１２３，利率为３．５％。（试行）") == "ABC 123，利率为3.5%。（试行）"
    assert normalize_text("ｈｅｌｌｏ！ｗｏｒｌｄ？") == "hello！world？"


def test_whitespace_zero_width_and_ligatures():
    assert normalize_text("  too   many\tspaces\u200b here \u00a0 ") == "too many spaces here"
    assert normalize_text("ﬁnal ofﬁce") == "final office"
    assert normalize_text("中 文 排 版，来自 PDF 的 空格。") == "中文排版，来自 PDF 的空格。"
    assert normalize_text("line one  \n\n\n  line two") == "line one\nline two"


def test_code_keeps_its_indentation():
    assert normalize_text("def f():\n    return  1   \n", code=True) == "def f():\n    return  1"


def test_repeated_headers_footers_and_page_numbers_are_dropped():
    pages = [
        ["Bank of Example — Internal", f"Body text of page {n} about topic {'xyz'[n % 3]}.", f"- {n} -"]
        for n in range(1, 6)
    ]
    pages[2].insert(1, "第 3 页 共 5 页")
    cleaned = remove_page_furniture(pages)
    assert cleaned == [[f"Body text of page {n} about topic {'xyz'[n % 3]}."] for n in range(1, 6)]


def test_header_with_changing_page_number_and_a_line_on_most_pages_are_furniture():
    pages = [[f"Annual Report 2024 · page {n}", f"Unique body {n}", "Shared closing line"] for n in range(1, 4)]
    pages[0][2] = "Different closing"
    cleaned = remove_page_furniture(pages)
    assert all(not any(line.startswith("Annual Report") for line in page) for page in cleaned)
    # "Shared closing line" sits on 2 of 3 pages: that is a majority, so it goes too.
    assert cleaned == [["Unique body 1", "Different closing"], ["Unique body 2"], ["Unique body 3"]]


def test_exact_and_near_duplicate_paragraphs_are_dropped():
    long = "The credit committee reviews every loan above one million yuan before the contract is signed."
    spaced = "The  credit committee reviews every loan above one million yuan before the contract is signed!"
    reworded = "The credit committee reviews every loan above one million yuan before the contract gets signed."
    blocks = [
        Block("heading", "Summary", ["Summary"]),
        Block("paragraph", long, ["Summary"]),
        Block("paragraph", spaced, ["Summary"]),
        Block("paragraph", reworded, ["Summary"]),
        Block("paragraph", "贷款须经信贷委员会审批后方可签订合同，金额超过一百万元的贷款须另行报批。", ["Summary"]),
        Block("paragraph", "贷款须经信贷委员会审批后方可签订合同，金额超过一百万元的贷款须另行报批！", ["Summary"]),
        Block("paragraph", "A different paragraph about deposits and their interest rates in 2024.", ["Summary"]),
        Block("heading", "Summary", ["Summary"]),
        Block("table_row", "| a | 1 |", ["Summary"], table_header="| k | v |\n| --- | --- |"),
        Block("table_row", "| a | 1 |", ["Summary"], table_header="| k | v |\n| --- | --- |"),
        Block("paragraph", "OK", ["Summary"]),
        Block("paragraph", "Ok.", ["Summary"]),
    ]
    texts = [(block.kind, block.text) for block in clean_blocks(blocks)]
    assert texts == [
        ("heading", "Summary"),
        ("paragraph", long),
        ("paragraph", "贷款须经信贷委员会审批后方可签订合同，金额超过一百万元的贷款须另行报批。"),
        ("paragraph", "A different paragraph about deposits and their interest rates in 2024."),
        ("heading", "Summary"),
        ("table_row", "| a | 1 |"),  # table rows are data: repeated rows are kept
        ("table_row", "| a | 1 |"),
        ("paragraph", "OK"),
    ]


def test_similar_but_different_paragraphs_are_kept():
    blocks = [
        Block("paragraph", "Personal loans carry an interest rate of 3.5% for terms up to five years."),
        Block("paragraph", "Business loans carry an interest rate of 4.2% for terms up to ten years."),
    ]
    assert len(clean_blocks(blocks)) == 2


def test_clean_document_rerenders_markdown():
    document = ExtractedDocument(markdown="", blocks=[Block("paragraph", "ＡＢＣ　文本")])
    assert clean_document(document).markdown == "ABC 文本\n"
