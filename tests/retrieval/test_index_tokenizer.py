"""Chinese segmentation for BM25, the tokenizer signature the index records, and bm25_reindex."""

from collections import Counter

import pytest
from django.core.management import call_command
from django.urls import reverse

from knowledge.models import Chunk
from retrieval import indexing
from retrieval import tokenize as tokenize_module
from retrieval.models import Bm25Posting, Bm25Statistics, Bm25Term
from retrieval.search import search
from retrieval.tokenize import tokenize
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory

from .helpers import published

BIOGRAPHY = "潘淑，会稽句章（今浙江省宁波市）人，孙权的妃子。"
# Says 哪里 and 人 more often than the biography, so only the name can put the biography first.
DISTRACTOR = "这里的人常问别人是哪里人，哪里人都有。"


def hmm_tokenize(text, **kwargs):
    """Tokenizer v1: jieba with its HMM new-word guesser (glues 潘淑 and 是 in the question)."""
    import jieba

    text = tokenize_module.normalize(text)
    return [t for t in jieba.lcut(text) if t.strip() and tokenize_module._WORD.search(t)
            and t not in tokenize_module.STOPWORDS]


@pytest.fixture
def biographies(people, credit):
    kb = KnowledgeBaseFactory(department=credit)
    owner = people["credit_manager"]
    gold, _ = published(kb, owner, "人物", [BIOGRAPHY])
    published(kb, owner, "问答", [DISTRACTOR])
    return kb, gold


def test_question_and_document_cut_an_unknown_name_the_same_way():
    question, document = tokenize("潘淑是哪里人？"), tokenize(BIOGRAPHY)
    assert {"潘", "淑"} <= set(question) & set(document)
    assert "潘淑是" not in question


@pytest.mark.django_db
def test_a_name_followed_by_a_verb_in_the_question_finds_its_document(biographies, people):
    kb, gold = biographies
    hits = search(people["credit_employee"], "潘淑是哪里人？", knowledge_bases=[kb], mode="bm25")
    assert hits[0].chunk.document_id == gold.pk


@pytest.mark.django_db
def test_the_hmm_tokenizer_missed_that_document(biographies, people, monkeypatch):
    """The same corpus indexed and searched with tokenizer v1 ranks the distractor first."""
    kb, gold = biographies
    monkeypatch.setattr(indexing, "tokenize", hmm_tokenize)
    monkeypatch.setattr("retrieval.search.tokenize", hmm_tokenize)
    indexing.index_chunks(chunk_ids=list(Chunk.objects.filter(knowledge_base=kb).values_list("pk", flat=True)))
    hits = search(people["credit_employee"], "潘淑是哪里人？", knowledge_bases=[kb], mode="bm25")
    assert hits[0].chunk.document_id != gold.pk


def python_statistics():
    """N, total length and df recomputed from the chunks with the current tokenizer."""
    chunks = Chunk.objects.filter(searchable=True).select_related("document")
    bags = [Counter(tokenize(indexing.chunk_index_text(title=c.document.title, heading_path=c.heading_path,
                                                       text=c.text))) for c in chunks]
    df = Counter(term for bag in bags for term in bag)
    return len(bags), sum(sum(bag.values()) for bag in bags), df


@pytest.mark.django_db
def test_bm25_reindex_rebuilds_an_index_written_by_an_older_tokenizer(biographies, people, monkeypatch):
    kb, gold = biographies
    chunk_ids = list(Chunk.objects.values_list("pk", flat=True))
    with monkeypatch.context() as patched:
        patched.setattr(indexing, "tokenize", hmm_tokenize)
        indexing.index_chunks(chunk_ids=chunk_ids)
    Bm25Statistics.objects.update(tokenizer="v1")
    assert Bm25Term.objects.filter(term="潘淑").exists()
    manager = login(people["credit_manager"])
    page = manager.get(reverse("retrieval:hit_test"))
    assert 'data-warning="bm25-stale"' in page.content.decode()

    call_command("bm25_reindex")

    hits = search(people["credit_employee"], "潘淑是哪里人？", knowledge_bases=[kb], mode="bm25")
    assert hits[0].chunk.document_id == gold.pk
    stats = Bm25Statistics.objects.get()
    n, total, df = python_statistics()
    assert (stats.chunk_count, stats.total_length, stats.tokenizer) == (n, total, tokenize_module.signature())
    assert dict(Bm25Term.objects.filter(df__gt=0).values_list("term", "df")) == dict(df)
    # Terms only the old tokenizer produced are gone, and no chunk kept an old posting.
    assert not Bm25Term.objects.filter(term="潘淑").exists()
    assert Bm25Posting.objects.filter(term__df=0).count() == 0
    assert 'data-warning="bm25-stale"' not in manager.get(reverse("retrieval:hit_test")).content.decode()


@pytest.mark.django_db
def test_a_user_dictionary_keeps_its_terms_whole_and_marks_the_index_stale(biographies, people, settings, tmp_path):
    kb, _ = biographies
    published(kb, people["credit_manager"], "平台", ["星云平台的账号由信贷部开通。"])
    assert "星云平台" not in tokenize("星云平台的账号")
    assert not indexing.index_is_stale()

    dictionary = tmp_path / "terms.txt"
    dictionary.write_text("星云平台 10 nz\n", encoding="utf-8")
    settings.BM25_USER_DICTIONARY = str(dictionary)
    assert "星云平台" in tokenize("星云平台的账号")
    assert indexing.index_is_stale()
    assert not Bm25Term.objects.filter(term="星云平台").exists()

    call_command("bm25_reindex", "--if-stale")

    assert not indexing.index_is_stale()
    assert Bm25Term.objects.get(term="星云平台").df == 1
    hits = search(people["credit_employee"], "星云平台怎么开通", knowledge_bases=[kb], mode="bm25")
    assert hits[0].chunk.document.title == "平台"
    # Editing the dictionary takes effect in running processes and makes the index stale again.
    dictionary.write_text("星云平台 10 nz\n句章人 10 nz\n", encoding="utf-8")
    assert "句章人" in tokenize("句章人")
    assert indexing.index_is_stale()


def test_a_missing_user_dictionary_is_a_clear_configuration_error(settings, tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    settings.BM25_USER_DICTIONARY = str(tmp_path / "missing.txt")
    with pytest.raises(ImproperlyConfigured, match="BM25_USER_DICTIONARY"):
        tokenize("星云平台")
