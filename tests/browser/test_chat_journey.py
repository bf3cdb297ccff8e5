"""The employee journey in real Chromium: ask → streamed answer → click a citation → the passage
highlighted in its version; thumbs down with a correction; stop mid-stream."""

import time

import pytest
from playwright.sync_api import expect

from chat.models import Feedback, Message, MessageStatus
from chat.services import endpoint_save
from tests.browser.conftest import login
from tests.chat.conftest import company_assistant, kb_corpus  # noqa: F401 - fixtures
from tests.chat.fake_openai import FakeOpenAI

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _patient(page):
    # The shared 2-core machine answers slowly under load; the journey is the same.
    page.set_default_timeout(60_000)
    page.set_default_navigation_timeout(60_000)
    expect.set_options(timeout=60_000)
    yield
    expect.set_options(timeout=5_000)


def test_ask_read_cited_passage_and_correct(page, people, kb_corpus, company_assistant):  # noqa: F811
    login(page, people["credit_employee"])
    page.goto("/chat/")
    page.fill("#question", "Who approves loan applications above one million yuan?")
    page.click("#send")
    answer = page.locator("article.turn.assistant").last
    cite = answer.locator(".answer-body a.cite").first
    expect(cite).to_be_visible()
    expect(answer.locator(".answer-body")).to_contain_text("credit committee")
    expect(answer.locator(".extractive-label")).to_be_visible()
    expect(answer.locator(".sources-panel")).to_contain_text("Loan approval")

    # Thumbs down with a correction.
    answer.locator('.rate[data-rating="-1"]').click()
    answer.locator(".feedback-form textarea").fill("The credit committee, which meets on Tuesdays.")
    answer.locator(".feedback-form button[type=submit]").click()
    expect(answer.locator(".feedback-status")).to_contain_text("feedback was saved")
    feedback = Feedback.objects.get()
    assert feedback.rating == -1 and feedback.correction == "The credit committee, which meets on Tuesdays."

    # The citation opens the exact version with the passage highlighted.
    with page.expect_navigation():
        cite.click()
    mark = page.locator("mark#cited-passage")
    expect(mark).to_have_text("Loan applications above one million yuan need approval by the credit committee.")
    expect(page.locator("h1")).to_contain_text("Loan approval")
    expect(page.locator("h1 .badge")).to_have_text("version 1")


def test_stop_mid_stream_keeps_the_partial_answer(page, people, kb_corpus, company_assistant):  # noqa: F811
    with FakeOpenAI() as server:
        server.delay = 0.25
        server.answer_pieces = [f"word{i} " for i in range(60)]
        company_assistant.endpoint = endpoint_save(actor=people["superuser"], name="slow", kind="openai",
                                                   base_url=server.base_url, model="m")
        company_assistant.save()
        login(page, people["credit_employee"])
        page.goto("/chat/")
        page.fill("#question", "Who approves loan applications above one million yuan?")
        page.click("#send")
        answer = page.locator("article.turn.assistant").last
        expect(answer.locator(".answer-body")).to_contain_text("word2")
        page.click("#stop")
        expect(answer).to_have_class("turn assistant status-stopped")
        deadline = time.time() + 10
        while time.time() < deadline:
            message = Message.objects.filter(role="assistant").order_by("-pk").first()
            if message and message.status != MessageStatus.STREAMING:
                break
            time.sleep(0.2)
        assert message.status == MessageStatus.STOPPED
        assert message.content.startswith("word0 word1 word2") and "word59" not in message.content
