"""The path to the first streamed byte stays a search and a prompt: the number of SQL queries it
runs is small and does not grow with the number of sources or the length of the history."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.models import Conversation, Message, MessageStatus, Role
from chat.pipeline import answer_stream
from retrieval.search import search
from tests.factories import KnowledgeBaseFactory
from tests.retrieval.helpers import published


def queries_to_first_byte(**kwargs):
    """(SQL statements up to the first answer delta, the events of the whole stream)."""
    stream = answer_stream(**kwargs)
    events = []
    with CaptureQueriesContext(connection) as captured:
        for event in stream:
            events.append(event)
            if event.type == "answer":
                break
    events.extend(stream)
    return [q["sql"] for q in captured.captured_queries], events


def search_queries(user, question, **kwargs):
    with CaptureQueriesContext(connection) as captured:
        search(user, question, **kwargs)
    return len(captured.captured_queries)


@pytest.mark.django_db
def test_queries_to_the_first_byte_are_few_and_flat(people, credit, company_assistant):
    kb = KnowledgeBaseFactory(department=credit, name="Credit policies")
    user = people["credit_employee"]
    published(kb, people["credit_manager"], "Loan approval",
              ["Loan applications above one million yuan need approval by the credit committee."])
    question = "Who approves loan applications above one million yuan?"
    search(user, question, k=5)  # warm per-process caches (the active space, the URL resolver)
    bare = search_queries(user, question, k=5)

    new, events = queries_to_first_byte(user=user, assistant=company_assistant, question=question)
    assert events[-1].type == "done" and events[-1].status == MessageStatus.DONE, events[-1]
    assert len(next(e for e in events if e.type == "sources").sources) == 1
    # A follow-up in a short conversation, one source.
    short, events = queries_to_first_byte(user=user, assistant=company_assistant, question=question,
                                          conversation=Conversation.objects.get(pk=events[0].conversation_id))
    assert events[-1].type == "done" and len(next(e for e in events if e.type == "sources").sources) == 1

    # More sources and a long conversation: the same number of statements.
    for i in range(6):
        published(kb, people["credit_manager"], f"Loan rule {i}",
                  [f"Loan applications of kind {i} above one million yuan need approval by the credit committee."])
    company_assistant.retrieval_settings = {"k": 6}
    company_assistant.save()
    conversation = Conversation.objects.create(user=user, assistant=company_assistant, title="long")
    Message.objects.bulk_create(
        [Message(conversation=conversation, role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
                 status=MessageStatus.DONE, content=f"turn {i} about loans") for i in range(400)])
    long, events = queries_to_first_byte(user=user, assistant=company_assistant, question=question,
                                         conversation=conversation)
    assert events[-1].type == "done" and events[-1].status == MessageStatus.DONE, events[-1]
    assert len(next(e for e in events if e.type == "sources").sources) == 6
    assert len(long) == len(short), "\n".join(long)
    assert len(new) <= len(short)
    # What the chat adds to the bare search: the assistant check with its knowledge bases, the
    # stored turn (begin, history, the two messages in one insert, commit) and the terms' IDF.
    assert len(short) - bare <= 6, "\n".join(short)

    # The turn was stored before the first byte, and finished after it.
    message = Message.objects.get(pk=events[0].message_id)
    assert message.status == MessageStatus.DONE and message.citations.count() == 6
    assert Message.objects.get(pk=events[0].user_message_id).content == question
    conversation.refresh_from_db()
    assert conversation.updated_at >= message.finished_at
