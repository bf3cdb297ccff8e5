"""Evaluation metrics (closed-book QA, perplexity, robustness) as pure functions over a backend."""

from __future__ import annotations

import math
import random
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_PUNCT = set(string.punctuation) | set("，。！？；：、（）《》“”‘’【】—…·「」")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").lower().strip()
    text = "".join(" " if ch in _PUNCT else ch for ch in text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """Characters for Chinese, words for everything else."""
    out: list[str] = []
    for word in normalize(text).split():
        buffer = ""
        for ch in word:
            if _CJK.match(ch):
                if buffer:
                    out.append(buffer)
                    buffer = ""
                out.append(ch)
            else:
                buffer += ch
        if buffer:
            out.append(buffer)
    return out


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize(prediction) == normalize(reference))


def contains(prediction: str, reference: str) -> float:
    ref = normalize(reference)
    return float(bool(ref) and ref in normalize(prediction))


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def qa_items(conversations: list[list[dict]]) -> list[dict]:
    """(messages before the last assistant turn, its answer) per conversation."""
    items = []
    for messages in conversations:
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last is None or last == 0:
            continue
        items.append({"prompt": messages[:last], "question": messages[last - 1]["content"], "reference": messages[last]["content"]})
    return items


# --- robustness: perturbations of the question -------------------------------------------------

SYNONYMS = {
    "多少": "几多", "须": "必须", "不得": "不能", "超过": "高于", "审批": "批准", "员工": "职工", "报销": "报账",
    "maximum": "highest", "employees": "staff", "receive": "get", "days": "day", "approve": "sign off",
    "what": "which", "how many": "what number of", "limit": "cap",
}


def _typo(text: str, rng: random.Random) -> str:
    chars = list(text)
    positions = [i for i, ch in enumerate(chars) if ch.isalpha() and not _CJK.match(ch)]
    if len(positions) >= 2:
        i = rng.choice(positions[:-1])
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
        return "".join(chars)
    cjk = [i for i, ch in enumerate(chars) if _CJK.match(ch)]
    if len(cjk) >= 2:  # a duplicated character, the common Chinese input slip
        i = rng.choice(cjk)
        chars.insert(i, chars[i])
    return "".join(chars)


def _synonyms(text: str, rng: random.Random) -> str:
    for word, other in SYNONYMS.items():
        text = re.sub(re.escape(word), other, text, count=1, flags=re.IGNORECASE)
    return text


def _shuffle_clauses(text: str, rng: random.Random) -> str:
    parts = [p for p in re.split(r"([，,；;])", text)]
    clauses = [p for p in parts[::2] if p.strip()]
    if len(clauses) < 2:
        return text
    rng.shuffle(clauses)
    return "，".join(c.strip() for c in clauses)


def _noise(text: str, rng: random.Random) -> str:
    return f"{text} {rng.choice(['~', '...', '??', '！！', '(急)', 'pls'])}"


def _converter(config: str):
    import opencc

    return opencc.OpenCC(config)


def _to_traditional(text: str, rng: random.Random) -> str:
    return _converter("s2t").convert(text)


def _to_simplified(text: str, rng: random.Random) -> str:
    return _converter("t2s").convert(text)


PERTURBATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "typo": _typo,
    "synonym": _synonyms,
    "shuffled_clauses": _shuffle_clauses,
    "noise": _noise,
    "traditional": _to_traditional,
    "simplified": _to_simplified,
}


def perturb(kind: str, text: str, seed: int = 0) -> str:
    return PERTURBATIONS[kind](text, random.Random(f"{seed}:{kind}:{text}"))


def score(predictions: list[str], references: list[str]) -> dict:
    n = max(len(references), 1)
    return {
        "exact_match": sum(map(exact_match, predictions, references)) / n,
        "contains": sum(map(contains, predictions, references)) / n,
        "token_f1": sum(map(token_f1, predictions, references)) / n,
    }


def perplexity(model, tokenizer, conversations: list[list[dict]], max_length: int = 1024) -> float | None:
    """exp(mean loss over the assistant tokens), the tokens training optimizes."""
    import torch

    from .encoding import IGNORE, encode_conversation

    total, count = 0.0, 0
    device = next(model.parameters()).device
    for messages in conversations:
        enc = encode_conversation(tokenizer, messages, max_length)
        labels = torch.tensor([enc["labels"]], device=device)
        n = int((labels[:, 1:] != IGNORE).sum())
        if n == 0:
            continue
        with torch.inference_mode():
            loss = model(input_ids=torch.tensor([enc["input_ids"]], device=device), labels=labels).loss
        total += float(loss) * n
        count += n
    return math.exp(total / count) if count else None
