"""Simple entities in chunk text: dates, amounts, percentages, organizations.

Rule-based and deliberately modest; the knowledge-health monitor compares them across documents.
Each entity is {"type", "text", "value", "start", "end"}; overlapping matches keep the longest.
"""

import datetime
import re

_MONTHS = {
    name: number
    for number, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
         ("july", "jul"), ("august", "aug"), ("september", "sept", "sep"), ("october", "oct"),
         ("november", "nov"), ("december", "dec")],  # fmt: skip
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_CN_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
_CN_NUMBER = "[零〇○一二两三四五六七八九十百千万亿]+(?:点[零〇○一二三四五六七八九]+)?"
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"

_DATE_PATTERNS = [
    (re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)"), "ymd"),
    (
        re.compile(
            r"(\d{4}|[零〇○一二三四五六七八九]{4})\s*年\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*月"
            r"\s*(?:(\d{1,2}|[一二三四五六七八九十]{1,3})\s*[日号])?"
        ),
        "cn",
    ),
    (re.compile(rf"(?i)\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b"), "mdy"),
    (re.compile(rf"(?i)\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH})\.?,?\s+(\d{{4}})\b"), "dmy"),
]
_PERCENT = re.compile(rf"(?<![\d.])([-+]?(?:{_NUMBER}))\s*(?:%|％|‰|\s?percent\b|\s?per cent\b)", re.I)
_CN_PERCENT = re.compile(rf"(百分之|千分之)({_CN_NUMBER}|\d+(?:\.\d+)?)")

_CURRENCY_PREFIX = {
    "¥": "CNY", "￥": "CNY", "rmb": "CNY", "cny": "CNY", "人民币": "CNY", "$": "USD", "us$": "USD", "usd": "USD",
    "€": "EUR", "eur": "EUR", "£": "GBP", "gbp": "GBP", "hk$": "HKD", "hkd": "HKD", "jpy": "JPY",
}  # fmt: skip
_CURRENCY_SUFFIX = {
    "元": "CNY", "块": "CNY", "人民币": "CNY", "美元": "USD", "港元": "HKD", "港币": "HKD", "欧元": "EUR", "英镑": "GBP",
    "日元": "JPY", "rmb": "CNY", "cny": "CNY", "yuan": "CNY", "usd": "USD", "dollars": "USD", "eur": "EUR",
    "euros": "EUR", "hkd": "HKD", "gbp": "GBP",
}  # fmt: skip
_MULTIPLIERS = {
    "万": 1e4, "亿": 1e8, "千": 1e3, "百万": 1e6, "千万": 1e7, "万亿": 1e12, "thousand": 1e3, "k": 1e3,
    "million": 1e6, "mn": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12,
}  # fmt: skip
_PREFIX = "|".join(re.escape(key) for key in sorted(_CURRENCY_PREFIX, key=len, reverse=True))
_SUFFIX = "|".join(re.escape(key) for key in sorted(_CURRENCY_SUFFIX, key=len, reverse=True))
_MULT = "|".join(re.escape(key) for key in sorted(_MULTIPLIERS, key=len, reverse=True))
_AMOUNT_PREFIXED = re.compile(rf"(?i)(?<![A-Za-z])({_PREFIX})\s?({_NUMBER})(?:\s?({_MULT})\b|\s?(万亿|千万|百万|万|亿))?")
_AMOUNT_SUFFIXED = re.compile(
    rf"(?i)(?<![\d.])({_NUMBER}|{_CN_NUMBER})\s?(?:({_MULT})(?![a-z])\s?)?({_SUFFIX})(?![a-z])"
)

