"""Text generators behind one interface: ``complete(messages, *, max_tokens, temperature) -> str``.

Backends:
    ``openai``: any OpenAI-compatible chat-completions endpoint over HTTP (timeouts, retries with
        exponential backoff, a concurrency limit and an on-disk answer cache).
    ``local``: a transformers causal LM from a local folder (``smollm2-135m`` resolves offline).
    ``rules``: the deterministic offline generator (:class:`train.synth.rules.RulesGenerator`).

The LLM backends share :class:`CachedChatGenerator`: a request already answered is read from the cache
and never sent again. Transport failures that outlast the retries raise :class:`GeneratorUnavailable`
(the caller should stop and resume later); an answer that is not a valid chat completion raises
:class:`MalformedResponse` (the caller rejects that one sample).

Example:
    >>> from train.synth.generators import get_generator
    >>> generator = get_generator("openai", model="gpt-4o-mini", base_url="http://127.0.0.1:8000/v1",
    ...                           cache_dir="/tmp/cre-cache")  # doctest: +SKIP
    >>> generator.complete([{"role": "user", "content": "Say hi"}], max_tokens=8)  # doctest: +SKIP
    'Hi!'
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

from train.synth.cache import AnswerCache, retry
from train.synth.rules import RulesGenerator

DEFAULT_CACHE_DIR = Path(os.environ.get("CRE_CACHE") or Path.home() / ".cache" / "cre") / "synth-answers"


class GeneratorError(RuntimeError):
    """A generator could not produce an answer."""


class GeneratorUnavailable(GeneratorError):
    """The backend cannot be reached or refuses service (after retries): stop and resume later."""


class MalformedResponse(GeneratorError):
    """The backend answered, but not with a valid chat completion."""


class _Retryable(Exception):
    """A failure worth another attempt (connection, timeout, 429/5xx, malformed body)."""

    def __init__(self, message: str, *, malformed: bool = False):
        super().__init__(message)
        self.malformed = malformed


class CachedChatGenerator:
    """Base of the LLM backends: answer cache and concurrency limit around :meth:`_generate`.

    Args:
        cache_dir: Where answers are cached; ``None`` uses ``$CRE_CACHE/synth-answers``; ``False`` disables it.
        concurrency: At most this many requests in flight at once (also what the pipeline parallelises to).
    """

    name = "base"

    def __init__(self, *, cache_dir: str | os.PathLike | None | bool = None, concurrency: int = 1):
        self.cache = None if cache_dir is False else AnswerCache(cache_dir or DEFAULT_CACHE_DIR)
        self.concurrency = max(1, int(concurrency))
        self._slots = threading.BoundedSemaphore(self.concurrency)

    @property
    def identity(self) -> str:
        """What makes answers differ (backend and model); part of every cache key."""
        raise NotImplementedError

    def complete(self, messages: list[dict], *, max_tokens: int = 1024, temperature: float = 0.0) -> str:
        """The model's answer to chat ``messages`` (from the cache when this exact request was answered before)."""
        key = None
        if self.cache is not None:
            key = self.cache.key(
                {
                    "generator": self.identity,
                    "messages": messages,
                    "max_tokens": max_tokens,
                    "temperature": temperature,
                }
            )
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        with self._slots:
            answer = self._generate(messages, max_tokens=max_tokens, temperature=temperature)
        if key is not None:
            self.cache.put(key, answer)
        return answer

    def _generate(self, messages: list[dict], *, max_tokens: int, temperature: float) -> str:
        raise NotImplementedError


