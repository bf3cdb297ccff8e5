"""Fine-tuning pieces without a worker: hyperparameters, the loss mask and the template check, the
base-model checks, target modules, metrics and perturbations."""

import json

import pytest

from training.finetune import evaluation as m
from training.finetune import hyperparameters as hp
from training.finetune.demo_model import CHAT_TEMPLATE, END_OF_TURN, ensure_demo_model
from training.finetune.encoding import IGNORE, TemplateError, check_end_of_turn_carries_loss, encode_conversation
from training.finetune.runner import TrainingInputError, check_base_model, find_target_modules


@pytest.fixture(scope="session")
def demo_dir():
    return ensure_demo_model()


@pytest.fixture(scope="session")
def demo_tokenizer(demo_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_dir)


def test_hyperparameters_defaults_per_method_and_range_errors():
    values, errors = hp.validate("full", {})
    assert not errors and values["learning_rate"] == 1e-5
    values, errors = hp.validate("lora", {"n_epochs": "3"})
    assert not errors and values["learning_rate"] == 2e-4 and values["n_epochs"] == 3
    _, errors = hp.validate("lora", {"learning_rate": 5, "n_epochs": 0, "batch_size": 2.5, "lora_r": "x", "bogus": 1,
                                     "lr_scheduler": "warp", "lora_dropout": True})
    assert errors == {
        "learning_rate": "Must be between 1e-08 and 1.",
        "n_epochs": "Must be between 1 and 1000.",
        "batch_size": "Must be an integer.",
        "lora_r": "Must be an integer.",
        "bogus": "Unknown hyperparameter.",
        "lr_scheduler": "Choose one of linear, cosine, constant_with_warmup, constant.",
        "lora_dropout": "Must be a number.",
    }
    _, errors = hp.validate("sgd", {})
    assert "method" in errors


def test_adapter_defaults_depend_on_the_base_model_size(demo_dir, tmp_path):
    hidden = hp.model_hidden_size(str(demo_dir))
    assert hidden == 128
    small, errors = hp.validate("lora", {}, hidden_size=hidden)
    assert not errors and (small["learning_rate"], small["lora_r"], small["lora_alpha"]) == (3e-3, 16, 32)
    assert hp.validate("dora", {}, hidden_size=1024)[0]["learning_rate"] == 4e-4
    seven_b, _ = hp.validate("lora", {}, hidden_size=3584)  # DeepSeek-R1-Distill-Qwen-7B
    assert (seven_b["learning_rate"], seven_b["lora_r"], seven_b["lora_alpha"]) == (2e-4, 8, 16)
    assert hp.validate("lora", {"learning_rate": 1e-4, "lora_r": 4}, hidden_size=hidden)[0]["learning_rate"] == 1e-4
    assert hp.validate("full", {}, hidden_size=hidden)[0]["learning_rate"] == 1e-5
    assert hp.model_hidden_size(str(tmp_path)) is None  # no config.json: the large model's defaults


def test_demo_model_is_a_real_small_qwen2_with_a_chat_template(demo_dir, demo_tokenizer):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(demo_dir)
    info = json.loads((demo_dir / "demo_model.json").read_text())
    assert config.model_type == "qwen2" and config.architectures == ["Qwen2ForCausalLM"]
    assert 300_000 < info["parameters"] < 5_000_000
    assert info["last_loss"] < info["first_loss"] / 3  # it was really pre-trained
    assert demo_tokenizer.chat_template == CHAT_TEMPLATE and demo_tokenizer.eos_token == END_OF_TURN
    # Chinese and English both encode to known tokens and decode back exactly
    text = "住宿标准：一线城市每晚不超过 600 元。Loan-to-value limits"
    ids = demo_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert demo_tokenizer.decode(ids) == text and len(ids) < len(text.encode())


