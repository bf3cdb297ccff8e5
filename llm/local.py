"""The local transformers backend: a model directory plus an optional PEFT adapter, loaded once per
process and shared by concurrent requests, streaming through TextIteratorStreamer, on CUDA when
present. It answers with the model's own chat template and refuses one that differs from the
template the version was trained with.

`for_active_model()` is what the chat's "finetuned" endpoint calls for each answer: it reads the
active version once and returns a backend bound to it, so an answer in flight finishes on the model
it started with even when another version is activated meanwhile."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from .base import ActiveModel, BackendError, Completion, Delta, Usage, active_model

_CACHE_SIZE = 2  # the active version and the previous one (in-flight answers, one-click restore)
_cache: OrderedDict[tuple, _Loaded] = OrderedDict()
_cache_lock = threading.Lock()
_load_locks: dict[tuple, threading.Lock] = {}


@dataclass
class _Loaded:
    model: object
    tokenizer: object
    device: str


def _sha256(text: str | None) -> str | None:
    return hashlib.sha256(text.encode()).hexdigest() if text else None


def _load(model_path: str, adapter_path: str | None) -> _Loaded:
    key = (model_path, adapter_path or "")
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        lock = _load_locks.setdefault(key, threading.Lock())
    with lock:  # one load per key even when many requests arrive at once
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        import os

        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not os.path.isdir(model_path):
            raise BackendError(f"The model directory {model_path!r} does not exist.")
        if adapter_path and not os.path.isdir(adapter_path):
            raise BackendError(f"The adapter directory {adapter_path!r} does not exist.")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        try:
            # The adapter directory holds the tokenizer (and template) the version was trained with.
            tokenizer = AutoTokenizer.from_pretrained(adapter_path or model_path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(model_path, local_files_only=True, dtype=dtype)
            if adapter_path:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, adapter_path)
        except (OSError, ValueError) as exc:
            raise BackendError(f"The model could not be loaded: {exc}") from exc
        model.to(device).eval()
        loaded = _Loaded(model=model, tokenizer=tokenizer, device=device)
        with _cache_lock:
            _cache[key] = loaded
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return loaded


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


class LocalTransformersBackend:
    def __init__(
        self,
        model_path: str,
        adapter_path: str | None = None,
        *,
        expected_template_sha256: str | None = None,
        name: str = "local",
        version_id: int | None = None,
    ):
        self.model_path = model_path
        self.adapter_path = adapter_path or None
        self.expected_template_sha256 = expected_template_sha256 or None
        self.name = name
        self.version_id = version_id
        self.last_usage = Usage()
        self._loaded: _Loaded | None = None

    @classmethod
    def for_model(cls, model: ActiveModel) -> LocalTransformersBackend:
        return cls(
            model.base_model_path,
            model.adapter_path,
            expected_template_sha256=model.chat_template_sha256 or _sha256(model.chat_template),
            name=f"finetuned:{model.version_id}",
            version_id=model.version_id,
        )

    @property
    def loaded(self) -> _Loaded:
        if self._loaded is None:
            loaded = _load(self.model_path, self.adapter_path)
            template = getattr(loaded.tokenizer, "chat_template", None)
            if not template:
                raise BackendError("The model has no chat template; it cannot be served as a chat model.")
            if self.expected_template_sha256 and _sha256(template) != self.expected_template_sha256:
                raise BackendError(
                    "The model's chat template differs from the one this version was trained with "
                    f"(stored {self.expected_template_sha256[:12]}, found {_sha256(template)[:12]}): refusing to serve it."
                )
            self._loaded = loaded
        return self._loaded

    @property
    def context_window(self) -> int:
        config = self.loaded.model.config
        return int(getattr(config, "max_position_embeddings", 2048) or 2048)

    def count_tokens(self, text: str) -> int:
        return len(self.loaded.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _inputs(self, messages: list[dict]):
        tokenizer = self.loaded.tokenizer
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
        import torch

        return torch.tensor([ids["input_ids"]], device=self.loaded.device)

    def _generate_kwargs(self, input_ids, max_tokens: int, temperature: float) -> dict:
        tokenizer = self.loaded.tokenizer
        kwargs = {
            "input_ids": input_ids,
            "attention_mask": input_ids.new_ones(input_ids.shape),
            "max_new_tokens": max_tokens,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        }
        if temperature and temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs.update(do_sample=False)
        return kwargs

    def stream(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop_event: threading.Event | None = None,
    ) -> Iterator[Delta]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        loaded = self.loaded
        input_ids = self._inputs(messages)
        streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return bool(stop_event and stop_event.is_set())

        kwargs = self._generate_kwargs(input_ids, max_tokens, temperature)
        kwargs.update(streamer=streamer, stopping_criteria=StoppingCriteriaList([_Stop()]))
        result: dict = {}

        def run():
            try:
                with torch.inference_mode():
                    result["output"] = loaded.model.generate(**kwargs)
            except Exception as exc:  # surfaced to the caller below
                result["error"] = exc
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        for text in streamer:
            if text:
                yield Delta(kind="answer", text=text)
            if stop_event and stop_event.is_set():
                break
        thread.join()
        if "error" in result:
            raise BackendError(f"Generation failed: {result['error']}")
        completion_tokens = int(result["output"].shape[1] - input_ids.shape[1]) if "output" in result else 0
        self.last_usage = Usage(prompt_tokens=int(input_ids.shape[1]), completion_tokens=completion_tokens)

    def complete(self, messages: list[dict], *, max_tokens: int = 512, temperature: float = 0.0) -> Completion:
        import torch

        loaded = self.loaded
        input_ids = self._inputs(messages)
        with torch.inference_mode():
            output = loaded.model.generate(**self._generate_kwargs(input_ids, max_tokens, temperature))
        new = output[0, input_ids.shape[1]:]
        eos = loaded.tokenizer.eos_token_id
        finish = "stop" if eos is not None and eos in new.tolist() else "length"
        text = loaded.tokenizer.decode(new, skip_special_tokens=True)
        self.last_usage = Usage(prompt_tokens=int(input_ids.shape[1]), completion_tokens=int(new.shape[0]))
        return Completion(text=text.strip(), usage=self.last_usage, finish_reason=finish)


def for_active_model() -> LocalTransformersBackend | None:
    """A backend bound to the version active now, or None (the chat falls back to its default)."""
    model = active_model()
    return LocalTransformersBackend.for_model(model) if model else None


def get_backend(model) -> LocalTransformersBackend:
    """The backend for one `llm.base.ActiveModel` (what the chat's "finetuned" endpoint serves)."""
    return LocalTransformersBackend.for_model(model)
