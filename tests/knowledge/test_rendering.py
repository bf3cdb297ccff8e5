import pytest

from knowledge.rendering import render_markdown

XSS_PAYLOADS = [
    "<script>window.pwned=1</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    '<a href="jav&#x09;ascript:alert(1)">tab</a>',
    "![img](javascript:alert(1))",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '<svg onload="alert(1)"><script>alert(1)</script></svg>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<div style="position:fixed;top:0" onmouseover="alert(1)">hover</div>',
    '<a href="vbscript:msgbox(1)">vb</a>',
    "<style>body{display:none}</style>",
    '<form action="http://evil"><input name=x></form>',
    '<object data="javascript:alert(1)"></object>',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<details open ontoggle="alert(1)">x</details>',
    "```\n</code><script>alert(1)</script>\n```",
]


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payloads_are_neutralized(payload):
    html = str(render_markdown(payload)).lower()
    assert "<script" not in html
    assert "javascript:" not in html
    assert "vbscript:" not in html
    assert "data:" not in html
    for attr in ("onerror", "onload", "onmouseover", "ontoggle", "onclick"):
        assert f"{attr}=" not in html
    for tag in ("<iframe", "<object", "<form", "<input", "<style", "<svg"):
        assert tag not in html
    assert "position:fixed" not in html


def test_tables_and_fenced_code():
    html = str(render_markdown("| a | b |\n|:--|--:|\n| 1 | 2 |\n\n```python\nprint('<b>')\n```"))
    assert "<table>" in html and '<th style="text-align:left">a</th>' in html
    assert "<pre><code>print('&lt;b&gt;')" in html


def test_links_keep_safe_urls_and_get_rel():
    html = str(render_markdown("[site](https://example.com) [mail](mailto:a@b.c) [rel](/knowledge/)"))
    assert 'href="https://example.com"' in html
    assert 'href="mailto:a@b.c"' in html
    assert 'href="/knowledge/"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_chinese_text_and_emphasis():
    html = str(render_markdown("# 标题\n\n**重要**：请阅读。"))
    assert "<h1>标题</h1>" in html and "<strong>重要</strong>" in html


def test_empty():
    assert str(render_markdown("")) == ""
