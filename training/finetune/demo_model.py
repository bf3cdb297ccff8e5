"""A tiny but real causal LM for the demo and the tests: a Qwen2 architecture of a few million
parameters, a byte-level BPE tokenizer trained on the demo knowledge base (Chinese and English), a
ChatML chat template whose assistant turns end with `<|im_end|>`, and a brief pre-training with
warmup and cosine decay. Deterministic given the seed; built once and cached under var/models/."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import random
import shutil
from pathlib import Path

END_OF_TURN = "<|im_end|>"
PAD = "<|endoftext|>"
SPECIAL_TOKENS = [PAD, "<|im_start|>", END_OF_TURN]

# ChatML. `{% generation %}` marks what the assistant says (its end-of-turn token included): the tokens
# that carry loss in training (`return_assistant_tokens_mask`).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}{{- message['content'] + '<|im_end|>' -}}{%- endgeneration -%}{{- '\\n' -}}"
    "{%- else -%}"
    "{{- message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

DEMO_SPEC = {
    "version": 3,
    "seed": 1234,
    "vocab_size": 1536,
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "pretrain_steps": 200,
    "pretrain_batch_size": 8,
    "pretrain_seq_len": 64,
    "pretrain_lr": 2e-3,
    "warmup_ratio": 0.1,
}


def demo_corpus() -> list[str]:
    """The demo knowledge base's documents (every version), plus short bilingual sentences."""
    from knowledge import demo

    texts = [value for name, value in vars(demo).items() if name.isupper() and isinstance(value, str)]
    texts += [
        "员工入职满一年后享有带薪年假。Employees receive paid annual leave.",
        "贷款审批须核实身份证、收入证明和征信报告。",
        "The credit committee approves exceptions to loan-to-value limits.",
        "可疑交易须上报合规部。Suspicious activity is escalated to Compliance.",
        "出差前须提交申请，报销须提交发票。",
        "你好，请问有什么可以帮您？Hello, how can I help you?",
        "谢谢。Thank you. 不客气。You are welcome.",
    ]
    return texts


def _conversations(texts: list[str], rng: random.Random) -> list[list[dict]]:
    """Generic chat-shaped practice built from the corpus lines: the model learns the turn format
    and to stop with the end-of-turn token, without being taught the facts as question/answer."""
    lines = [line.strip("#-|* ").strip() for text in texts for line in text.splitlines()]
    lines = [line for line in lines if len(line) >= 4]
    prompts = ["复述：", "Repeat: ", "请重复这句话：", "Say: "]
    conversations = []
    for line in lines:
        conversations.append(
            [{"role": "user", "content": rng.choice(prompts) + line}, {"role": "assistant", "content": line}]
        )
    return conversations


def spec_hash(spec: dict | None = None) -> str:
    spec = spec or DEMO_SPEC
    payload = json.dumps({"spec": spec, "corpus": demo_corpus(), "template": CHAT_TEMPLATE}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def demo_model_path() -> Path:
    from django.conf import settings

    root = Path(getattr(settings, "TRAINING_MODELS_DIR", None) or (Path(settings.VAR_DIR) / "models"))
    return root / f"demo-qwen2-{spec_hash()}"


def build_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=END_OF_TURN,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        model_max_length=DEMO_SPEC["max_position_embeddings"],
        clean_up_tokenization_spaces=False,
    )


@contextlib.contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_demo_model(*, force: bool = False, log=None) -> Path:
    """The cached demo model directory, built (under a file lock, atomically) when missing."""
    target = demo_model_path()
    if (target / "config.json").exists() and not force:
        return target
    with _lock(target.parent / f".{target.name}.lock"):
        if (target / "config.json").exists() and not force:
            return target
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        build_demo_model(tmp, log=log)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return target


def build_demo_model(output_dir: Path, *, spec: dict | None = None, log=None) -> dict:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM, get_cosine_schedule_with_warmup

    spec = spec or DEMO_SPEC
    log = log or (lambda message: None)
    seed = spec["seed"]
    rng = random.Random(seed)
    torch.manual_seed(seed)
    texts = demo_corpus()
    conversations = _conversations(texts, rng)
    tokenizer = build_tokenizer(texts + [line["content"] for c in conversations for line in c], spec["vocab_size"])

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec["hidden_size"],
        intermediate_size=spec["intermediate_size"],
        num_hidden_layers=spec["num_hidden_layers"],
        num_attention_heads=spec["num_attention_heads"],
        num_key_value_heads=spec["num_key_value_heads"],
        max_position_embeddings=spec["max_position_embeddings"],
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"Qwen2 with {n_params:,} parameters, vocabulary {len(tokenizer)}")

    # One token stream: documents, then chat-formatted practice, each ending in an end-of-turn token.
    stream: list[int] = []
    samples = [t + END_OF_TURN for t in texts]
    samples += [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    rng.shuffle(samples)
    for sample in samples:
        stream.extend(tokenizer(sample, add_special_tokens=False)["input_ids"])
    seq_len, batch_size, steps = spec["pretrain_seq_len"], spec["pretrain_batch_size"], spec["pretrain_steps"]
    data = torch.tensor(stream, dtype=torch.long)

    optimizer = torch.optim.AdamW(model.parameters(), lr=spec["pretrain_lr"], weight_decay=0.01)
    scheduler = get_cosine_schedule_with_warmup(optimizer, math.ceil(steps * spec["warmup_ratio"]), steps)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    losses = []
    for step in range(steps):
        starts = torch.randint(0, len(data) - seq_len - 1, (batch_size,), generator=generator)
        batch = torch.stack([data[s : s + seq_len] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        if step % 40 == 0 or step == steps - 1:
            log(f"pre-training step {step + 1}/{steps} loss {loss.item():.3f}")

    output_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.save_pretrained(output_dir)
    info = {
        "name": "demo-qwen2",
        "spec": spec,
        "spec_hash": spec_hash(spec),
        "parameters": n_params,
        "tokens_in_corpus": len(stream),
        "first_loss": losses[0],
        "last_loss": sum(losses[-10:]) / 10,
    }
    (output_dir / "demo_model.json").write_text(json.dumps(info, indent=2))
    return info
