from training.datasets.preview import PARTIAL, histogram, preview_row, token_lengths
from training.datasets.tokenizer import load_tokenizer

CONVERSATION = [
    {"role": "system", "content": "你是助手"},
    {"role": "user", "content": "年假？"},
    {"role": "assistant", "content": "入职满一年后享有带薪年假。"},
    {"role": "user", "content": "How many days?"},
    {"role": "assistant", "content": "Five."},
]


def loss_text(preview):
    # Tokens that continue a character split by byte-level BPE show as PARTIAL.
    return "".join(t.text for t in preview.tokens if t.loss).replace(PARTIAL, "")


def test_loss_mask_covers_assistant_turns_and_end_of_turn(tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    preview = preview_row(tok, CONVERSATION)
    assert preview.text.startswith("<|im_start|>system\n你是助手<|im_end|>")
    assert loss_text(preview) == "入职满一年后享有带薪年假。<|im_end|>Five.<|im_end|>"
    assert preview.end_of_turn_in_loss
    assert "".join(t.text for t in preview.tokens if not t.loss).count("年假？") == 1
    truncated = preview_row(tok, CONVERSATION, max_length=10)
    assert truncated.truncated and sum(not t.truncated for t in truncated.tokens) == 10
    assert truncated.loss_tokens == 0


def test_template_without_generation_blocks_uses_spans(tokenizer_dir, tmp_path):
    tok = load_tokenizer(tokenizer_dir)
    # A DeepSeek-like template: no {% generation %} markers.
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'user' %}<|im_start|>User: {{ m['content'] }}\n"
        "{% elif m['role'] == 'assistant' %}<|im_start|>Assistant: {{ m['content'] }}<|im_end|>\n"
        "{% else %}{{ m['content'] }}\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>Assistant: {% endif %}"
    )
    preview = preview_row(tok, CONVERSATION)
    assert loss_text(preview) == "入职满一年后享有带薪年假。<|im_end|>Five.<|im_end|>"
    assert preview.end_of_turn_in_loss


def test_a_template_that_drops_the_end_of_turn_is_flagged(tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    tok.chat_template = "{% for m in messages %}{{ m['role'] }}: {% generation %}{{ m['content'] }}{% endgeneration %}\n{% endfor %}"
    preview = preview_row(tok, CONVERSATION[1:3])
    assert not preview.end_of_turn_in_loss


def test_histogram_against_max_length(tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    lengths = token_lengths(tok, [CONVERSATION, CONVERSATION[:3], CONVERSATION[1:3]])
    assert lengths[0] > lengths[1] > lengths[2] > 0
    hist = histogram(lengths, max_length=lengths[1], bins=4)
    assert hist["over"] == 1 and sum(hist["counts"]) == 3 and hist["total"] == 3


def test_tokenizer_falls_back_to_the_demo_model(settings, tokenizer_dir, monkeypatch, tmp_path):
    from training.datasets.tokenizer import TokenizerUnavailable, tokenizer_path
    from training.finetune import demo_model

    settings.TRAINING_TOKENIZER_PATH = None
    monkeypatch.setattr(demo_model, "demo_model_path", lambda: tokenizer_dir)
    assert tokenizer_path() == tokenizer_dir and load_tokenizer().chat_template
    monkeypatch.setattr(demo_model, "demo_model_path", lambda: tmp_path / "not-built")
    import pytest

    with pytest.raises(TokenizerUnavailable, match="create_demo_model"):
        load_tokenizer()
