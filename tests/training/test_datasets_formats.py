import json

from training.datasets.formats import parse_upload


def jsonl(*records):
    return "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records).encode()


def errors_of(result):
    return [(e.line, e.field, e.reason) for e in result.errors]


def test_alpaca_jsonl_with_system_and_input():
    result = parse_upload("a.jsonl", jsonl(
        {"instruction": "翻译", "input": "hello", "output": "你好", "system": "你是翻译"},
        {"instruction": "Say hi", "output": "Hi"},
    ))
    assert result.ok and result.format == "alpaca"
    assert result.payloads[0]["messages"] == [
        {"role": "system", "content": "你是翻译"},
        {"role": "user", "content": "翻译\n\nhello"},
        {"role": "assistant", "content": "你好"},
    ]
    assert result.payloads[1]["messages"][0] == {"role": "user", "content": "Say hi"}


def test_every_error_is_reported_per_row_with_line_and_field():
    result = parse_upload("bad.jsonl", jsonl(
        {"instruction": "ok", "output": "fine"},
        "{not json",
        {"instruction": "", "output": "x"},
        "",
        {"instruction": "q", "output": 5},
        '["a list"]',
        {"instruction": "q"},
    ))
    assert not result.ok
    assert errors_of(result) == [
        (2, "-", result.errors[0].reason),
        (3, "instruction", "missing or empty"),
        (5, "output", "must be text, got int"),
        (6, "-", "each row must be a JSON object"),
        (7, "output", "missing or empty"),
    ]
    assert result.errors[0].reason.startswith("invalid JSON")


def test_sharegpt_and_openai_multi_turn_and_their_errors():
    good = {"conversations": [
        {"from": "system", "value": "be brief"}, {"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"},
        {"from": "human", "value": "again"}, {"from": "gpt", "value": "hello again"},
    ]}
    result = parse_upload("c.jsonl", jsonl(good))
    assert result.ok and [m["role"] for m in result.payloads[0]["messages"]] == [
        "system", "user", "assistant", "user", "assistant"]
    bad = parse_upload("c.jsonl", jsonl(
        good,
        {"conversations": [{"from": "robot", "value": "x"}, {"from": "gpt", "value": ""}]},
        {"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]},
        {"conversations": []},
    ))
    assert errors_of(bad) == [
        (2, "conversations[1].from", "unknown role 'robot' (expected one of assistant, gpt, human, system, user)"),
        (2, "conversations[2].value", "missing or empty"),
        (3, "conversations", "the conversation must end with an assistant message"),
        (3, "conversations", "user and assistant turns must alternate"),
        (4, "conversations", "must be a non-empty list of messages"),
    ]
    openai = parse_upload("o.jsonl", jsonl(
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "rejected": "bad"},
        {"messages": [{"role": "assistant", "content": "a"}]},
    ))
    assert errors_of(openai) == [(2, "messages", "the conversation must start with a user message")]
    ok = parse_upload("o.jsonl", jsonl(openai_row := {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "rejected": "bad"}))
    assert ok.payloads[0]["rejected"] == "bad" and openai_row


def test_csv_qa_and_alpaca_with_line_numbers_and_gbk():
    text = 'question,answer\n"多行\n问题",答案\n,missing question\nq3,a3,extra\n'
    result = parse_upload("qa.csv", text.encode("gb18030"))
    assert result.format == "qa"
    assert errors_of(result) == [(4, "question", "missing or empty"), (5, "-", "more values than header columns")]
    good = parse_upload("qa.csv", "question,answer,context\n为什么,因为,背景\n".encode())
    assert good.ok and good.payloads[0]["messages"][0]["content"] == "背景\n\n为什么"
    assert parse_upload("x.csv", b"foo,bar\n1,2\n").errors[0].line == 1


def test_unusable_files():
    assert parse_upload("x.txt", b"a").errors[0].reason == "Upload a .jsonl or .csv file."
    assert parse_upload("x.jsonl", b"\n\n").errors[0].reason == "The file has no rows."
    assert parse_upload("x.jsonl", b"\x00\x01binary").errors[0].reason == "The file is binary, not text."
    explicit = parse_upload("x.jsonl", jsonl({"question": "q", "answer": "a"}), fmt="alpaca")
    assert [e.field for e in explicit.errors] == ["instruction", "output"]


def test_attacker_inputs_are_row_errors_not_crashes():
    deep = "[" * 100000 + "]" * 100000
    nul = json.dumps({"instruction": "a\u0000b", "output": "x"})
    nul_msg = json.dumps({"messages": [{"role": "user", "content": "q\u0000"}, {"role": "assistant", "content": "a"}]})
    html = json.dumps({"instruction": "<script>alert(1)</script>", "output": "<img src=x onerror=alert(1)>"})
    result = parse_upload("x.jsonl", jsonl(deep, nul, html))
    assert errors_of(result) == [(1, "-", "invalid JSON: nested too deeply"), (2, "instruction", "contains a NUL character")]
    assert errors_of(parse_upload("m.jsonl", jsonl(nul_msg))) == [(1, "messages[1].content", "contains a NUL character")]
    markup = parse_upload("h.jsonl", jsonl(html))
    assert markup.ok and markup.payloads[0]["messages"][0]["content"] == "<script>alert(1)</script>"  # kept; escaped on pages
    huge_field = "question,answer\n" + "q," + "x" * 200_000 + "\n"
    csv_result = parse_upload("big.csv", huge_field.encode())
    assert csv_result.errors and csv_result.errors[0].reason.startswith("invalid CSV")
    assert parse_upload("a.json", ("[" * 100000).encode()).errors[0].reason.startswith("invalid JSON")
