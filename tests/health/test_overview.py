"""The overview's chat figures count the questions of the watcher's departments only."""

from chat.models import Conversation, Feedback, Message, MessageStatus
from health.selectors import overview


def ask(user, status=MessageStatus.DONE, rated=False):
    conversation = Conversation.objects.create(user=user)
    Message.objects.create(conversation=conversation, role="user", content="q")
    answer = Message.objects.create(conversation=conversation, role="assistant", status=status, question="q")
    if rated:
        Feedback.objects.create(message=answer, user=user, rating=-1, question="q", answer="a")
    return answer


def test_chat_figures_are_scoped_to_the_departments(people, client_for):
    ask(people["credit_employee"], MessageStatus.NO_KNOWLEDGE)
    ask(people["credit_employee"], rated=True)
    ask(people["hr_employee"])
    credit = overview(user=people["credit_manager"])
    hr = overview(user=people["hr_manager"])
    assert (credit["questions"], credit["no_answer_rate"], credit["feedback_rate"]) == (2, 50.0, 50.0)
    assert (hr["questions"], hr["no_answer_rate"], hr["feedback_rate"]) == (1, 0, 0)
    assert credit["trend"]["questions"][-1] == 2 and hr["trend"]["questions"][-1] == 1
    assert credit["running_training_jobs"] == 0
    page = client_for(people["hr_manager"]).get("/health/").content.decode()
    assert 'data-figure="questions"><b>1</b>' in page
