"""Facts stated in passages, and which pairs of them conflict: a pure library (no database).

A fact is a value (an amount with its currency, a percentage, a date, a period, a count) and its
subject: the concepts and words of the clause around the value (its heading when the clause alone
says too little). Text is compared after NFKC, lowercasing and Traditional → Simplified (the BM25
tokenizer's `normalize`), and terms of both languages map onto one concept through `GLOSSARY`
("interest rate" and 利率 are the concept `rate.interest`), so 「個人貸款利率為4.35%」 and "the
personal loan interest rate is 3.85%" have the same subject key.

Values are normalized so that the same fact in another unit is equal: 50,000 元 = 5万元 = RMB 50000,
10% = 10 percent = 百分之十, 2025年1月1日 = 2025-01-01, one month = 30 days.

Matching is blocking, not all pairs: facts are grouped by (kind, unit, subject key) in one dict
pass; a conflict is two facts of one group, in different documents, with different values. Two
things that differ by a qualifier (first-tier cities vs other cities) have different keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

# concept -> variants (English lowercase; Chinese Simplified). Longest variants match first.
GLOSSARY: dict[str, tuple[str, ...]] = {
    "rate.interest": ("interest rate", "rate of interest", "利率", "利息率", "年利率"),
    "rate.penalty": ("penalty rate", "penalty interest", "default interest", "罚息", "罚息率"),
    "rate.ltv": ("loan-to-value ratio", "loan-to-value", "ltv", "贷款价值比", "抵押率"),
    "rate.downpayment": ("down payment ratio", "down payment", "downpayment", "首付比例", "首付"),
    "rate.tax": ("tax rate", "税率"),
    "rate.fee": ("fee rate", "费率"),
    "loan": ("loans", "loan", "贷款", "借款"),
    "loan.mortgage": ("mortgages", "mortgage", "home loans", "home loan", "房贷", "住房贷款", "按揭"),
    "personal": ("personal", "individual", "个人"),
    "business": ("business", "corporate", "企业", "对公"),
    "credit.line": ("credit lines", "credit line", "credit limit", "授信额度", "信用额度", "授信"),
    "hotel": ("hotels", "hotel", "accommodation", "lodging", "酒店", "住宿", "宾馆"),
    "meal": ("meals", "meal", "餐费", "伙食", "餐饮"),
    "travel": ("business travel", "business trips", "business trip", "travel", "差旅", "出差"),
    "taxi": ("taxis", "taxi", "出租车", "打车"),
    "cap": ("upper limit", "maximum", "ceiling", "limits", "limit", "caps", "cap", "max", "上限", "限额", "最高", "封顶", "最多"),
    "floor": ("minimum", "min", "下限", "最低", "最少"),
    "threshold": ("thresholds", "threshold", "门槛", "阈值"),
    "deadline": ("deadlines", "deadline", "due date", "截止日期", "截止时间", "截止", "期限"),
    "effective": ("effective date", "takes effect", "take effect", "effective", "生效日期", "生效", "施行", "实施"),
    "city.tier1": ("first-tier cities", "first-tier city", "first tier cities", "first tier city", "tier-1 cities", "tier 1 cities", "一线城市"),
    "city.other": ("other cities", "other city", "其他城市", "其它城市"),
    "city": ("cities", "city", "城市"),
    "per.night": ("per night", "a night", "each night", "every night", "每晚", "每夜"),
    "per.day": ("per day", "a day", "each day", "daily", "每天", "每日"),
    "per.month": ("per month", "a month", "each month", "monthly", "每月", "月度"),
    "per.year": ("per annum", "per year", "a year", "each year", "annually", "annual", "yearly", "年化", "每年", "年度"),
    "allowance": ("allowances", "allowance", "subsidy", "subsidies", "补贴", "津贴", "补助"),
    "reimbursement": ("reimbursements", "reimbursement", "reimbursed", "reimburse", "报销"),
    "leave.annual": ("annual leave", "paid leave", "vacation", "年假", "带薪年假", "年休假"),
    "leave.sick": ("sick leave", "病假"),
    "probation": ("probation period", "probation", "试用期"),
    "notice": ("notice period", "notice", "通知期", "提前通知"),
    "salary": ("salaries", "salary", "wages", "wage", "pay", "工资", "薪资", "薪酬", "薪水"),
    "overtime": ("overtime", "加班"),
    "bonus": ("bonuses", "bonus", "奖金"),
    "fee": ("fees", "fee", "charges", "charge", "手续费", "费用"),
    "employee": ("employees", "employee", "staff", "员工", "职工"),
    "manager": ("managers", "manager", "经理"),
    "approval": ("approvals", "approval", "approve", "审批", "批准"),
    "application": ("applications", "application", "apply", "申请"),
    "term": ("loan term", "term", "tenor", "贷款期限"),
    "repayment": ("repayments", "repayment", "repay", "还款"),
    "deposit": ("deposits", "deposit", "存款"),
    "training": ("training", "培训"),
    "contract": ("contracts", "contract", "合同"),
    "password": ("passwords", "password", "密码"),
    "retention": ("retention", "kept", "keep", "保存", "保留"),
    "customer": ("customers", "customer", "client", "clients", "客户"),
    "amount": ("amounts", "amount", "金额", "额度"),
    "policy": ("policies", "policy", "政策", "制度"),
}
# Concepts that only qualify a subject (whose cap? which city?); a clause without any other concept
# names no subject of its own and borrows one from the clause before it.
QUALIFIERS = frozenset({"personal", "business", "city", "city.tier1", "city.other", "per.night", "per.day",
                        "per.month", "per.year", "employee", "manager", "customer"})

# Words that restate, not qualify: "is now", "remains", "调整为"...
FILLER = frozenset(
    """now currently current new set stand stands carry carries remain remains become becomes changed change
    adjusted adjust will must should shall may can up down per each every rate rates value valued amount
    total equal equals q a answer question note please yuan rmb cny usd dollar dollars percent cent
    day days month months year years week weeks working business time times people person item items
    last lasts lasting new 新 为期 期间
    为 是 现 现为 目前 现在 当前 调整 调整为 执行 按 统一 不超过 超过 以内 以上 以下 不得 可 需 应 须 将 已 元 人民币 美元
    天 日 月 年 周 个 工作日 次 人 名 件 份 家 问 答 请 注意 标准 规定 要求 约 左右 即 共 合计 总计 按照 根据 其中 每""".split()
)

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_CN_NUM = r"[零〇一二两三四五六七八九十百千]+(?:点[零〇一二三四五六七八九]+)?"
_MULT = {"万": Decimal(10_000), "亿": Decimal(100_000_000), "千": Decimal(1000), "k": Decimal(1000), "thousand": Decimal(1000), "million": Decimal(1_000_000), "billion": Decimal(1_000_000_000)}
_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), start=1)}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})

_CURRENCY_AFTER = r"(?P<cur_after>元人民币|元|块|人民币|rmb|cny|yuan|美元|美金|usd|dollars?|us dollars?)"
_CURRENCY_BEFORE = r"(?P<cur_before>rmb|cny|usd|us\$|\$|¥|人民币|美元)"
_MULT_RE = r"(?P<mult>万|亿|千|k\b|thousand|million|billion)?"

_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("date", re.compile(r"(?P<y>(?:19|20)\d{2})\s*(?:年|-|/|\.)\s*(?P<m>\d{1,2})\s*(?:月|-|/|\.)\s*(?P<d>\d{1,2})\s*日?")),
    ("date", re.compile(r"(?P<mname>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>(?:19|20)\d{2})")),
    ("date", re.compile(r"(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?P<mname>january|february|march|april|may|june|july|august|september|october|november|december)\s+(?P<y>(?:19|20)\d{2})")),
    ("percent", re.compile(r"百分之\s*(?P<cn>" + _CN_NUM + r"|" + _NUM + r")")),
    ("percent", re.compile(r"(?P<n>" + _NUM + r")\s*(?:%|\s?per\s?cent\b|\s?percent\b)")),
    ("amount", re.compile(_CURRENCY_BEFORE + r"\s*(?P<n>" + _NUM + r")\s*" + _MULT_RE + r"(?:\s*" + r"(?:元|yuan|dollars?))?")),
    ("amount", re.compile(r"(?P<n>" + _NUM + r")\s*" + _MULT_RE + r"\s*" + _CURRENCY_AFTER)),
    ("amount", re.compile(r"(?P<cn>" + _CN_NUM + r")\s*(?P<mult>万|亿)?\s*(?P<cur_after>元|块)")),
    ("period", re.compile(r"(?P<n>" + _NUM + r"|" + _CN_NUM + r"|one|two|three|four|five|six|seven|eight|nine|ten|twelve)\s*(?P<punit>个工作日|working days?|business days?|个自然日|calendar days?|days?|天|日|个月|months?|周|个星期|weeks?|年|years?)(?![a-z])")),
    ("count", re.compile(r"(?P<n>" + _NUM + r")\s*(?P<cunit>次|times|名|人|people|persons?|employees?|件|份|家|branches|笔|transactions?)(?![a-z])")),
]
_EN_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twelve": 12}
_PERIOD_DAYS = {"day": 1, "天": 1, "日": 1, "个自然日": 1, "calendar day": 1, "week": 7, "周": 7, "个星期": 7, "month": 30, "个月": 30, "year": 365, "年": 365}
_COUNT_UNITS = {"次": "times", "times": "times", "名": "people", "人": "people", "people": "people", "person": "people",
                "employee": "people", "件": "items", "份": "items", "家": "branches", "branches": "branches",
                "笔": "transactions", "transaction": "transactions"}

_CLAUSE_SPLIT = re.compile(r"(?<!\d)[.](?!\d)|[,，;；。!?！？\n、]|\s[-–—]\s")
_SENTENCE_SPLIT = re.compile(r"(?<!\d)[.](?!\d)|[;；。!?！？\n]")
_ASCII = re.compile(r"[a-z]")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


@dataclass
class Fact:
    kind: str  # amount / percent / date / period / count
    unit: str  # CNY, USD, %, date, days, working_days, times, people ...
    value: str  # normalized, comparable as a string: "50000", "4.35", "2025-01-01"
    subject: tuple[str, ...]  # sorted concepts and words
    start: int  # the value's span in the passage text
    end: int
    text: str = ""  # the value as written
    chunk: object = None  # the caller's id of the passage
    document: object = None

    @property
    def key(self) -> str:
        """The blocking key: same kind, same unit, same subject."""
        raw = f"{self.kind}|{self.unit}|{' '.join(self.subject)}"
        return hashlib.sha1(raw.encode()).hexdigest()[:20]


def normalize_text(text: str) -> str:
    """NFKC, lowercase and Traditional → Simplified, keeping every character's offset."""
    import unicodedata

    from retrieval.tokenize import _converter

    out = []
    for ch in text:
        n = unicodedata.normalize("NFKC", ch).lower()
        out.append(n if len(n) == 1 else ch.lower())
    text = "".join(out)
    if _CJK.search(text):
        converted = _converter().convert(text)
        if len(converted) == len(text):
            return converted
        return "".join(_converter().convert(c) if len(_converter().convert(c)) == 1 else c for c in text)
    return text


