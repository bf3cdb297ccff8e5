"""Conversations to token ids and labels through the model's own chat template: only what the
assistant says carries loss (its end-of-turn token included), everything else is -100."""

from __future__ import annotations

import hashlib

IGNORE = -100


class TemplateError(ValueError):
    pass


def template_sha256(template: str | None) -> str | None:
    return hashlib.sha256(template.encode()).hexdigest() if template else None


def end_of_turn_token_id(tokenizer) -> int:
    if tokenizer.eos_token_id is None:
        raise TemplateError("The tokenizer has no end-of-turn (eos) token.")
    return tokenizer.eos_token_id


def encode_conversation(tokenizer, messages: list[dict], max_length: int | None) -> dict:
    """{"input_ids", "labels", "truncated"}; labels mark the assistant tokens (incl. end-of-turn)."""
    if not getattr(tokenizer, "chat_template", None):
        raise TemplateError("The base model's tokenizer has no chat template.")
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True, add_generation_prompt=False
    )
    ids = list(out["input_ids"])
    mask = list(out.get("assistant_masks") or [])
    if not any(mask):
        mask = _mask_from_assistant_prefix(tokenizer, messages, ids)
    labels = [tok if m else IGNORE for tok, m in zip(ids, mask, strict=True)]
    max_length = max_length or len(ids)
    truncated = len(ids) > max_length
    return {"input_ids": ids[:max_length], "labels": labels[:max_length], "truncated": truncated}


def _mask_from_assistant_prefix(tokenizer, messages: list[dict], ids: list[int]) -> list[int]:
    """For templates without `{% generation %}`: the tokens after each assistant prompt prefix."""
    mask = [0] * len(ids)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        # transformers 5 returns a BatchEncoding (not a dict): ask for the dict form and take its ids
        prefix = list(tokenizer.apply_chat_template(messages[:i], tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"])
        upto = list(tokenizer.apply_chat_template(messages[: i + 1], tokenize=True, return_dict=True)["input_ids"])
        end = len(upto)
        # the newline after the end-of-turn token is not what the model must say
        while end > len(prefix) and upto[end - 1] != tokenizer.eos_token_id:
            end -= 1
        for j in range(len(prefix), min(end, len(ids))):
            mask[j] = 1
    return mask


def check_end_of_turn_carries_loss(tokenizer, encoded: list[dict]) -> None:
    """Training refuses a dataset/template combination in which the model would never learn to stop."""
    eot = end_of_turn_token_id(tokenizer)
    with_loss = [e for e in encoded if any(label != IGNORE for label in e["labels"])]
    if not with_loss:
        raise TemplateError("No assistant token carries loss: every example is empty or truncated away.")
    if not any(eot in [label for label in e["labels"] if label != IGNORE] for e in with_loss):
        raise TemplateError(
            f"The end-of-turn token {tokenizer.convert_ids_to_tokens(eot)!r} carries no loss: the trained model would not stop."
        )