def test_loss_mask_covers_assistant_tokens_and_the_end_of_turn_token(demo_tokenizer):
    messages = [{"role": "system", "content": "你是助手"}, {"role": "user", "content": "住宿标准是多少？"},
                {"role": "assistant", "content": "每晚不超过 600 元。"}]
    enc = encode_conversation(demo_tokenizer, messages, 512)
    learned = [t for t in enc["labels"] if t != IGNORE]
    assert demo_tokenizer.decode(learned) == "每晚不超过 600 元。" + END_OF_TURN
    assert learned[-1] == demo_tokenizer.eos_token_id
    check_end_of_turn_carries_loss(demo_tokenizer, [enc])  # passes
    # truncated before the end-of-turn token: refused, the trained model would not stop
    short = encode_conversation(demo_tokenizer, messages, len(enc["input_ids"]) - 2)
    with pytest.raises(TemplateError, match="carries no loss"):
        check_end_of_turn_carries_loss(demo_tokenizer, [short])


def test_a_template_without_the_end_of_turn_token_in_assistant_turns_is_refused(demo_dir, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_dir)
    tokenizer.chat_template = CHAT_TEMPLATE.replace("message['content'] + '<|im_end|>' -}}{%- endgeneration", "message['content'] -}}{%- endgeneration")
    enc = encode_conversation(tokenizer, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], 64)
    with pytest.raises(TemplateError, match="end-of-turn token '<\\|im_end\\|>' carries no loss"):
        check_end_of_turn_carries_loss(tokenizer, [enc])


def test_base_model_checks_give_clear_messages(demo_dir, tmp_path):
    assert check_base_model(str(demo_dir))["model_type"] == "qwen2"
    with pytest.raises(TrainingInputError, match="does not exist"):
        check_base_model(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingInputError, match="no config.json"):
        check_base_model(str(tmp_path / "empty"))
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(TrainingInputError, match="not a causal language model"):
        check_base_model(str(encoder))


def test_target_modules_are_found_from_the_architecture(demo_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(demo_dir)
    targets, feedforward = find_target_modules(model, "lora")
    assert targets == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert feedforward == ["down_proj"]  # its input is the feed-forward width (IA3 scales it there)
    assert "lm_head" not in targets


def test_metrics_chinese_characters_and_english_words():
    assert m.exact_match(" 50%。", "50%") == 1.0
    assert m.contains("答：每晚不超过 600 元。", "600 元") == 1.0
    # characters for Chinese, "600" one token: 4 of 4 predicted tokens in the 7 of the reference
    assert m.token_f1("每晚600元", "每晚不超过600元") == pytest.approx(2 * (4 / 7) / (1 + 4 / 7))
    assert m.token_f1("five days", "5 days") == 0.5
    assert m.score(["a", "b"], ["a", "c"])["exact_match"] == 0.5


def test_perturbations_change_the_question():
    question = "住宿标准是多少，出差前须提交申请吗？"
    assert m.perturb("traditional", "审批结果须在几个工作日内通知客户？") == "審批結果須在幾個工作日內通知客戶？"
    assert m.perturb("simplified", "審批結果") == "审批结果"
    assert m.perturb("synonym", question) != question and "几多" in m.perturb("synonym", question)
    assert m.perturb("shuffled_clauses", question, seed=1) != question or m.perturb("shuffled_clauses", question, seed=2) != question
    assert m.perturb("typo", "What is the maximum LTV?") != "What is the maximum LTV?"
    assert m.perturb("noise", question).startswith(question)
    assert m.perturb("typo", question) == m.perturb("typo", question)  # seeded


def test_a_template_without_generation_blocks_gets_the_same_mask(demo_dir):
    """DeepSeek's own templates have no {% generation %}: the mask comes from the assistant prefixes."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_dir)
    messages = [{"role": "user", "content": "住宿标准是多少？"}, {"role": "assistant", "content": "每晚不超过 600 元。"},
                {"role": "user", "content": "And in English?"}, {"role": "assistant", "content": "At most CNY 600."}]
    with_blocks = encode_conversation(tokenizer, messages, 512)
    tokenizer.chat_template = CHAT_TEMPLATE.replace("{%- generation -%}", "").replace("{%- endgeneration -%}", "")
    without = encode_conversation(tokenizer, messages, None)
    assert without == with_blocks
    assert tokenizer.decode([t for t in without["labels"] if t != IGNORE]) == "每晚不超过 600 元。<|im_end|>At most CNY 600.<|im_end|>"