def _decimal(raw: str) -> Decimal | None:
    try:
        return Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None


def _chinese_number(raw: str) -> Decimal | None:
    if "点" in raw:
        whole, frac = raw.split("点", 1)
        base = _chinese_number(whole) if whole else Decimal(0)
        digits = "".join(str(_CN_DIGITS.get(c, "")) for c in frac)
        return None if base is None or not digits else base + Decimal("0." + digits)
    total, current = 0, 0
    for ch in raw:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            total += (current or 1) * _CN_UNITS[ch]
            current = 0
        else:
            return None
    return Decimal(total + current)


def _number(raw: str) -> Decimal | None:
    raw = raw.strip()
    if raw in _EN_NUMBERS:
        return Decimal(_EN_NUMBERS[raw])
    if re.fullmatch(_NUM, raw):
        return _decimal(raw)
    return _chinese_number(raw)


def _fmt(value: Decimal) -> str:
    value = value.normalize()
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _value_of(kind: str, m: re.Match) -> tuple[str, str] | None:
    g = m.groupdict()
    if kind == "date":
        month = int(g["m"]) if g.get("m") else _MONTHS.get(g["mname"].lower().rstrip("."))
        try:
            return "date", dt.date(int(g["y"]), month, int(g["d"])).isoformat()
        except (TypeError, ValueError):
            return None
    raw = g.get("n") or g.get("cn")
    number = _number(raw) if raw else None
    if number is None:
        return None
    if kind == "percent":
        return "%", _fmt(number)
    if kind == "amount":
        mult = g.get("mult")
        if mult:
            number *= _MULT[mult.strip()]
        cur = (g.get("cur_before") or g.get("cur_after") or "").strip()
        unit = "USD" if cur in {"usd", "us$", "$", "美元", "美金"} or "dollar" in cur else "CNY"
        return unit, _fmt(number)
    if kind == "period":
        punit = g["punit"].strip()
        if "working" in punit or "business" in punit or punit == "个工作日":
            return "working_days", _fmt(number)
        base = punit.rstrip("s") if _ASCII.search(punit) else punit
        base = {"calendar day": "day"}.get(base, base)
        return "days", _fmt(number * _PERIOD_DAYS.get(base, 1))
    if kind == "count":
        cunit = g["cunit"].strip()
        return _COUNT_UNITS.get(cunit.rstrip("s") if cunit.endswith("s") and cunit not in _COUNT_UNITS else cunit, "items"), _fmt(number)
    return None


