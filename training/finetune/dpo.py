"""Direct preference optimisation (Rafailov et al. 2023) on the job's Trainer, written by hand
because TRL is not a dependency here: the policy is the model with a LoRA adapter, the reference is
the same model with the adapter disabled (the base, or a full-weights parent), so no second copy of
the weights is loaded. With a parent adapter, the policy starts from it and the reference is that
parent: a frozen second copy of the adapter (REFERENCE_ADAPTER), switched to for the reference pass.
Loss: -log σ(β · ((log π(y_w) - log π_ref(y_w)) - (log π(y_l) - log π_ref(y_l)))), log-probabilities
summed over the assistant tokens (the loss mask of `encoding`)."""

from __future__ import annotations

import contextlib

from .encoding import IGNORE, encode_conversation

REFERENCE_ADAPTER = "reference"


def encode_pair(tokenizer, pair: dict, max_length: int | None) -> dict:
    """{"chosen": encoded, "rejected": encoded} for a pair in `DatasetRow.as_dpo()`'s shape."""
    return {
        "chosen": encode_conversation(tokenizer, [*pair["prompt"], *pair["chosen"]], max_length),
        "rejected": encode_conversation(tokenizer, [*pair["prompt"], *pair["rejected"]], max_length),
    }


def pair_collator(pad_id: int, counter=None):
    """A batch of B pairs as 2B rows: the chosen answers first, then the rejected ones."""
    from .runner import padded_batch

    def collate(features: list[dict]) -> dict:
        return padded_batch([f["chosen"] for f in features] + [f["rejected"] for f in features], pad_id, counter)

    return collate


def sequence_logps(logits, labels):
    """Sum of the log-probabilities of the labelled tokens, per row (labels shifted by one)."""
    import torch

    logits, labels = logits[:, :-1, :], labels[:, 1:]
    mask = labels != IGNORE
    picked = torch.gather(logits.float().log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta: float):
    """(mean loss, mean reward margin) of a batch."""
    import torch.nn.functional as F

    margin = (policy_chosen - reference_chosen) - (policy_rejected - reference_rejected)
    return -F.logsigmoid(beta * margin).mean(), (beta * margin).mean()


@contextlib.contextmanager
def reference_model(model):
    """The model as DPO's reference, without dropout (a fixed model): the frozen parent adapter when
    one was loaded, else the model with its adapter disabled."""
    training = model.training
    model.eval()
    try:
        if REFERENCE_ADAPTER not in model.peft_config:
            with model.disable_adapter():
                yield
            return
        trained = model.active_adapter
        model.set_adapter(REFERENCE_ADAPTER, inference_mode=True)
        try:
            yield
        finally:
            model.set_adapter(trained)
    finally:
        model.train(training)


def preference_trainer_class(beta: float):
    """A transformers.Trainer whose loss is DPO's (everything else — checkpoints, resume, early
    stopping, callbacks — is the job's Trainer as for supervised fine-tuning)."""
    import torch
    from transformers import Trainer

    class PreferenceTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            half = inputs["input_ids"].shape[0] // 2
            forward = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
            # The reference pass first: switching adapters sets which one has gradients, and the
            # policy's pass must see its own adapter trainable.
            with torch.no_grad(), reference_model(model):
                reference = sequence_logps(model(**forward).logits, inputs["labels"])
            policy = sequence_logps(model(**forward).logits, inputs["labels"])
            loss, _margin = dpo_loss(policy[:half], policy[half:], reference[:half], reference[half:], beta)
            return (loss, {"policy_logps": policy}) if return_outputs else loss

    return PreferenceTrainer


def chosen_margins(model, tokenizer, pairs: list[dict], max_length: int | None) -> list[float]:
    """log π(chosen) - log π(rejected) for each pair under `model` as it is (no reference)."""
    import torch

    collate = pair_collator(tokenizer.pad_token_id)
    margins = []
    model.eval()
    with torch.no_grad():
        for pair in pairs:
            batch = collate([encode_pair(tokenizer, pair, max_length)])
            device = next(model.parameters()).device
            logps = sequence_logps(
                model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits,
                batch["labels"].to(device),
            )
            margins.append(float(logps[0] - logps[1]))
    return margins