_CN_ORG_SUFFIX = (
    "股份有限公司|有限责任公司|有限公司|集团公司|公司|分行|支行|银行|集团|监督管理委员会|委员会|管理局|"
    "交易所|研究院|研究所|协会|大学|医院|(?<![全内外局细大])部(?![分门件位长署])|(?<![全当结格布饭开])局(?![面部势限])|厅|署"
)
# A name may chain suffixes: 招商银行 + 股份有限公司, 中国银行 + 上海 + 分行.
_CN_ORG = re.compile(
    rf"[\u4e00-\u9fff（）()]{{2,24}}?(?:{_CN_ORG_SUFFIX})(?:[\u4e00-\u9fff]{{0,6}}?(?:{_CN_ORG_SUFFIX}))*"
    rf"(?:（[\u4e00-\u9fff]{{2,6}}）)?"
)
# Words that come before an organization's name but are not part of it.
_CN_LEFT_STOPS = re.compile(
    r".*(?:根据|依据|按照|关于|通过|会同|联合|以及|由于|经过|报送|提交|来自|委托|"
    r"[的在于与和及向对由经被是为将从把给同并据按请致])"
)
_EN_ORG_SUFFIX = (
    r"Inc\.?|Incorporated|Ltd\.?|Limited|LLC|L\.L\.C\.|Corp\.?|Corporation|Company|Co\.|PLC|plc|GmbH|AG|S\.A\.|"
    r"Bank|Group|Holdings|Association|Committee|Commission|Ministry|Bureau|Authority|University|Fund|Trust"
)
_EN_ORG = re.compile(
    r"\b(?:[A-Z][A-Za-z]*\s+){0,3}(?:Bank|Ministry|Department|Bureau|Commission|University|Bank) of (?:the )?"
    r"[A-Z][A-Za-z]+(?: [A-Z][A-Za-z]+){0,3}"
    rf"|\b(?:[A-Z][A-Za-z0-9&'.-]*\s+(?:(?:of|&)\s+)?){{1,6}}(?:{_EN_ORG_SUFFIX})(?![A-Za-z])"
)
_EN_ORG_LEADING = re.compile(r"^(?:(?:The|A|An|In|At|By|From|With|And|For|To|Of|On|Our|Their|Its|This|That)\s+)+")


def extract_entities(text: str) -> list[dict]:
    found: list[dict] = []
    found += _dates(text)
    found += _percentages(text)
    found += _amounts(text)
    found += _organizations(text)
    return _longest_first(found)


def _entity(kind: str, text: str, value, start: int, end: int) -> dict:
    return {"type": kind, "text": text, "value": value, "start": start, "end": end}


def _longest_first(found: list[dict]) -> list[dict]:
    kept: list[dict] = []
    taken: list[tuple[int, int]] = []
    for entity in sorted(found, key=lambda item: (-(item["end"] - item["start"]), item["start"])):
        if any(entity["start"] < end and start < entity["end"] for start, end in taken):
            continue
        kept.append(entity)
        taken.append((entity["start"], entity["end"]))
    return sorted(kept, key=lambda item: item["start"])


# -- numbers -----------------------------------------------------------------------------------


def chinese_number(text: str) -> float | None:
    """二〇二四 -> 2024, 三千五百 -> 3500, 1.2万 -> 12000, 五点五 -> 5.5."""
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"\d+(?:\.\d+)?", text.replace(",", "")):
        return float(text.replace(",", ""))
    if "点" in text:
        whole, _, fraction = text.partition("点")
        integer = chinese_number(whole) if whole else 0.0
        digits = "".join(str(_CN_DIGITS.get(char, "")) for char in fraction)
        return None if integer is None or not digits else integer + float("0." + digits)
    if all(char in _CN_DIGITS for char in text):
        # Digit by digit, as years are written: 二〇二四.
        return float("".join(str(_CN_DIGITS[char]) for char in text)) if len(text) > 1 else float(_CN_DIGITS[text])
    total, section, digit = 0.0, 0.0, 0.0
    for char in text:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
        elif char in ("万", "亿"):
            section = (section + digit) * _CN_UNITS[char]
            total += section
            section, digit = 0.0, 0.0
        elif char in _CN_UNITS:
            section += (digit or 1) * _CN_UNITS[char]
            digit = 0.0
        else:
            return None
    return total + section + digit


def _number(text: str) -> float | None:
    return chinese_number(text.replace(",", ""))


# -- dates -------------------------------------------------------------------------------------