def _find_values(text: str) -> list[tuple[int, int, str, str, str]]:
    """(start, end, kind, unit, value) of every value, earlier patterns winning overlaps."""
    taken: list[tuple[int, int]] = []
    found = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if any(start < e and s < end for s, e in taken):
                continue
            if kind in {"count", "period"} and start > 0 and text[start - 1].isdigit():
                continue
            parsed = _value_of(kind, m)
            if parsed is None:
                continue
            taken.append((start, end))
            found.append((start, end, kind, parsed[0], parsed[1]))
    found.sort()
    return found


_VARIANT_CONCEPT: dict[str, str] = {}
for _concept, _variants in GLOSSARY.items():
    for _variant in _variants:
        _VARIANT_CONCEPT.setdefault(_variant, _concept)
_MAX_CJK = max(len(v) for v in _VARIANT_CONCEPT if not _ASCII.match(v[0]))
_MAX_WORDS = max(len(re.findall(r"[a-z0-9]+", v)) for v in _VARIANT_CONCEPT if _ASCII.match(v[0]))
_ASCII_VARIANTS = {" ".join(re.findall(r"[a-z0-9]+", v)): c for v, c in _VARIANT_CONCEPT.items() if _ASCII.match(v[0])}
_TOKEN = re.compile(r"[a-z0-9]+|[\u3400-\u4dbf\u4e00-\u9fff]+")


