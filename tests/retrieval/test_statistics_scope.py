"""BM25's statistics (chunk count, average length, df) count only the knowledge bases the asker
may read. Counted company-wide, a score told an employee whether a word occurs in another
department's knowledge, and about how often."""

import pytest
from django.test import Client

from knowledge.models import Chunk
from retrieval.indexing import (
    term_idf,
    chunks_delete,
    collection_statistics,
    scope_statistics,
    scope_term_df,
    statistics_rebuild,
    statistics_rollup,
)
from retrieval.models import Bm25KnowledgeBaseStatistics, Bm25KnowledgeBaseTerm, Bm25StatisticsDelta
from retrieval.search import bm25_search, search
from retrieval.tokenize import tokenize
from tests.factories import KnowledgeBaseFactory

from .helpers import published, set_searchable
from .test_search import python_bm25


def _search_api(client, query):
    response = client.post("/api/retrieval/search/", {"query": query, "mode": "bm25", "k": 5},
                           content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_word_only_in_another_departments_knowledge_moves_no_score_the_user_sees(people, credit, hr):
    credit_kb = KnowledgeBaseFactory(department=credit)
    hr_kb = KnowledgeBaseFactory(department=hr)
    published(credit_kb, people["credit_manager"], "Loans", ["The personal loan rate is fixed for five years."])
    published(hr_kb, people["hr_manager"], "Layoffs", ["Confidential: the layoff list names zhangwei and lisi."])
    client = Client()
    client.force_login(people["credit_employee"])
    with_hr_word = _search_api(client, "loan layoff")
    with_unknown_word = _search_api(client, "loan quorbifax")
    assert with_hr_word["relevance"] is not None
    assert with_hr_word["relevance"] == with_unknown_word["relevance"]
    assert [h["score"] for h in with_hr_word["results"]] == [h["score"] for h in with_unknown_word["results"]]
    # Chat's extractive answers weigh the question's words the same way.
    credit_only = [credit_kb.pk]
    assert term_idf(["layoff"], credit_only)["layoff"] == term_idf(["quorbifax"], credit_only)["quorbifax"]
    assert term_idf(["layoff"], [credit_kb.pk, hr_kb.pk])["layoff"] < term_idf(["quorbifax"], credit_only)["quorbifax"]
    # HR's employee, who reads the memo, gets the word's weight.
    client.force_login(people["hr_employee"])
    assert _search_api(client, "layoff")["results"]


def _readable_documents(kb_ids):
    from retrieval.indexing import chunk_index_text

    chunks = Chunk.objects.filter(searchable=True, knowledge_base_id__in=kb_ids).select_related("document")
    return {c.pk: tokenize(chunk_index_text(title=c.document.title, heading_path=c.heading_path, text=c.text))
            for c in chunks}


def test_scores_equal_a_plain_bm25_over_what_the_user_reads_through_deltas_rollup_and_rebuild(people, credit, hr):
    credit_kb = KnowledgeBaseFactory(department=credit)
    hr_kb = KnowledgeBaseFactory(department=hr)
    _, loan_chunks = published(credit_kb, people["credit_manager"], "Loan approval",
                               ["Loan applications above one million need approval by the credit committee.",
                                "The credit committee meets every Tuesday."])
    published(credit_kb, people["credit_manager"], "Cards", ["Card limits are reviewed every year by the committee."])
    _, hr_chunks = published(hr_kb, people["hr_manager"], "Leave",
                             ["The committee on leave: twenty days; loan of leave days is not allowed.",
                              "Committee members approve leave above ten days.", "Committee of the works council."])
    query = "loan approval committee"
    employee = people["credit_employee"]

    def check():
        expected = python_bm25(_readable_documents([credit_kb.pk]), tokenize(query))
        got = dict(bm25_search(employee, query, k=100))
        assert got == {cid: pytest.approx(score, rel=1e-9) for cid, score in expected.items()}
        # Per knowledge base, deltas included, the rows add up to the company-wide ones.
        assert scope_statistics([credit_kb.pk, hr_kb.pk]) == collection_statistics()
        assert scope_term_df([credit_kb.pk], ["committee"])["committee"][1] == sum(
            "committee" in terms for terms in _readable_documents([credit_kb.pk]).values())

    check()
    assert Bm25StatisticsDelta.objects.exists()
    statistics_rollup()
    assert not Bm25StatisticsDelta.objects.exists()
    assert Bm25KnowledgeBaseStatistics.objects.get(knowledge_base_id=hr_kb.pk).chunk_count == 3
    check()
    # HR's chunks stop being searchable, then are deleted: still only Credit counts for Credit.
    set_searchable(hr_chunks[:1], False)
    check()
    chunks_delete(chunk_ids=[c.pk for c in hr_chunks[1:]])
    set_searchable(loan_chunks[:1], False)
    check()
    statistics_rollup()
    check()
    rolled = {(r.term_id, r.knowledge_base_id): r.df for r in Bm25KnowledgeBaseTerm.objects.filter(df__gt=0)}
    statistics_rebuild()
    assert {(r.term_id, r.knowledge_base_id): r.df for r in Bm25KnowledgeBaseTerm.objects.all()} == rolled
    check()


def test_a_user_who_reads_nothing_gets_no_bm25_statistics(people, credit):
    kb = KnowledgeBaseFactory(department=credit)
    published(kb, people["credit_manager"], "Loans", ["Loan approval by the committee."])
    assert search(people["outsider"], "loan committee", mode="bm25").no_answer
    assert search(people["credit_employee"], "loan committee", mode="bm25")[0].chunk.knowledge_base_id == kb.pk
