import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.django_db(transaction=True)

ALL = {"knowledge", "chat", "training", "compliance", "admin", "health"}


@pytest.mark.parametrize(
    "username,expected",
    [
        ("credit_manager", {"knowledge", "chat", "hit-testing", "health"}),
        ("credit_employee", {"knowledge", "chat"}),
        ("reviewer", {"knowledge", "chat", "compliance", "health"}),
        ("superuser", ALL | {"hit-testing"}),
    ],
)
def test_nav_entries_per_role(page, people, username, expected):
    login(page, people[username])
    page.goto("/")
    shown = set(page.eval_on_selector_all("nav.mainnav [data-nav]", "els => els.map(e => e.dataset.nav)"))
    assert shown == expected
    for entry in shown:
        # every entry leads to a page the user may open
        response = page.goto(page.get_attribute(f'[data-nav="{entry}"]', "href"))
        assert response.status == 200, entry