def _concepts(context: str) -> tuple[set[str], str]:
    """Glossary concepts of a text (longest variant first) and the text without them: English by
    word n-grams, Chinese by the longest dictionary substring at each position. Dict lookups
    instead of one big regex alternation (five times faster on the bench)."""
    found: set[str] = set()
    rest: list[str] = []
    for run in _TOKEN.finditer(context):
        rest.append(" ")
        token = run.group(0)
        if _CJK.match(token):
            i, kept = 0, []
            while i < len(token):
                for size in range(min(_MAX_CJK, len(token) - i), 1, -1):
                    concept = _VARIANT_CONCEPT.get(token[i:i + size])
                    if concept:
                        found.add(concept)
                        kept.append(" ")
                        i += size
                        break
                else:
                    kept.append(token[i])
                    i += 1
            rest.append("".join(kept))
        else:
            rest.append(token)
    # English phrases span tokens: match word n-grams over the ASCII words.
    words = [w for w in " ".join(rest).split(" ") if w]
    out, i = [], 0
    while i < len(words):
        if words[i] and _ASCII.match(words[i]):
            for size in range(min(_MAX_WORDS, len(words) - i), 0, -1):
                concept = _ASCII_VARIANTS.get(" ".join(words[i:i + size]))
                if concept:
                    found.add(concept)
                    i += size
                    break
            else:
                out.append(words[i])
                i += 1
        else:
            out.append(words[i])
            i += 1
    return found, " ".join(out)


