"""An evaluation job: closed-book QA, perplexity, robustness and (optionally) the RAG setting, for
one model version on one dataset version's split."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.utils.module_loading import import_string

from llm.local import LocalTransformersBackend

from .finetune import evaluation as m
from .models import Evaluation, ModelVersion, ModelVersionKind

DEFAULT_LIMIT = 200


def backend_for_version(version: ModelVersion) -> LocalTransformersBackend:
    return LocalTransformersBackend(
        version.model_dir,
        version.adapter_path or None,
        expected_template_sha256=version.chat_template_sha256 or None,
        name=version.name,
        version_id=version.pk,
    )


def rag_answer_default(*, question: str, backend, user) -> dict:
    """The RAG setting without the chat app: retrieve what `user` may read, answer from it, cite the
    versions used. After the chat pipeline lands, TRAINING_RAG_ANSWERER points at its function
    (same keyword arguments, same result keys) so the figure is the product's own."""
    from retrieval.search import search

    hits = search(user, question, k=4)
    if not hits or hits.no_answer:
        return {"answer": "", "citations": [], "abstained": True}
    context = "\n\n".join(f"[{i + 1}] {hit.chunk.text}" for i, hit in enumerate(hits))
    messages = [
        {"role": "system", "content": "Answer from the context only. 只根据资料回答。"},
        {"role": "user", "content": f"{context}\n\n{question}"},
    ]
    completion = backend.complete(messages, max_tokens=64)
    return {"answer": completion.text, "citations": [hit.version.pk for hit in hits], "abstained": not completion.text.strip()}


def rag_answerer() -> Callable:
    path = getattr(settings, "TRAINING_RAG_ANSWERER", "")
    return import_string(path) if path else rag_answer_default


def _rows(evaluation: Evaluation):
    from .datasets.split import split_rows

    rows = list(evaluation.dataset_version.rows.order_by("index"))
    if evaluation.split == "all":
        return rows
    train, validation = split_rows(rows, validation_ratio=evaluation.validation_fraction, seed=evaluation.seed)
    return train if evaluation.split == "train" else validation


def run_evaluation(evaluation: Evaluation, *, progress=lambda f, msg: None) -> tuple[dict, list[dict]]:
    options = evaluation.options or {}
    backend = backend_for_version(evaluation.model_version)
    rows = _rows(evaluation)[: int(options.get("limit", DEFAULT_LIMIT))]
    conversations = [r.messages for r in rows]
    items = m.qa_items(conversations)
    max_new = int(options.get("max_new_tokens", 48))
    robustness = options.get("robustness", True)
    kinds = list(m.PERTURBATIONS) if robustness else []
    total = len(items) * (1 + len(kinds)) + 1
    done = 0

    def answer(prompt: list[dict]) -> str:
        nonlocal done
        done += 1
        if done % 5 == 0:
            progress(done / total, f"{done}/{total} answers")
        return backend.complete(prompt, max_tokens=max_new).text

    predictions = [answer(item["prompt"]) for item in items]
    references = [item["reference"] for item in items]
    metrics = {"n": len(items), **m.score(predictions, references)}
    loaded = backend.loaded
    metrics["perplexity"] = m.perplexity(loaded.model, loaded.tokenizer, conversations)
    per_item = [
        {"question": it["question"], "reference": it["reference"], "prediction": p,
         "exact_match": m.exact_match(p, it["reference"]), "token_f1": round(m.token_f1(p, it["reference"]), 4)}
        for it, p in zip(items, predictions, strict=True)
    ]
    if kinds:
        metrics["robustness"] = {}
        for kind in kinds:
            perturbed = []
            for item in items:
                prompt = [dict(x) for x in item["prompt"]]
                prompt[-1]["content"] = m.perturb(kind, prompt[-1]["content"], evaluation.seed)
                perturbed.append(answer(prompt))
            metrics["robustness"][kind] = m.score(perturbed, references)["exact_match"]
        metrics["robustness_mean"] = sum(metrics["robustness"].values()) / len(kinds)
    if options.get("rag"):
        metrics.update(_rag(evaluation, rows, backend))
    progress(1.0, "done")
    return metrics, per_item


def _rag(evaluation: Evaluation, rows, backend) -> dict:
    answerer = rag_answerer()
    user = evaluation.created_by
    answered = correct = cited = cite_total = abstain_ok = unanswerable = 0
    for row in rows:
        item = m.qa_items([row.messages])
        if not item:
            continue
        result = answerer(question=item[0]["question"], backend=backend, user=user)
        if (row.meta or {}).get("unanswerable"):
            unanswerable += 1
            abstain_ok += int(bool(result.get("abstained")))
            continue
        answered += 1
        correct += int(m.contains(result.get("answer", ""), item[0]["reference"]) or m.token_f1(result.get("answer", ""), item[0]["reference"]) >= 0.5)
        if row.source_version_ids:
            cite_total += 1
            cited += int(bool(set(result.get("citations") or []) & set(row.source_version_ids)))
    out = {"rag_answer_accuracy": correct / answered if answered else None}
    out["rag_citation_accuracy"] = cited / cite_total if cite_total else None
    out["rag_abstention"] = abstain_ok / unanswerable if unanswerable else None
    return out


def comparison(evaluation: Evaluation) -> list[dict]:
    """This evaluation next to the newest ones of the base model and the active version on the same
    dataset version and split: the table and chart of the evaluation page."""
    from .job_services import active_activation

    rows = [("this", evaluation)]
    version = evaluation.model_version
    same = Evaluation.objects.filter(
        dataset_version=evaluation.dataset_version, split=evaluation.split, job__status="succeeded"
    ).exclude(pk=evaluation.pk)
    base = same.filter(model_version__kind=ModelVersionKind.BASE, model_version__base_model_path=version.base_model_path).first()
    if base and version.kind != ModelVersionKind.BASE:
        rows.append(("base", base))
    activation = active_activation()
    if activation and activation.version_id and activation.version_id != version.pk:
        active = same.filter(model_version_id=activation.version_id).first()
        if active:
            rows.append(("active", active))
    return [{"role": role, "evaluation": e, "version": e.model_version, "metrics": e.metrics} for role, e in rows]
