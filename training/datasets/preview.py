"""What training sees of a row: the conversation rendered with the base model's chat template,
its tokens, and which of them carry loss (the assistant's tokens, end-of-turn token included).

The mask comes from, in order: the training engineer's `training.finetune.encoding.encode_conversation`
(when present, so the preview is exactly what training computes); the template's `{% generation %}`
blocks (`return_assistant_tokens_mask`); else the character spans of each assistant turn found by
rendering the conversation up to it (templates without generation blocks, e.g. DeepSeek's)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_GENERATION = re.compile(r"{%-?\s*generation\s*-?%}")
PARTIAL = ""  # the text of a token that continues a character split across tokens (byte-level BPE)


@dataclass
class Token:
    id: int
    text: str
    loss: bool
    truncated: bool

    @property
    def partial(self) -> bool:
        return not self.text


@dataclass
class RowPreview:
    text: str
    tokens: list[Token]
    loss_tokens: int
    end_of_turn_in_loss: bool
    truncated: bool


def _assistant_spans(tokenizer, messages: list[dict]) -> list[tuple[int, int]]:
    """Character spans of each assistant turn in the rendered text, the end-of-turn marker included
    (trailing whitespace after it excluded)."""
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        upto = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if upto.startswith(prefix):
            spans.append((len(prefix), len(upto.rstrip())))
    return spans


def _external_encoder():
    try:
        from training.finetune.encoding import encode_conversation
    except ImportError:
        return None
    return encode_conversation


def encode_row(tokenizer, messages: list[dict]) -> tuple[str, list[int], list[tuple[int, int]], list[bool]]:
    """(rendered text, token ids, character offsets, loss mask) of the whole (untruncated) row."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    encoder = _external_encoder()
    if encoder is not None:
        try:
            encoded = encoder(tokenizer, messages, len(ids) + 1)  # untruncated: the preview marks the cut itself
        except ValueError:  # the encoder's TemplateError: fall back to the masks below
            encoded = None
        if encoded is not None and list(encoded["input_ids"]) == ids:
            return text, ids, offsets, [label != -100 for label in encoded["labels"]]
    if _GENERATION.search(tokenizer.chat_template or ""):
        out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        if list(out["input_ids"]) == ids and any(out["assistant_masks"]):
            return text, ids, offsets, [bool(m) for m in out["assistant_masks"]]
    spans = _assistant_spans(tokenizer, messages)
    mask = [any(s < end and e > start for start, end in spans) for s, e in offsets]
    return text, ids, offsets, mask


def _end_of_turn_ids(tokenizer) -> set[int]:
    ids = set()
    for token in ("<|im_end|>", "<｜end▁of▁sentence｜>", "<|eot_id|>", "<|endoftext|>", tokenizer.eos_token):
        if token and token in tokenizer.get_vocab():
            ids.add(tokenizer.convert_tokens_to_ids(token))
    return ids


def preview_row(tokenizer, messages: list[dict], max_length: int | None = None) -> RowPreview:
    text, ids, offsets, mask = encode_row(tokenizer, messages)
    tokens, shown = [], 0
    for i, (token_id, (start, end), loss) in enumerate(zip(ids, offsets, mask)):
        piece = text[max(start, shown) : end]
        shown = max(shown, end)
        tokens.append(Token(token_id, piece, bool(loss), max_length is not None and i >= max_length))
    eot = _end_of_turn_ids(tokenizer)
    # The last assistant turn must teach the model to stop: its end-of-turn token carries loss.
    last_loss = max((i for i, t in enumerate(tokens) if t.loss), default=None)
    end_of_turn_in_loss = last_loss is not None and tokens[last_loss].id in eot
    return RowPreview(
        text=text, tokens=tokens, loss_tokens=sum(t.loss and not t.truncated for t in tokens),
        end_of_turn_in_loss=end_of_turn_in_loss, truncated=max_length is not None and len(ids) > max_length,
    )


def token_lengths(tokenizer, conversations: list[list[dict]]) -> list[int]:
    texts = [tokenizer.apply_chat_template(m, tokenize=False) for m in conversations]
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def histogram(lengths: list[int], max_length: int, bins: int = 20) -> dict:
    """Counts per length bin (the last bin edge at or above max_length), and how many exceed it."""
    top = max([max_length, *lengths]) if lengths else max_length
    width = max(1, -(-top // bins))
    counts = [0] * bins
    for n in lengths:
        counts[min(bins - 1, n // width)] += 1
    return {
        "labels": [f"{i * width}–{(i + 1) * width - 1}" for i in range(bins)],
        "counts": counts,
        "edges": [i * width for i in range(bins + 1)],
        "max_length": max_length,
        "over": sum(n > max_length for n in lengths),
        "total": len(lengths),
        "longest": max(lengths, default=0),
        "mean": round(sum(lengths) / len(lengths), 1) if lengths else 0,
    }
