"""Every URL in the URL conf refuses anonymous users, except a short public list.

The test walks the URL conf, so a URL added later is covered without touching this file.
"""

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

PUBLIC_NAMES = {
    "accounts:login",
    "set_language",
    "favicon",
    "api-token",  # exchanges a username and password for a token
    "admin:login",
    "admin:logout",
    "admin:password_reset",
    "admin:password_reset_done",
    "admin:password_reset_confirm",
    "admin:password_reset_complete",
    "admin:view_on_site",  # redirects to the object, whose own URL is protected
    "admin:jsi18n",
}

SAMPLE_BY_CONVERTER = {"drf_format_suffix": ".json", "int": "1", "uuid": str(uuid.UUID(int=1)), "slug": "x", "str": "x", "path": "x"}
SAMPLES_BY_GROUP = {"format": "json", "pk": "1", "app_label": "accounts", "object_id": "1", "content_type_id": "1"}


def _route_sample(route: str) -> str:
    return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: SAMPLE_BY_CONVERTER.get(m.group(1) or "str", "x"), route)


def _regex_sample(regex: str) -> str | None:
    """A concrete path for a regex pattern: each named group gets a sample that its sub-pattern accepts."""

    def fill(match: re.Match) -> str:
        name, sub = match.group(1), match.group(2)
        for sample in (SAMPLES_BY_GROUP.get(name), "1", "x", "accounts"):
            if sample is not None and re.fullmatch(sub, sample):
                return sample
        return "x"

    candidate = re.sub(r"\(\?P<(\w+)>([^)]*)\)", fill, regex)
    candidate = candidate.replace("\\Z", "").lstrip("^").rstrip("$").replace("/?", "/").replace("\\.", ".")
    return candidate if re.fullmatch(regex, candidate) else None


def _walk(resolvers, prefix="", namespace=""):
    for entry in resolvers:
        pattern = entry.pattern
        if isinstance(pattern, RoutePattern):
            piece = _route_sample(str(pattern))
        elif isinstance(pattern, RegexPattern):
            piece = _regex_sample(pattern.regex.pattern)
            if piece is None:
                continue
        else:  # LocalePrefixPattern and friends
            piece = ""
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, prefix + piece, ns)
        elif isinstance(entry, URLPattern):
            yield f"{namespace}{entry.name}" if entry.name else None, "/" + prefix + piece


ALL_URLS = sorted({(name or "", url) for name, url in _walk(get_resolver().url_patterns)}, key=lambda x: x[1])
PROTECTED = [(name, url) for name, url in ALL_URLS if name not in PUBLIC_NAMES]


def test_the_walk_finds_the_known_urls():
    urls = {url for _, url in ALL_URLS}
    names = {name for name, _ in ALL_URLS}
    assert {"/", "/people/", "/api/me/", "/api/departments/1/"} <= urls
    assert {"core:home", "people:index", "knowledge:index", "admin:index"} <= names
    assert len(PROTECTED) > 30


@pytest.mark.parametrize("name,url", PROTECTED, ids=[f"{n or '-'} {u}" for n, u in PROTECTED])
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_is_refused(client, db, name, url, method):
    response = getattr(client, method)(url)
    if url.startswith(("/api/", "/v1/")):  # API-key endpoints answer 401, never redirect
        assert response.status_code in (401, 403), (url, response.status_code)
        return
    assert response.status_code == 302, (url, response.status_code)
    location = response["Location"]
    assert location.startswith("/accounts/login/") or location.startswith("/django-admin/login/"), location


def test_a_user_gets_the_same_404_for_missing_and_forbidden(client, people):
    from accounts.models import Membership

    hidden = Membership.objects.get(user=people["hr_employee"])
    client.force_login(people["credit_employee"])
    assert client.get(f"/api/memberships/{hidden.pk}/").status_code == 404
    assert client.get("/api/memberships/999999/").status_code == 404
