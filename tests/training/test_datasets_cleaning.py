import pytest

from training.datasets.cleaning import CleaningOptions, clean
from training.datasets.pii import id_number_valid, luhn_valid, mask_pii
from training.services_datasets import DatasetOperationError, dataset_clean, dataset_create, dataset_version_create


def qa(q, a, rejected=""):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], "rejected": rejected}


def with_check_digit(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights)) % 11]


def test_resident_id_check_digit():
    valid = with_check_digit("11010519491231002")
    assert valid.endswith("X") and id_number_valid(valid) and id_number_valid(valid.lower())
    assert not id_number_valid(valid[:-1] + "1")  # wrong check digit
    assert not id_number_valid(with_check_digit("11010519491331002"))  # month 13
    assert id_number_valid(with_check_digit("44030419900307123"))


def test_luhn():
    assert luhn_valid("4111 1111 1111 1111") and luhn_valid("4111-1111-1111-1111")
    assert luhn_valid("6212 2602 0000 0000 006")  # 19-digit UnionPay layout
    assert not luhn_valid("4111 1111 1111 1112") and not luhn_valid("6212260200000000009")
    assert not luhn_valid("4111111111")  # too short for a card


def test_mask_pii_masks_only_valid_numbers():
    valid_id = with_check_digit("44030419900307123")
    bad_id = valid_id[:-1] + ("0" if valid_id[-1] != "0" else "1")
    text = (f"张三，手机 138-1234-5678 或 +86 13912345678，邮箱 zhang.san@bank.com.cn，"
            f"身份证 {valid_id}，卡号 4111111111111111。订单号 20240101123456 与错号 {bad_id[:17]}")
    masked, counts = mask_pii(text)
    assert counts == {"mobile": 2, "email": 1, "id_number": 1, "bank_card": 1}
    assert "138" not in masked and "zhang.san" not in masked and valid_id not in masked and "4111" not in masked
    assert "[身份证号]" in masked and "[银行卡号]" in masked and "[手机号]" in masked and "[邮箱]" in masked
    assert "20240101123456" in masked  # 14 digits failing Luhn: not a card
    _, none = mask_pii(f"错号 {with_check_digit('44030419900307123')[:-1]}9 电话 12345678901")
    assert "id_number" not in none and "mobile" not in none


def test_clean_reports_each_step():
    rows = [
        qa("如何申请年假？", "在人事系统中提交申请。"),            # 0
        qa("如何申请年假？", "在人事系统中提交申请。"),            # 1 exact duplicate of 0
        qa("如何申请年假 ?", "在人事系统中，提交申请"),            # 2 same after normalizing punctuation/space
        qa("如何申请年假呢？", "在人事系统中提交申请即可。"),       # 3 near duplicate of 0
        qa("How do I claim expenses?", "Submit the invoice in the system."),  # 4
        qa("   ", "x"),                                              # 5 empty
        qa("联系谁？", "拨打13812345678"),                           # 6 PII
    ]
    cleaned, report = clean(rows, CleaningOptions(mask_pii=True, near_threshold=0.6))
    steps = {s["step"]: s for s in report}
    assert [r["index"] for r in steps["empty"]["removed"]] == [5]
    assert [(r["index"], r["duplicate_of"]) for r in steps["exact_duplicates"]["removed"]] == [(1, 0), (2, 0)]
    near = steps["near_duplicates"]["removed"]
    assert [(r["index"], r["duplicate_of"]) for r in near] == [(3, 0)] and near[0]["similarity"] >= 0.6
    assert steps["pii"]["changed"] == [{"index": 6, "kinds": {"mobile": 1}, "preview": "联系谁？ · 拨打[手机号]"}]
    assert [r["messages"][0]["content"] for r in cleaned] == ["如何申请年假？", "How do I claim expenses?", "联系谁？"]
    assert steps["near_duplicates"]["before"] == 4 and steps["near_duplicates"]["after"] == 3


def test_clean_lengths_in_tokens_makes_a_new_version(ml, credit, tokenizer_setting):
    from training.datasets.tokenizer import conversation_tokens, load_tokenizer

    tok = load_tokenizer()
    long_answer = "员工入职满一年后享有带薪年假。" * 20
    rows = [qa("年假？", "入职满一年后享有带薪年假。"), qa("好？", "好"), qa("长？", long_answer)]
    dataset = dataset_create(actor=ml["credit_admin"], department=credit, name="d")
    v1, _ = dataset_version_create(actor=ml["credit_admin"], dataset=dataset, payloads=rows, origin="upload")
    limit = conversation_tokens(tok, rows[0]["messages"]) + 5
    short = len(tok("好", add_special_tokens=False)["input_ids"]) + 1
    v2, created = dataset_clean(
        actor=ml["credit_admin"], version=v1, options=CleaningOptions(min_answer_tokens=short, max_tokens=limit)
    )
    assert created and v2.number == 2 and v2.origin == "clean" and v2.parent_id == v1.pk
    assert [r.answer for r in v2.rows.all()] == ["入职满一年后享有带薪年假。"]
    length = next(s for s in v2.report["steps"] if s["step"] == "length")
    assert [(r["index"], r["reason"]) for r in length["removed"]] == [(1, "too_short"), (2, "too_long")]
    assert length["removed"][1]["tokens"] > limit
    assert v1.rows.count() == 3  # the source version is untouched


def test_clean_without_tokenizer_says_what_to_do(ml, credit, settings, tmp_path):
    settings.TRAINING_TOKENIZER_PATH = str(tmp_path / "missing")
    dataset = dataset_create(actor=ml["credit_admin"], department=credit, name="d")
    v1, _ = dataset_version_create(actor=ml["credit_admin"], dataset=dataset, payloads=[qa("a", "b")], origin="upload")
    with pytest.raises(DatasetOperationError, match="tokenizer_config.json is missing"):
        dataset_clean(actor=ml["credit_admin"], version=v1, options=CleaningOptions(max_tokens=10))
    v_empty, _ = dataset_version_create(
        actor=ml["credit_admin"], dataset=dataset, payloads=[qa(" ", "b")], origin="upload")
    with pytest.raises(DatasetOperationError, match="remove every row"):
        dataset_clean(actor=ml["credit_admin"], version=v_empty, options=CleaningOptions())
    assert dataset.versions.count() == 2
