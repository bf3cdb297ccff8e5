def test_every_page_sends_a_strict_content_security_policy(people, client_for):
    client = client_for(people["credit_employee"])
    for url in ("/", "/knowledge/", "/accounts/profile/"):
        policy = client.get(url).headers["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split("style-src")[0], url


def test_pages_have_no_inline_event_handlers_or_scripts(people, client_for):
    import re

    client = client_for(people["superuser"])
    for url in ("/", "/people/", "/knowledge/", "/system/", "/accounts/profile/"):
        html = client.get(url).content.decode()
        assert not re.search(r"\son[a-z]+=", html), url
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
