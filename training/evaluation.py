"""An evaluation job: closed-book QA, perplexity, robustness and (optionally) the RAG setting, for
one model version on one dataset version's split. The RAG setting asks the chat's own pipeline
(chat.pipeline.answer) with the model version as its backend; training imports chat, never the
reverse."""

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


def rag_answer_pipeline(*, question: str, version: ModelVersion, assistant, user, max_tokens: int) -> dict:
    """One question through the chat's own pipeline (retrieval as `user`, the assistant's prompt,
    knowledge bases and thresholds, citation verification) with `version` as the model. The
    conversation it stores is an evaluation artefact and is deleted afterwards. `knowledge_base_ids`:
    those of the passages retrieved (another answerer that omits it counts as all `user` may read)."""
    from chat.models import Assistant, Conversation, EndpointKind, ModelEndpoint
    from chat.pipeline import answer as chat_answer
    from knowledge.models import Document

    from .job_selectors import model_version_serving

    evaluating = Assistant.objects.get(pk=assistant.pk)  # a private copy: the endpoint is replaced in memory only
    evaluating.endpoint = ModelEndpoint(name="evaluation", kind=EndpointKind.FINETUNED, enabled=True, temperature=0.0)
    evaluating.retrieval_settings = {**(assistant.retrieval_settings or {}), "max_tokens": max_tokens}
    with model_version_serving(version):
        # An evaluation's questions are no use of the chat: they do not eat the department's quota.
        final, events = chat_answer(user=user, assistant=evaluating, question=question, channel="api", charge=False)
    started = next((e for e in events if e.type == "start"), None)
    if started is not None:
        Conversation.objects.filter(pk=started.conversation_id).delete()
    # the model saw every retrieved passage, cited or not: the answer may quote any of them
    documents = {s["document_id"] for e in events if e.type == "sources" for s in e.sources}
    knowledge_base_ids = sorted(set(
        Document.objects.filter(pk__in=documents).values_list("knowledge_base_id", flat=True)
    ))
    if final.type != "done":
        return {"answer": "", "citations": [], "abstained": False, "error": final.message,
                "knowledge_base_ids": knowledge_base_ids}
    return {
        "answer": final.answer,
        "citations": sorted({c["version_id"] for c in final.citations}),
        "abstained": final.status == "no_knowledge",
        "backend": final.backend,
        "knowledge_base_ids": knowledge_base_ids,
    }


def rag_answerer() -> Callable:
    path = getattr(settings, "TRAINING_RAG_ANSWERER", "")
    return import_string(path) if path else rag_answer_pipeline


def rag_assistant(evaluation: Evaluation):
    """The assistant whose settings the RAG evaluation uses: the one named in the options, else the
    default one of the evaluation's author; None when they may use none."""
    from chat.selectors import assistant_default, assistant_get

    user = evaluation.created_by
    if user is None:
        return None
    wanted = (evaluation.options or {}).get("assistant")
    if wanted:
        try:
            return assistant_get(user=user, pk=wanted)
        except Exception:  # not found or not allowed: the same answer
            return None
    return assistant_default(user=user)


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
    """Answer accuracy, citation accuracy and abstention, through the chat pipeline. The samples'
    knowledge bases are recorded on the evaluation: only users who may read them all see the samples."""
    from knowledge.policy import knowledge_base_policy

    from .job_services import evaluation_rag_knowledge_record

    answerer = rag_answerer()
    assistant = rag_assistant(evaluation)
    if assistant is None:
        return {"rag_error": "No assistant is available to the evaluation's author: the RAG setting was not measured."}
    user = evaluation.created_by
    max_tokens = int((evaluation.options or {}).get("max_new_tokens", 48))
    answered = correct = cited = cite_total = abstain_ok = unanswerable = wrongly_abstained = 0
    samples = []
    sample_knowledge: set[int] = set()
    for row in rows:
        item = m.qa_items([row.messages])
        if not item:
            continue
        question, reference = item[0]["question"], item[0]["reference"]
        result = answerer(question=question, version=evaluation.model_version, assistant=assistant, user=user,
                          max_tokens=max_tokens)
        if len(samples) < 20:
            samples.append({"question": question, "reference": reference, "answer": result.get("answer", ""),
                            "citations": result.get("citations", []), "abstained": bool(result.get("abstained"))})
            sample_knowledge |= set(result["knowledge_base_ids"] if "knowledge_base_ids" in result
                                    else knowledge_base_policy.readable_ids(user))
        if (row.meta or {}).get("unanswerable"):
            unanswerable += 1
            abstain_ok += int(bool(result.get("abstained")))
            continue
        answered += 1
        wrongly_abstained += int(bool(result.get("abstained")))
        text = result.get("answer", "")
        correct += int(bool(m.contains(text, reference) or m.token_f1(text, reference) >= 0.5))
        if row.source_version_ids:
            cite_total += 1
            cited += int(bool(set(result.get("citations") or []) & set(row.source_version_ids)))
    out = {"rag_answer_accuracy": correct / answered if answered else None}
    out["rag_citation_accuracy"] = cited / cite_total if cite_total else None
    out["rag_abstention"] = abstain_ok / unanswerable if unanswerable else None
    out["rag_abstained_when_answerable"] = wrongly_abstained / answered if answered else None
    out["rag_assistant"] = assistant.name
    out["rag_samples"] = samples
    evaluation_rag_knowledge_record(evaluation=evaluation, knowledge_base_ids=sample_knowledge)
    return out


def comparison(evaluation: Evaluation, *, user) -> list[dict]:
    """This evaluation next to the newest ones of the base model and the active version on the same
    dataset version and split, among those `user` may see: the table and chart of the evaluation page."""
    from .job_selectors import evaluation_list
    from .job_services import active_activation

    rows = [("this", evaluation)]
    version = evaluation.model_version
    same = evaluation_list(user=user).filter(
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
