"""Parse and validate an uploaded dataset file (JSONL or CSV) into row payloads.

Formats (one per file; `auto` picks it from the first row's fields):
- alpaca:   instruction, input (optional), output, system (optional)
- sharegpt: conversations = [{"from": "system"|"human"|"user"|"gpt"|"assistant", "value": str}, ...], system (optional)
- openai:   messages = [{"role": "system"|"user"|"assistant", "content": str}, ...]
- qa:       question, answer (context optional: it is prepended to the question)
Any format may carry `rejected` (a worse assistant reply): the row becomes a preference pair.

Every error is reported with its line, field and reason; a file with any error yields no rows.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

FORMATS = ("alpaca", "sharegpt", "openai", "qa")
MAX_ERRORS = 1000  # enough to show every error of any real file; beyond it we stop listing

SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    reason: str

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "reason": self.reason}


@dataclass
class ParseResult:
    format: str = ""
    payloads: list[dict] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.payloads)


class _Errors:
    def __init__(self, result: ParseResult):
        self.result = result

    def add(self, line: int, field_name: str, reason: str) -> None:
        if len(self.result.errors) >= MAX_ERRORS:
            self.result.truncated = True
            return
        self.result.errors.append(RowError(line, field_name, reason))


def detect_format(record: dict) -> str | None:
    if "messages" in record:
        return "openai"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record or "output" in record:
        return "alpaca"
    if "question" in record or "answer" in record:
        return "qa"
    return None


def _bad_character(value: str) -> str | None:
    """Why `value` cannot be stored as text (a NUL, or a lone surrogate such as the JSON escape
    "\\ud800", which no UTF-8 text can hold), else None."""
    if "\x00" in value:
        return _("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _("contains an unpaired surrogate (U+D800 to U+DFFF), which text cannot hold")
    return None


def split_jsonl_lines(text: str) -> list[str]:
    """The lines of a JSONL text: split at "\\n" (a "\\r" before it dropped) only. str.splitlines()
    would also split at U+2028, U+2029, U+0085 and other separators, which JSON strings may hold."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def _text(record: dict, name: str, line: int, errors: _Errors, *, required: bool) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        if required:
            errors.add(line, name, _("missing or empty"))
        return None if required else ""
    if not isinstance(value, str):
        errors.add(line, name, _("must be text, got %(type)s") % {"type": type(value).__name__})
        return None
    if required and not value.strip():
        errors.add(line, name, _("missing or empty"))
        return None
    if (bad := _bad_character(value)) is not None:
        errors.add(line, name, bad)
        return None
    return value


def _check_turns(messages: list[dict], line: int, field_name: str, errors: _Errors) -> bool:
    ok = True
    roles = [m["role"] for m in messages]
    if "system" in roles[1:]:
        errors.add(line, field_name, _("a system message may only come first"))
        ok = False
    turns = [r for r in roles if r != "system"]
    if not turns or turns[0] != "user":
        errors.add(line, field_name, _("the conversation must start with a user message"))
        ok = False
    if turns and turns[-1] != "assistant":
        errors.add(line, field_name, _("the conversation must end with an assistant message"))
        ok = False
    if any(a == b for a, b in zip(turns, turns[1:])):
        errors.add(line, field_name, _("user and assistant turns must alternate"))
        ok = False
    return ok


def _messages_from_list(
    items: Any, line: int, field_name: str, errors: _Errors, *, role_key: str, content_key: str, roles: dict
) -> list[dict] | None:
    if not isinstance(items, list) or not items:
        errors.add(line, field_name, _("must be a non-empty list of messages"))
        return None
    messages, ok = [], True
    for n, item in enumerate(items, 1):
        where = f"{field_name}[{n}]"
        if not isinstance(item, dict):
            errors.add(line, where, _("must be an object"))
            ok = False
            continue
        role = roles.get(item.get(role_key)) if isinstance(item.get(role_key), str) else None
        if role is None:
            errors.add(
                line, f"{where}.{role_key}",
                _("unknown role %(role)r (expected one of %(roles)s)")
                % {"role": item.get(role_key), "roles": ", ".join(sorted(roles))},
            )
            ok = False
        content = item.get(content_key)
        if not isinstance(content, str) or not content.strip():
            errors.add(line, f"{where}.{content_key}", _("missing or empty") if not content else _("must be text"))
            ok = False
        elif (bad := _bad_character(content)) is not None:
            errors.add(line, f"{where}.{content_key}", bad)
            ok = False
        if ok:
            messages.append({"role": role, "content": content})
    if not ok:
        return None
    return messages if _check_turns(messages, line, field_name, errors) else None