class OpenAIChatGenerator(CachedChatGenerator):
    """An OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: Model name sent with each request (default ``$CRE_SYNTH_MODEL`` or ``gpt-4o-mini``).
        base_url: API root, e.g. ``http://127.0.0.1:8000/v1`` (default ``$OPENAI_BASE_URL`` or OpenAI's).
        api_key: Bearer token (default ``$OPENAI_API_KEY``; none is sent when empty).
        timeout: Seconds per HTTP request.
        retries: Retries after a failed request (connection errors, timeouts, 429, 5xx, malformed bodies).
        backoff: First retry wait in seconds; doubles each time.
        concurrency: Requests in flight at once.
        cache_dir: See :class:`CachedChatGenerator`.
    """

    name = "openai"

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 1.0,
        concurrency: int = 4,
        cache_dir: str | os.PathLike | None | bool = None,
    ):
        super().__init__(cache_dir=cache_dir, concurrency=concurrency)
        self.model = model or os.environ.get("CRE_SYNTH_MODEL") or "gpt-4o-mini"
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip(
            "/"
        )
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff

    @property
    def identity(self) -> str:
        return f"openai:{self.model}"

    def _generate(self, messages: list[dict], *, max_tokens: int, temperature: float) -> str:
        body = json.dumps(
            {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        ).encode()
        try:
            return retry(
                lambda: self._post(body), retries=self.retries, backoff=self.backoff, retry_on=(_Retryable,)
            )
        except _Retryable as error:
            if error.malformed:
                raise MalformedResponse(str(error)) from error
            raise GeneratorUnavailable(f"{self.base_url}: {error}") from error

    def _post(self, body: bytes) -> str:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            if error.code == 429 or error.code >= 500:
                raise _Retryable(f"HTTP {error.code}") from error
            if error.code in (401, 403, 404):
                raise GeneratorUnavailable(
                    f"{self.base_url}: HTTP {error.code} (check the URL, model and key)"
                ) from error
            raise MalformedResponse(f"HTTP {error.code}: request rejected") from error
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
            raise _Retryable(f"{type(error).__name__}: {error}") from error
        return _content_of(raw)


def _content_of(raw: bytes) -> str:
    """The first choice's message content of a chat-completions response body."""
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise _Retryable(f"malformed chat completion: {raw[:80]!r}", malformed=True) from error
    if not isinstance(content, str):
        raise _Retryable("malformed chat completion: content is not a string", malformed=True)
    return content


class LocalChatGenerator(CachedChatGenerator):
    """A transformers causal LM (with a chat template) from a local folder or a backbone alias.

    Args:
        model: Folder, Hub id or alias for :func:`train.backbones.resolve_backbone` (default ``smollm2-135m``).
        device: Torch device.
        max_new_tokens: Cap on every answer's length (small models on CPU are slow), ``None`` for no cap.
        cache_dir: See :class:`CachedChatGenerator`.
    """

    name = "local"

    def __init__(
        self,
        model: str = "smollm2-135m",
        *,
        device: str = "cpu",
        max_new_tokens: int | None = None,
        cache_dir: str | os.PathLike | None | bool = None,
    ):
        super().__init__(cache_dir=cache_dir, concurrency=1)
        self.model_name, self.device, self.max_new_tokens = model, device, max_new_tokens
        self._model = self._tokenizer = None

    @property
    def identity(self) -> str:
        return f"local:{self.model_name}"

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from train.backbones import resolve_backbone

        folder = resolve_backbone(self.model_name)
        self._tokenizer = AutoTokenizer.from_pretrained(folder)
        self._model = AutoModelForCausalLM.from_pretrained(folder).to(self.device).eval()

    def _generate(self, messages: list[dict], *, max_tokens: int, temperature: float) -> str:
        import torch

        if self._model is None:
            self._load()
        if self.max_new_tokens is not None:
            max_tokens = min(max_tokens, self.max_new_tokens)
        inputs = self._tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        sampling = (
            {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        )
        # Seed sampling from the prompt so a rerun without the cache gives the same answer.
        torch.manual_seed(int(AnswerCache.key({"messages": messages})[:8], 16))
        with torch.no_grad():
            output = self._model.generate(
                **inputs, max_new_tokens=max_tokens, pad_token_id=self._tokenizer.eos_token_id, **sampling
            )
        return self._tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


GENERATORS = {"openai": OpenAIChatGenerator, "local": LocalChatGenerator, "rules": RulesGenerator}


def get_generator(name: str, **kwargs):
    """Build a generator by backend name (``openai``, ``local`` or ``rules``) with backend-specific options."""
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; choose one of {', '.join(GENERATORS)}")
    return GENERATORS[name](**kwargs)
