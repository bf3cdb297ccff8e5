import pytest

from chat.models import Assistant
from tests.factories import KnowledgeBaseFactory
from tests.retrieval.helpers import published


@pytest.fixture
def kb_corpus(people, credit, hr):
    credit_kb = KnowledgeBaseFactory(department=credit, name="Credit policies")
    hr_kb = KnowledgeBaseFactory(department=hr, name="HR handbook")
    loans, loan_chunks = published(
        credit_kb, people["credit_manager"], "Loan approval",
        ["Loan applications above one million yuan need approval by the credit committee.",
         "The credit committee meets every Tuesday to approve large loans."],
    )
    zh, zh_chunks = published(
        credit_kb, people["credit_manager"], "贷款审批",
        ["超过一百万元的贷款申请需要信贷委员会审批。信贷委员会每周二开会。"],
    )
    leave, leave_chunks = published(
        hr_kb, people["hr_manager"], "Annual leave secret",
        ["Employees receive twenty days of annual leave; the salary bands are confidential."],
    )
    return {"credit_kb": credit_kb, "hr_kb": hr_kb, "loans": loans, "leave": leave, "zh": zh,
            "loan_chunks": loan_chunks, "leave_chunks": leave_chunks, "zh_chunks": zh_chunks}


@pytest.fixture
def company_assistant(db):
    # Transactional tests flush the row the data migration created: make it again then.
    return Assistant.objects.get_or_create(is_default=True, defaults={"name": "Company assistant"})[0]
