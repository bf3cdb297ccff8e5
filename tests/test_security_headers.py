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


def test_https_deployments_send_strict_transport_security_and_secure_cookies():
    """With HTTPS=1 (DEBUG off) settings turn on HSTS and secure cookies; behind a TLS proxy,
    TRUST_X_FORWARDED_PROTO makes its forwarded scheme count. Read in a fresh process, as at start."""
    import json
    import os
    import subprocess
    import sys

    def settings_with(**env):
        code = ("import json, django; django.setup(); from django.conf import settings as s; "
                "print(json.dumps([s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
                "getattr(s, 'SECURE_PROXY_SSL_HEADER', None)]))")
        base = {k: v for k, v in os.environ.items() if k not in ("HTTPS", "SECURE_HSTS_SECONDS", "TRUST_X_FORWARDED_PROTO", "DEBUG")}
        out = subprocess.run([sys.executable, "-c", code], env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
                             capture_output=True, text=True, check=True, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert settings_with(DEBUG="0") == [0, False, False, None]
    assert settings_with(DEBUG="0", HTTPS="1") == [31536000, True, True, None]
    assert settings_with(DEBUG="0", HTTPS="1", TRUST_X_FORWARDED_PROTO="1", SECURE_HSTS_SECONDS="600") == [
        600, True, True, ["HTTP_X_FORWARDED_PROTO", "https"]]


def test_strict_transport_security_is_sent_on_https_responses_only(people, client_for, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    client = client_for(people["credit_employee"])
    assert client.get("/", secure=True).headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/").headers
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert "Strict-Transport-Security" in client.get("/", HTTP_X_FORWARDED_PROTO="https").headers
