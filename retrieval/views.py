"""The hit-testing page: try a query against a knowledge base, keep test sets and their runs."""

from __future__ import annotations

import json

from django import forms
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from knowledge.selectors import managed_knowledge_bases

from . import search as search_module
from . import selectors, services
from .indexing import index_is_stale

MODE_CHOICES = [
    ("hybrid", _("Hybrid")),
    ("bm25", _("BM25 (keywords)")),
    ("dense", _("Dense (embeddings)")),
    ("hybrid_rerank", _("Hybrid + rerank")),
]


class HitTestForm(forms.Form):
    knowledge_base = forms.TypedChoiceField(label=_("Knowledge base"), coerce=int)
    query = forms.CharField(label=_("Query"), max_length=1000)
    mode = forms.ChoiceField(label=_("Mode"), choices=MODE_CHOICES, initial="hybrid")

    def __init__(self, *args, knowledge_bases, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["knowledge_base"].choices = [(kb.pk, kb.name) for kb in knowledge_bases]


class TestSetForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)


class TestQueryForm(forms.Form):
    query = forms.CharField(label=_("Query"), max_length=1000)
    expected_documents = forms.TypedMultipleChoiceField(label=_("Expected documents"), coerce=int)

    def __init__(self, *args, documents, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expected_documents"].choices = [(d.pk, d.title) for d in documents]


def hit_test(request):
    knowledge_bases = list(managed_knowledge_bases(user=request.user))
    # Only a submitted search binds the form: arriving from a knowledge base's page (or the top bar)
    # preselects it without greeting the manager with "This field is required".
    submitted = "query" in request.GET
    initial = {"knowledge_base": request.GET.get("knowledge_base"), "mode": "hybrid"}
    form = HitTestForm(request.GET if submitted else None, initial=initial, knowledge_bases=knowledge_bases)
    results, knowledge_base = None, None
    if form.is_valid():
        knowledge_base = selectors.managed_knowledge_base_get(user=request.user, pk=form.cleaned_data["knowledge_base"])
        results = search_module.search(
            request.user, form.cleaned_data["query"], knowledge_bases=[knowledge_base], mode=form.cleaned_data["mode"],
            record=False,
        )
    elif knowledge_bases:
        chosen = [kb for kb in knowledge_bases if str(kb.pk) == str(request.GET.get("knowledge_base"))]
        knowledge_base = (chosen or knowledge_bases)[0]
    context = {
        "form": form,
        "results": results,
        "knowledge_base": knowledge_base,
        "knowledge_bases": knowledge_bases,
        "rerank_available": search_module.rerank_available(),
        "index_stale": index_is_stale(),
        "test_sets": selectors.hit_test_set_list(user=request.user),
        "set_form": TestSetForm(),
    }
    return render(request, "retrieval/hit_test.html", context)


@require_POST
def test_set_create(request, kb_pk):
    knowledge_base = selectors.managed_knowledge_base_get(user=request.user, pk=kb_pk)
    form = TestSetForm(request.POST)
    if form.is_valid():
        test_set = services.hit_test_set_create(
            actor=request.user, knowledge_base=knowledge_base, name=form.cleaned_data["name"]
        )
        return redirect("retrieval:test_set", pk=test_set.pk)
    return redirect("retrieval:hit_test")


def test_set_detail(request, pk):
    test_set = selectors.hit_test_set_get(user=request.user, pk=pk)
    documents = selectors.expected_document_choices(user=request.user, knowledge_base=test_set.knowledge_base)
    form = TestQueryForm(request.POST or None, documents=documents)
    if request.method == "POST" and form.is_valid():
        chosen = [d for d in documents if d.pk in set(form.cleaned_data["expected_documents"])]
        services.hit_test_query_add(test_set=test_set, query=form.cleaned_data["query"], expected_documents=chosen)
        return redirect("retrieval:test_set", pk=test_set.pk)
    runs = list(selectors.hit_test_run_history(user=request.user, test_set=test_set))
    chart = {
        "labels": [run.created_at.strftime("%Y-%m-%d %H:%M") for run in runs if run.metrics],
        "series": {},
    }
    for run in runs:
        for mode, values in run.metrics.items():
            chart["series"].setdefault(mode, []).append(values.get("mrr@10"))
    context = {
        "test_set": test_set,
        "queries": test_set.queries.prefetch_related("expected_documents"),
        "form": form,
        "run_rows": _run_rows(reversed(runs)),
        "chart_json": json.dumps(chart),
    }
    return render(request, "retrieval/test_set.html", context, status=400 if form.errors else 200)


@require_POST
def test_set_run(request, pk):
    test_set = selectors.hit_test_set_get(user=request.user, pk=pk)
    services.hit_test_run_start(actor=request.user, test_set=test_set)
    return redirect("retrieval:test_set", pk=test_set.pk)


def _run_rows(runs) -> list[dict]:
    rows = []
    for run in runs:
        if not run.metrics:
            rows.append({"run": run, "mode": None})
        for mode, m in run.metrics.items():
            rows.append({"run": run, "mode": mode, "r1": m.get("recall@1"), "r5": m.get("recall@5"),
                         "r10": m.get("recall@10"), "mrr": m.get("mrr@10")})
    return rows
