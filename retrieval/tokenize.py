"""Tokenization for BM25: one function for documents and queries, so that both sides match.

Chinese is converted Traditional→Simplified (OpenCC) and segmented with jieba's dictionary, without
its HMM new-word guesser: on a short question the HMM glues a name to the next character ("潘淑是
哪里人" → 潘淑是 / 哪里 / 人) while the document says "潘淑，…" (→ 潘淑), so the name never matched.
Dictionary-only segmentation cuts both sides the same way: an unknown name becomes its characters
(潘 / 淑), and those match wherever it occurs (CMRC 2018 dev: R@10 .9949 → .9991, R@1 .9741 → .9806).
A deployment's own terms can be added with a jieba user dictionary (settings.BM25_USER_DICTIONARY).
English and other Latin text is lowercased and split into words. Stopwords (function words that
match everything) are dropped; the lists are short on purpose, tuned on the dev splits.

Any change here changes the index: `TOKENIZER_VERSION` and the user dictionary's hash make up
`signature()`, stored with the BM25 statistics; `manage.py bm25_reindex` rebuilds the postings.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
import unicodedata
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_WORD = re.compile(r"\w", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ASCII_WORD = re.compile(r"[a-z]+")
_lock = threading.Lock()
MAX_TERM_LENGTH = 100
# Raise when tokenize() changes what it returns for some text; the index then needs bm25_reindex.
TOKENIZER_VERSION = 2

ENGLISH_STOPWORDS = frozenset(
    """a an the of in on at to for from by with and or but is are was were be been being as that this
    these those it its which who whom what when where why how did do does done has have had not no
    than then there their they them he she his her him we our you your i me my so such into about
    also can could would should will shall may might s t""".split()
)
CHINESE_STOPWORDS = frozenset("的 了 是 在 和 与 及 或 也 都 就 而 之 其 被 把 对 为 以 于 么 吗 呢 吧 啊 哪 什么 哪些 哪个 多少 怎么 如何 为什么 是否 有 中".split())
STOPWORDS = ENGLISH_STOPWORDS | CHINESE_STOPWORDS


@functools.cache
def _converter():
    import opencc

    return opencc.OpenCC("t2s")


@functools.lru_cache(maxsize=4)
def _segmenter(dictionary: str, stamp: tuple = ()):
    """jieba's shared tokenizer, or one of its own per user dictionary (and file version)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    with _lock:
        segmenter = jieba.Tokenizer() if dictionary else jieba.dt
        segmenter.initialize()
        if dictionary:
            segmenter.load_userdict(dictionary)
    return segmenter


def _jieba():
    dictionary = _user_dictionary()
    if dictionary is None:
        return _segmenter("")
    stat = dictionary.stat()
    return _segmenter(str(dictionary), (stat.st_mtime_ns, stat.st_size))


def _user_dictionary() -> Path | None:
    path = getattr(settings, "BM25_USER_DICTIONARY", "")
    if not path:
        return None
    if not Path(path).is_file():
        raise ImproperlyConfigured(f"BM25_USER_DICTIONARY={path!r} is not a readable file.")
    return Path(path)


def signature() -> str:
    """What the index is built with: the tokenizer version and the user dictionary's content hash."""
    dictionary = _user_dictionary()
    if dictionary is None:
        return f"v{TOKENIZER_VERSION}"
    return f"v{TOKENIZER_VERSION}+dict:{hashlib.sha256(dictionary.read_bytes()).hexdigest()[:12]}"


def normalize(text: str) -> str:
    """NFKC (full-width → half-width), lowercase, Traditional → Simplified."""
    text = unicodedata.normalize("NFKC", text).lower()
    if _CJK.search(text):
        text = _converter().convert(text)
    return text


def s_stem(word: str) -> str:
    """Harman's S-stemmer: English plurals to singular (measured +0.7 R@1 on SQuAD dev)."""
    if len(word) > 3 and _ASCII_WORD.fullmatch(word):
        if word.endswith("ies") and not word.endswith(("eies", "aies")):
            return word[:-3] + "y"
        if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
            return word[:-1]
        if word.endswith("s") and not word.endswith(("us", "ss")):
            return word[:-1]
    return word


def tokenize(text: str, *, stopwords: frozenset[str] = STOPWORDS) -> list[str]:
    """The BM25 terms of a text, in order, with repetitions (term frequency counts them)."""
    text = normalize(text)
    tokens = _jieba().lcut(text, HMM=False) if _CJK.search(text) else re.findall(r"\w+", text)
    return [
        s_stem(token)[:MAX_TERM_LENGTH]
        for token in (t.strip() for t in tokens)
        if token and _WORD.search(token) and token not in stopwords
    ]


def is_cjk(text: str, *, threshold: float = 0.2) -> bool:
    """Whether a text (a query) is mostly Chinese/Japanese ideographs."""
    letters = [c for c in text if _WORD.match(c)]
    if not letters:
        return False
    return sum(1 for c in letters if _CJK.match(c)) / len(letters) >= threshold


def language(text: str) -> str:
    """"zh" for a mostly Chinese text (Traditional or Simplified), else "en": the language of a
    question and of a chunk, for the no-answer thresholds and the per-candidate BM25 weight."""
    return "zh" if is_cjk(text) else "en"