def subject_terms(context: str) -> set[str]:
    """Concepts of the glossary plus the remaining content words (already normalized text)."""
    from retrieval.tokenize import s_stem, tokenize

    terms, rest = _concepts(context)
    for token in tokenize(rest):
        token = s_stem(token)
        if token in FILLER or any(c.isdigit() for c in token) or len(token) < 2 and not _CJK.match(token):
            continue
        terms.add(token)
    return terms


def extract_facts(text: str, *, heading_path: Iterable[str] = (), chunk=None, document=None) -> list[Fact]:
    """Every fact of one passage. The subject is the clause around the value without the values;
    a clause that names fewer than two things borrows the sentence before it, then the heading."""
    norm = normalize_text(text)
    values = _find_values(norm)
    if not values:
        return []
    cuts = sorted({0, len(norm)} | {m.end() for m in _CLAUSE_SPLIT.finditer(norm)})
    clauses = list(zip(cuts, cuts[1:]))
    clause_terms = [subject_terms(_blank_values(norm, s, e, values)) for s, e in clauses]
    heading = " ".join(list(heading_path)[-1:])
    heading_terms = subject_terms(normalize_text(heading)) if heading else set()
    facts = []
    for start, end, kind, unit, value in values:
        index = next(i for i, (s, e) in enumerate(clauses) if s <= start < e)
        terms = set(clause_terms[index])
        for previous in range(index - 1, max(index - 4, -1), -1):
            if _names_subject(terms):
                break
            families = {_family(t) for t in terms}
            terms |= {t for t in clause_terms[previous] if _family(t) not in families}
        if not _names_subject(terms):
            terms |= heading_terms
        if not terms:
            continue
        facts.append(
            Fact(kind=kind, unit=unit, value=value, subject=tuple(sorted(terms)), start=start, end=end,
                 text=text[start:end], chunk=chunk, document=document)
        )
    return facts


def _family(term: str) -> str:
    return term.split(".", 1)[0] if term in GLOSSARY else term


def _names_subject(terms: set[str]) -> bool:
    return any(t not in QUALIFIERS for t in terms)


def _blank_values(norm: str, start: int, end: int, values) -> str:
    piece = list(norm[start:end])
    for s, e, *_rest in values:
        for i in range(max(s, start), min(e, end)):
            piece[i - start] = " "
    return "".join(piece)


@dataclass
class ConflictPair:
    a: Fact
    b: Fact
    key: str = field(default="")


def find_conflicts(facts: Iterable[Fact], *, only_against: set | None = None) -> list[ConflictPair]:
    """Pairs of facts with one key, in different documents, with different values. One pass to
    group (a dict), then pairs inside each group only. `only_against`: documents whose facts must
    be one side of every pair (the incremental check of a published version)."""
    groups: dict[str, list[Fact]] = defaultdict(list)
    for fact in facts:
        groups[fact.key].append(fact)
    pairs = []
    for key, group in groups.items():
        if len(group) < 2 or len({f.value for f in group}) < 2:
            continue
        # One representative per (document, value): a document repeating a value is one statement.
        seen: dict[tuple, Fact] = {}
        for fact in group:
            seen.setdefault((fact.document, fact.value), fact)
        members = list(seen.values())
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                if a.document == b.document or a.value == b.value:
                    continue
                if only_against is not None and a.document not in only_against and b.document not in only_against:
                    continue
                first, second = (a, b) if str(a.chunk) <= str(b.chunk) else (b, a)
                pairs.append(ConflictPair(a=first, b=second, key=key))
    return pairs
