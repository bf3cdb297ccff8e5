import pytest

from chat.models import Conversation, Feedback, Message, MessageStatus
from tests.conftest import login

from .helpers import ask


@pytest.mark.django_db
def test_ask_streams_sources_answer_and_done_and_stores_the_answer(kb_corpus, people, company_assistant):
    client = login(people["credit_employee"])
    events = ask(client, company_assistant, "Who approves loan applications above one million yuan?")
    types = [t for t, _ in events]
    assert types[0] == "start" and types[1] == "sources" and types[-1] == "done"
    assert "answer" in types
    done = events[-1][1]
    assert done["status"] == "done" and done["extractive"] is True
    assert "credit committee" in done["answer"] and "[1]" in done["answer"]
    assert 'class="cite"' in done["html"]
    assert "timings" not in done, "per-stage timings are for admins only"
    message = Message.objects.get(pk=done["message_id"])
    assert message.content == done["answer"] and message.status == MessageStatus.DONE
    citation = message.citations.get(marker=done["citations"][0]["n"])
    assert citation.cited and citation.version_ref == kb_corpus["loans"].live_version_id
    # The page shows the conversation with the answer and its sources panel.
    page = client.get(f"/chat/?c={message.conversation_id}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Loan approval" in html and "Extractive answer" in html and 'class="cite"' in html


@pytest.mark.django_db
def test_admins_see_per_stage_timings(kb_corpus, people, company_assistant):
    client = login(people["superuser"])
    done = ask(client, company_assistant, "Who approves loan applications above one million yuan?")[-1][1]
    for stage in ("condense_ms", "retrieve_ms", "rerank_ms", "prompt_ms", "first_token_ms", "total_ms"):
        assert stage in done["timings"]


@pytest.mark.django_db
def test_bad_input_gets_a_clear_message_and_stores_nothing(kb_corpus, people, company_assistant):
    client = login(people["credit_employee"])
    before = Message.objects.count()
    for question in ["", "   ", "x" * 20000]:
        events = ask(client, company_assistant, question)
        assert [t for t, _ in events] == ["error"]
        assert events[0][1]["message"]
    events = client.post("/chat/ask/", {"assistant": 999999, "question": "hello"})
    from .helpers import sse_events

    assert sse_events(events)[0][1]["message"].startswith("That assistant does not exist")
    assert Message.objects.count() == before


@pytest.mark.django_db
def test_conversations_rename_delete_and_owner_only(kb_corpus, people, company_assistant):
    client = login(people["credit_employee"])
    ask(client, company_assistant, "Who approves loans?")
    conversation = Conversation.objects.get(user=people["credit_employee"])
    assert client.post(f"/chat/conversations/{conversation.pk}/rename/", {"title": "Loans"}).status_code == 302
    conversation.refresh_from_db()
    assert conversation.title == "Loans"
    other = login(people["credit_manager"])
    assert other.get(f"/chat/?c={conversation.pk}").status_code == 404
    assert other.post(f"/chat/conversations/{conversation.pk}/delete/").status_code == 404
    assert "Loans" not in other.get("/chat/").content.decode()
    assert client.post(f"/chat/conversations/{conversation.pk}/delete/").status_code == 302
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


@pytest.mark.django_db
def test_feedback_keeps_question_chunks_answer_and_correction(kb_corpus, people, company_assistant):
    client = login(people["credit_employee"])
    done = ask(client, company_assistant, "Who approves loan applications above one million yuan?")[-1][1]
    response = client.post(f"/chat/messages/{done['message_id']}/feedback/",
                           {"rating": "-1", "correction": "The credit committee, on Tuesdays."})
    assert response.status_code == 200
    feedback = Feedback.objects.get()
    message = Message.objects.get(pk=done["message_id"])
    assert feedback.rating == -1 and feedback.correction == "The credit committee, on Tuesdays."
    assert feedback.question == message.question and feedback.answer == message.content
    assert feedback.retrieved_chunk_ids == [r["chunk_id"] for r in message.retrieved] and feedback.retrieved_chunk_ids
    assert feedback.user == people["credit_employee"] and feedback.created_at
    # Someone else cannot rate it.
    assert login(people["hr_employee"]).post(f"/chat/messages/{done['message_id']}/feedback/",
                                             {"rating": "1"}).status_code == 404
    assert client.post(f"/chat/messages/{done['message_id']}/feedback/", {"rating": "7"}).status_code == 400


@pytest.mark.django_db
def test_regenerate_answers_the_same_question_again(kb_corpus, people, company_assistant):
    client = login(people["credit_employee"])
    done = ask(client, company_assistant, "Who approves loan applications above one million yuan?")[-1][1]
    from .helpers import sse_events

    events = sse_events(client.post(f"/chat/messages/{done['message_id']}/regenerate/"))
    assert events[-1][0] == "done"
    again = Message.objects.get(pk=events[-1][1]["message_id"])
    assert again.regenerated_from_id == done["message_id"] and again.question == Message.objects.get(pk=done["message_id"]).question
    assert Message.objects.filter(role="user").count() == 1


@pytest.mark.django_db
def test_the_built_in_assistant_reads_in_the_readers_language_until_renamed(people):
    # The migration's default assistant (English name in the database, also its /v1 model id).
    from chat.models import BUILT_IN_ASSISTANT_NAME, Assistant

    # (A transactional test earlier in the run may have flushed the migration's row.)
    assistant = Assistant.objects.get_or_create(is_default=True, defaults={"name": BUILT_IN_ASSISTANT_NAME})[0]
    assert assistant.name == "Company assistant"
    client = login(people["credit_employee"])
    client.cookies.load({"django_language": "zh-hans"})
    page = client.get("/chat/").content.decode()
    assert "公司助手" in page and "Company assistant" not in page
    client.cookies.load({"django_language": "en"})
    assert "Company assistant" in client.get("/chat/").content.decode()
    assistant.name = "Loans desk"
    assistant.save()
    client.cookies.load({"django_language": "zh-hans"})
    page = client.get("/chat/").content.decode()
    assert "Loans desk" in page and "公司助手" not in page
