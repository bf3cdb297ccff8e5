"""Augmentation of the user turns (the answers stay as they are): synonym replacement for Chinese
and English from a small built-in table, and paraphrase or back-translation through a model
endpoint (llm.base.ChatBackend). Every new row is marked augmented, with the method and the index
of the row it came from."""

from __future__ import annotations

import random
import re

from llm.base import BackendError

# Groups of interchangeable words in the company's everyday language. Small on purpose: replacing a
# word with a near-synonym outside its domain changes meaning more often than it helps.
ZH_SYNONYMS = [
    ["如何", "怎样", "怎么"], ["申请", "申办"], ["需要", "需", "要求"], ["提交", "递交", "上交"],
    ["员工", "职工", "雇员"], ["公司", "企业", "单位"], ["规定", "规则", "制度"], ["流程", "程序", "步骤"],
    ["审批", "审核", "批准"], ["客户", "顾客"], ["材料", "资料"], ["可以", "能够", "可"],
    ["多少", "几"], ["办理", "处理"], ["报销", "核销"], ["工资", "薪资", "薪水"], ["时间", "时限"],
    ["通知", "告知"], ["超过", "超出", "高于"], ["不得", "不能", "不可"], ["获得", "得到", "取得"],
    ["贷款", "借款"], ["银行", "行里"], ["每年", "每一年"], ["立即", "马上", "立刻"], ["联系", "联络"],
    ["问题", "疑问"], ["要求", "条件"], ["证明", "凭证"], ["部门", "科室"], ["经理", "主管"],
    ["请问", "想问一下"], ["什么", "哪些"], ["为什么", "为何"], ["是否", "是不是"], ["包括", "包含"],
]
EN_SYNONYMS = [
    ["how", "in what way"], ["apply", "submit an application"], ["need", "require"], ["submit", "hand in", "file"],
    ["employee", "staff member", "worker"], ["employees", "staff members", "workers"], ["company", "firm", "organization"],
    ["rule", "policy", "regulation"], ["rules", "policies", "regulations"], ["process", "procedure"],
    ["approve", "authorize", "sign off"], ["approval", "authorization", "sign-off"], ["customer", "client"],
    ["customers", "clients"], ["documents", "papers", "materials"], ["can", "may"], ["get", "obtain", "receive"],
    ["salary", "pay", "wage"], ["limit", "cap", "ceiling"], ["maximum", "highest", "upper limit"], ["loan", "credit"],
    ["notify", "inform", "tell"], ["exceed", "go above", "be more than"], ["must", "has to", "is required to"],
    ["manager", "supervisor"], ["question", "query"], ["what", "which"], ["why", "for what reason"],
    ["days", "calendar days"], ["leave", "time off"], ["claim", "request"], ["expenses", "costs"],
    ["allowed", "permitted"], ["quickly", "fast", "promptly"], ["help", "assist"], ["start", "begin"],
]

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _index(groups):
    table = {}
    for group in groups:
        for word in group:
            table[word] = [w for w in group if w != word]
    return table


ZH_TABLE, EN_TABLE = _index(ZH_SYNONYMS), _index(EN_SYNONYMS)


def _zh_words(text: str) -> list[str]:
    import jieba

    return list(jieba.cut(text, HMM=False))


def synonym_replace(text: str, rng: random.Random, *, ratio: float = 0.3) -> str:
    """The text with up to `ratio` of its replaceable words (at least one) swapped for synonyms."""
    if _CJK.search(text):
        tokens = _zh_words(text)
        candidates = [i for i, t in enumerate(tokens) if t in ZH_TABLE]
        lookup = ZH_TABLE
    else:
        tokens = re.split(r"(\W+)", text)
        candidates = [i for i, t in enumerate(tokens) if t.lower() in EN_TABLE]
        lookup = None
    if not candidates:
        return text
    chosen = rng.sample(candidates, max(1, round(len(candidates) * ratio)))
    for i in chosen:
        word = tokens[i]
        if lookup is not None:
            tokens[i] = rng.choice(lookup[word])
        else:
            replacement = rng.choice(EN_TABLE[word.lower()])
            tokens[i] = replacement.capitalize() if word[:1].isupper() else replacement
    return "".join(tokens)


PARAPHRASE_PROMPT = (
    "Rewrite the user's question with different wording and the same meaning, in the same language. "
    "Reply with the rewritten question only."
)
TRANSLATE_PROMPT = "Translate the text into {language}. Reply with the translation only."


def _ask(backend, system: str, text: str) -> str:
    completion = backend.complete(
        [{"role": "system", "content": system}, {"role": "user", "content": text}], max_tokens=512, temperature=0.7
    )
    return completion.text.strip()


def paraphrase(backend, text: str) -> str:
    return _ask(backend, PARAPHRASE_PROMPT, text)


def back_translate(backend, text: str) -> str:
    chinese = bool(_CJK.search(text))
    pivot = _ask(backend, TRANSLATE_PROMPT.format(language="English" if chinese else "Chinese"), text)
    return _ask(backend, TRANSLATE_PROMPT.format(language="Simplified Chinese" if chinese else "English"), pivot)


METHODS = ("synonym", "paraphrase", "back_translation")


def augment(payloads: list[dict], *, method: str, copies: int = 1, seed: int = 0, backend=None) -> tuple[list[dict], dict]:
    """The original rows followed by the new ones, and a report. Rows already augmented are not
    augmented again; a new text equal to its source is dropped."""
    if method not in METHODS:
        raise ValueError(method)
    if method != "synonym" and backend is None:
        raise ValueError("this method needs a model endpoint")
    rng = random.Random(seed)
    added, failed, unchanged = [], [], 0
    for index, payload in enumerate(payloads):
        if payload.get("augmented"):
            continue
        user_turns = [i for i, m in enumerate(payload["messages"]) if m["role"] == "user"]
        seen = {payload["messages"][user_turns[-1]]["content"]} if user_turns else set()
        for _copy in range(copies):
            messages = [dict(m) for m in payload["messages"]]
            try:
                for i in user_turns:
                    source = messages[i]["content"]
                    if method == "synonym":
                        messages[i]["content"] = synonym_replace(source, rng)
                    elif method == "paraphrase":
                        messages[i]["content"] = paraphrase(backend, source) or source
                    else:
                        messages[i]["content"] = back_translate(backend, source) or source
            except BackendError as exc:
                failed.append({"index": index, "error": str(exc)[:200]})
                break
            new_text = messages[user_turns[-1]]["content"] if user_turns else ""
            if new_text in seen:
                unchanged += 1
                continue
            seen.add(new_text)
            added.append({
                **payload, "messages": messages, "augmented": True, "method": method,
                "meta": {**payload.get("meta", {}), "augmented_from": index},
            })
    report = {"method": method, "copies": copies, "seed": seed, "added": len(added), "unchanged": unchanged,
              "failed": failed, "examples": [
                  {"from": a["meta"]["augmented_from"], "text": a["messages"][-2]["content"][:200]} for a in added[:20]]}
    return list(payloads) + added, report