def _dates(text: str) -> list[dict]:
    found = []
    for pattern, shape in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            if shape == "ymd":
                year, month, day = (int(part) for part in match.groups())
            elif shape == "cn":
                year_number = chinese_number(match.group(1))
                month_number = chinese_number(match.group(2))
                day_number = chinese_number(match.group(3)) if match.group(3) else None
                if year_number is None or month_number is None:
                    continue
                year, month = int(year_number), int(month_number)
                if day_number is None:
                    if 1 <= month <= 12:
                        found.append(_entity("date", match.group(0), f"{year:04d}-{month:02d}", *match.span()))
                    continue
                day = int(day_number)
            elif shape == "mdy":
                month, day, year = _MONTHS[match.group(1).lower()], int(match.group(2)), int(match.group(3))
            else:
                day, month, year = int(match.group(1)), _MONTHS[match.group(2).lower()], int(match.group(3))
            try:
                value = datetime.date(year, month, day).isoformat()
            except ValueError:
                continue
            found.append(_entity("date", match.group(0), value, *match.span()))
    return found


# -- percentages and amounts -------------------------------------------------------------------


def _percentages(text: str) -> list[dict]:
    found = []
    for match in _PERCENT.finditer(text):
        value = _number(match.group(1).lstrip("+"))
        if value is None:
            continue
        if "‰" in match.group(0):
            value = value / 10
        found.append(_entity("percentage", match.group(0).strip(), value, match.start(), match.end()))
    for match in _CN_PERCENT.finditer(text):
        value = _number(match.group(2))
        if value is None:
            continue
        if match.group(1) == "千分之":
            value = value / 10
        found.append(_entity("percentage", match.group(0), value, *match.span()))
    return found


def _amounts(text: str) -> list[dict]:
    found = []
    for match in _AMOUNT_PREFIXED.finditer(text):
        value = _number(match.group(2))
        if value is None:
            continue
        multiplier = (match.group(3) or match.group(4) or "").lower()
        value *= _MULTIPLIERS.get(multiplier, 1)
        currency = _CURRENCY_PREFIX[match.group(1).lower()]
        found.append(_entity("amount", match.group(0), {"amount": value, "currency": currency}, *match.span()))
    for match in _AMOUNT_SUFFIXED.finditer(text):
        number, multiplier, suffix = match.group(1), (match.group(2) or "").lower(), match.group(3).lower()
        value = _number(number)
        if value is None:
            continue
        value *= _MULTIPLIERS.get(multiplier, 1)
        currency = _CURRENCY_SUFFIX[suffix]
        found.append(_entity("amount", match.group(0), {"amount": value, "currency": currency}, *match.span()))
    return found


# -- organizations -----------------------------------------------------------------------------


def _organizations(text: str) -> list[dict]:
    found = []
    for run in re.finditer(r"[\u4e00-\u9fff（）()]+", text):
        found += _chinese_organizations(run.group(0), run.start())
    for match in _EN_ORG.finditer(text):
        name = match.group(0)
        leading = _EN_ORG_LEADING.match(name)
        start = match.start() + (leading.end() if leading else 0)
        name = text[start : match.end()]
        if len(name.split()) < 2 and not name.endswith(("Inc.", "Ltd.", "Corp.")):
            continue  # a bare "Bank" or "Group" is a word, not a name
        found.append(_entity("organization", name, name, start, match.end()))
    return found


def _chinese_organizations(run: str, offset: int) -> list[dict]:
    found = []
    for match in _CN_ORG.finditer(run):
        start, end = match.span()
        name = match.group(0)
        stop = _CN_LEFT_STOPS.match(name)
        if stop and stop.end() < len(name):
            # Whatever came before the stop word may hold another organization.
            found += _chinese_organizations(run[start : start + stop.end()], offset + start)
            start += stop.end()
            name = run[start:end]
        if name.startswith(("本", "该", "各", "贵", "我")) or len(name) < 3:
            continue  # "本公司", "该银行": a reference, not a name
        found.append(_entity("organization", name, name, offset + start, offset + end))
    return found