def record_to_payload(record: Any, fmt: str, line: int, errors: _Errors) -> dict | None:
    """One record (a dict) of format `fmt` to a row payload, or None after adding its errors."""
    if not isinstance(record, dict):
        errors.add(line, "-", _("each row must be a JSON object"))
        return None
    before = len(errors.result.errors)
    system = _text(record, "system", line, errors, required=False)
    rejected = _text(record, "rejected", line, errors, required=False)
    messages: list[dict] | None = None
    if fmt == "alpaca":
        instruction = _text(record, "instruction", line, errors, required=True)
        extra = _text(record, "input", line, errors, required=False)
        output = _text(record, "output", line, errors, required=True)
        if instruction is not None and output is not None and extra is not None:
            prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    elif fmt == "qa":
        question = _text(record, "question", line, errors, required=True)
        answer = _text(record, "answer", line, errors, required=True)
        context = _text(record, "context", line, errors, required=False)
        if question is not None and answer is not None and context is not None:
            prompt = f"{context}\n\n{question}" if context.strip() else question
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    elif fmt == "sharegpt":
        messages = _messages_from_list(
            record.get("conversations"), line, "conversations", errors,
            role_key="from", content_key="value", roles=SHAREGPT_ROLES,
        )
    elif fmt == "openai":
        messages = _messages_from_list(
            record.get("messages"), line, "messages", errors,
            role_key="role", content_key="content", roles={r: r for r in ("system", "user", "assistant")},
        )
    if len(errors.result.errors) > before or messages is None:
        return None
    if system and system.strip():
        if messages[0]["role"] == "system":
            errors.add(line, "system", _("given twice: as a field and as the first message"))
            return None
        messages = [{"role": "system", "content": system}, *messages]
    return {"messages": messages, "rejected": rejected or "", "method": "upload"}


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (Chinese spreadsheets); ValueError otherwise."""
    if b"\x00" in data[:4096]:
        raise ValueError(_("The file is binary, not text."))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            raise ValueError(_("The file is neither UTF-8 nor GB18030 text.")) from None


def _pick_format(fmt: str, record: Any, line: int, errors: _Errors) -> str | None:
    if fmt != "auto":
        return fmt
    detected = detect_format(record) if isinstance(record, dict) else None
    if detected is None:
        errors.add(
            line, "-",
            _("cannot tell the format from the fields: expected instruction/output, conversations, messages or question/answer"),
        )
    return detected


def parse_jsonl(text: str, fmt: str = "auto") -> ParseResult:
    result = ParseResult()
    errors = _Errors(result)
    chosen: str | None = None if fmt == "auto" else fmt
    for line_number, line in enumerate(split_jsonl_lines(text), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.add(line_number, "-", _("invalid JSON: %(error)s") % {"error": exc.msg})
            continue
        except RecursionError:
            errors.add(line_number, "-", _("invalid JSON: %(error)s") % {"error": _("nested too deeply")})
            continue
        if chosen is None:
            chosen = _pick_format(fmt, record, line_number, errors)
            if chosen is None:
                continue
        payload = record_to_payload(record, chosen, line_number, errors)
        if payload is not None:
            payload["meta"] = {"line": line_number}
            result.payloads.append(payload)
    result.format = chosen or ""
    return result


def parse_csv(text: str, fmt: str = "auto") -> ParseResult:
    result = ParseResult()
    errors = _Errors(result)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() if h else h for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        errors.add(1, "-", _("invalid CSV: %(error)s") % {"error": exc})
        return result
    reader.fieldnames = header
    if not header:
        return result
    chosen = fmt
    if fmt == "auto":
        chosen = detect_format({h: "" for h in header})
        if chosen is None:
            errors.add(1, "-", _("the header must name instruction/output, messages or question/answer columns"))
            return result
    if chosen == "sharegpt" and "conversations" not in header or chosen == "openai" and "messages" not in header:
        errors.add(1, "-", _("the header has no %(column)s column") % {"column": "conversations" if chosen == "sharegpt" else "messages"})
        return result
    line = reader.line_num + 1
    try:
        for row in reader:
            if None in row:
                errors.add(line, "-", _("more values than header columns"))
                line = reader.line_num + 1
                continue
            if all(not (v or "").strip() for v in row.values()):
                line = reader.line_num + 1
                continue
            record: dict[str, Any] = {k: v for k, v in row.items() if v is not None}
            for list_field in ("messages", "conversations"):
                if list_field in record:
                    try:
                        record[list_field] = json.loads(record[list_field])
                    except json.JSONDecodeError as exc:
                        errors.add(line, list_field, _("invalid JSON: %(error)s") % {"error": exc.msg})
                        record = {}
                    except RecursionError:
                        errors.add(line, list_field, _("invalid JSON: %(error)s") % {"error": _("nested too deeply")})
                        record = {}
            if record:
                payload = record_to_payload(record, chosen, line, errors)
                if payload is not None:
                    payload["meta"] = {"line": line}
                    result.payloads.append(payload)
            line = reader.line_num + 1
    except csv.Error as exc:
        errors.add(line, "-", _("invalid CSV: %(error)s") % {"error": exc})
    result.format = chosen
    return result


def parse_upload(name: str, data: bytes, fmt: str = "auto") -> ParseResult:
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(fmt)
    lowered = name.lower()
    try:
        text = decode(data)
    except ValueError as exc:
        return ParseResult(errors=[RowError(0, "-", str(exc))])
    if lowered.endswith((".jsonl", ".json", ".ndjson")):
        stripped = text.lstrip()
        if lowered.endswith(".json") and stripped.startswith("["):
            try:
                records = json.loads(stripped)
            except json.JSONDecodeError as exc:
                return ParseResult(errors=[RowError(exc.lineno, "-", _("invalid JSON: %(error)s") % {"error": exc.msg})])
            except RecursionError:
                return ParseResult(errors=[RowError(1, "-", _("invalid JSON: %(error)s") % {"error": _("nested too deeply")})])
            text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
        result = parse_jsonl(text, fmt)
    elif lowered.endswith(".csv"):
        result = parse_csv(text, fmt)
    else:
        return ParseResult(errors=[RowError(0, "-", _("Upload a .jsonl or .csv file."))])
    if not result.errors and not result.payloads:
        result.errors.append(RowError(0, "-", _("The file has no rows.")))
    return result
