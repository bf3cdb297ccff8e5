"""Masking of personal data in Chinese business text: mainland mobile numbers, resident ID
numbers (only those whose check digit is right), e-mail addresses, bank card numbers (Luhn)."""

from __future__ import annotations

import re
from datetime import date

MASKS = {"id_number": "[身份证号]", "bank_card": "[银行卡号]", "mobile": "[手机号]", "email": "[邮箱]"}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# Digits not glued to other digits or latin letters (so parts of longer numbers never match).
_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx])(?![0-9A-Za-z])")
_CARD_RE = re.compile(r"(?<![0-9A-Za-z])(\d(?:[ -]?\d){12,18})(?![0-9A-Za-z])")
_MOBILE_RE = re.compile(r"(?<![0-9A-Za-z+])((?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2})(?![0-9A-Za-z])")
_EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")


def id_number_valid(number: str) -> bool:
    """GB 11643-1999: 17 digits, a valid birth date, and the ISO 7064 MOD 11-2 check character."""
    if not re.fullmatch(r"\d{17}[\dXx]", number):
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdecimal()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    """The text with personal data replaced by placeholders, and how many of each kind."""
    counts = {kind: 0 for kind in MASKS}

    def replace(kind: str, valid=None):
        def _sub(match: re.Match) -> str:
            value = match.group(0)
            if valid is not None and not valid(value):
                return value
            counts[kind] += 1
            return MASKS[kind]

        return _sub

    text = _EMAIL_RE.sub(replace("email"), text)
    text = _ID_RE.sub(replace("id_number", id_number_valid), text)
    text = _CARD_RE.sub(replace("bank_card", luhn_valid), text)
    text = _MOBILE_RE.sub(replace("mobile"), text)
    return text, {k: v for k, v in counts.items() if v}
