"""Chat clients behind one interface: ``complete(messages, *, max_tokens, temperature) -> str``.

Used by the synthesis (:mod:`train.synth.generators` adds its offline ``rules`` backend) and by the
LLM judge of the evaluation.

Backends:
    ``openai``: any OpenAI-compatible chat-completions endpoint, through the official ``openai`` SDK
        (timeouts, bounded retries with backoff, a concurrency limit and an on-disk answer cache).
        The prompts leave the machine: an endpoint must be named, or OpenAI's API allowed explicitly.
    ``local``: a transformers causal LM from a local folder (``smollm2-135m`` resolves offline).

The LLM backends share :class:`CachedChatGenerator`: a request already answered is read from the cache
and never sent again. Transport failures that outlast the retries raise :class:`GeneratorUnavailable`
(the caller should stop and resume later); a reply that is not a valid chat completion raises
:class:`MalformedResponse` (the caller leaves that work pending and retries it on the next run). Error
messages name the endpoint and the status, never the reply or the prompt (they may hold CV text).

Example:
    >>> from common.chat import get_generator
    >>> generator = get_generator("openai", model="gpt-4o-mini", base_url="http://127.0.0.1:8000/v1",
    ...                           cache_dir="/tmp/cre-cache")  # doctest: +SKIP
    >>> generator.complete([{"role": "user", "content": "Say hi"}], max_tokens=8)  # doctest: +SKIP
    'Hi!'
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from common.answer_cache import AnswerCache
from common.paths import cre_cache_root

if TYPE_CHECKING:
    import httpx2


def default_answer_cache_dir() -> Path:
    """``$CRE_CACHE/synth-answers``: the LLM answers of the synthesis and the judge (they may quote CVs)."""
    return cre_cache_root() / "synth-answers"


logger = logging.getLogger(__name__)
OPENAI_API_URL = "https://api.openai.com/v1"
ALLOW_OPENAI_API_FLAG = "--allow-openai-api"


class GeneratorError(RuntimeError):
    """A generator could not produce an answer."""


class GeneratorUnavailable(GeneratorError):
    """The backend cannot be reached or refuses service (after retries): stop and resume later."""


class MalformedResponse(GeneratorError):
    """The backend answered, but not with a valid chat completion."""


class ThirdPartyNotAllowed(GeneratorError):
    """No endpoint was named, and sending prompts to OpenAI's API was not allowed explicitly."""


def resolve_base_url(base_url: str | None, allow_openai_api: bool = False) -> str:
    """The endpoint prompts go to: ``base_url``, else ``$OPENAI_BASE_URL``, else OpenAI's API if allowed.

    Args:
        base_url: An explicit API root.
        allow_openai_api: Whether falling back to :data:`OPENAI_API_URL` (a third party) is intended.

    Raises:
        ThirdPartyNotAllowed: Neither an endpoint nor the permission was given.

    Example:
        >>> resolve_base_url("http://127.0.0.1:8000/v1/")
        'http://127.0.0.1:8000/v1'
    """
    chosen = base_url or os.environ.get("OPENAI_BASE_URL")
    if not chosen:
        if not allow_openai_api:
            raise ThirdPartyNotAllowed(
                "no endpoint given: the openai backend would send JD and CV text to OpenAI's API "
                f"({OPENAI_API_URL}), a third party. Pass --base-url (or set $OPENAI_BASE_URL) for your "
                f"own endpoint, or {ALLOW_OPENAI_API_FLAG} if sending the text to OpenAI is intended."
            )
        chosen = OPENAI_API_URL
    return chosen.rstrip("/")


class CachedChatGenerator:
    """Base of the LLM backends: answer cache and concurrency limit around :meth:`_generate`.

    Args:
        cache_dir: Where answers are cached; ``None`` uses ``$CRE_CACHE/synth-answers``; ``False`` disables it.
        concurrency: At most this many requests in flight at once (also what the pipeline parallelises to).
    """

    name = "base"

    def __init__(self, *, cache_dir: str | os.PathLike | None | bool = None, concurrency: int = 1):
        self.cache = None if cache_dir is False else AnswerCache(cache_dir or default_answer_cache_dir())
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
    """An OpenAI-compatible ``/chat/completions`` endpoint, through the official ``openai`` SDK.

    Every prompt (JD text, and for the judge CV text) is sent to ``base_url``. Without an explicit
    endpoint (argument or ``$OPENAI_BASE_URL``) that would be OpenAI's public API, a third party, so
    the constructor refuses unless ``allow_openai_api`` says that is intended.

    Args:
        model: Model name sent with each request (default ``$CRE_SYNTH_MODEL`` or ``gpt-4o-mini``).
        base_url: API root, e.g. ``http://127.0.0.1:8000/v1`` (default ``$OPENAI_BASE_URL``).
        api_key: Bearer token (default ``$OPENAI_API_KEY``; a placeholder when empty, for servers without keys).
        timeout: Seconds per HTTP request.
        retries: Retries after a failed request (connection errors, timeouts, 408, 409, 429, 5xx),
            with the SDK's exponential backoff; each retry is logged at WARNING.
        concurrency: Requests in flight at once.
        cache_dir: See :class:`CachedChatGenerator`.
        allow_openai_api: Send the prompts to :data:`OPENAI_API_URL` when no endpoint is given.

    Raises:
        ThirdPartyNotAllowed: No endpoint was given and ``allow_openai_api`` is false.

    Example:
        >>> OpenAIChatGenerator(base_url=None, cache_dir=False)  # doctest: +SKIP
        Traceback (most recent call last):
        ThirdPartyNotAllowed: no endpoint given: ...
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
        concurrency: int = 4,
        cache_dir: str | os.PathLike | None | bool = None,
        allow_openai_api: bool = False,
    ):
        import openai  # here, not at the top: importing the SDK takes seconds, and most runs never need it

        self.base_url = resolve_base_url(base_url, allow_openai_api)
        super().__init__(cache_dir=cache_dir, concurrency=concurrency)
        self.model = model or os.environ.get("CRE_SYNTH_MODEL") or "gpt-4o-mini"
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.timeout, self.retries = timeout, retries
        self._client = openai.OpenAI(
            base_url=self.base_url,
            # The SDK insists on a key; servers that need none ignore this placeholder.
            api_key=self.api_key or "unused",
            timeout=timeout,
            max_retries=retries,
            http_client=openai.DefaultHttpx2Client(
                event_hooks={"request": [self._log_retry], "response": [self._log_http_error]}
            ),
        )

    @property
    def identity(self) -> str:
        return f"openai:{self.model}"

    def _log_retry(self, request: httpx2.Request) -> None:
        # The SDK logs its retries at INFO, which the CLIs do not show; a run that slows down because
        # the endpoint struggles should say so. The SDK numbers its attempts in this header.
        attempt = int(request.headers.get("x-stainless-retry-count", "0") or 0)
        if attempt:
            logger.warning("%s: retry %d of %d", self.base_url, attempt, self.retries)

    def _log_http_error(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            logger.warning("%s: HTTP %d", self.base_url, response.status_code)

    def _generate(self, messages: list[dict], *, max_tokens: int, temperature: float) -> str:
        import openai

        try:
            completion = self._client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_tokens, temperature=temperature
            )
        except openai.APIConnectionError as error:  # also timeouts
            raise GeneratorUnavailable(
                f"{self.base_url}: {type(error).__name__} after {self.retries} retries"
            ) from None
        except openai.APIStatusError as error:
            # Only the status: the body of an error may quote the prompt, and prompts hold CV text.
            status = error.status_code
            if status in (401, 403, 404):
                raise GeneratorUnavailable(
                    f"{self.base_url}: HTTP {status} (check the URL, model and key)"
                ) from None
            if status in (408, 409, 429) or status >= 500:
                raise GeneratorUnavailable(
                    f"{self.base_url}: HTTP {status} after {self.retries} retries"
                ) from None
            raise MalformedResponse(f"{self.base_url}: HTTP {status}, request rejected") from None
        except ValueError:  # the SDK parses the body as JSON itself
            raise MalformedResponse(f"{self.base_url}: the reply is not valid JSON") from None
        return _content_of(completion, self.base_url)


def _content_of(completion: object, base_url: str) -> str:
    """The first choice's message content, or :class:`MalformedResponse` for another API's reply shape."""
    # The SDK does not validate replies, so a server speaking another API yields an object whose
    # fields are missing; look them up defensively. Never quote the reply: it may echo the prompt.
    choices = getattr(completion, "choices", None)
    message = getattr(choices[0], "message", None) if isinstance(choices, list) and choices else None
    content = getattr(message, "content", None)
    if not isinstance(content, str):
        raise MalformedResponse(
            f"{base_url}: the reply is not a chat completion (no choices[0].message.content)"
        )
    return content


class LocalChatGenerator(CachedChatGenerator):
    """A transformers causal LM (with a chat template) from a local folder or a backbone alias.

    Args:
        model: Folder, Hub id or alias for :func:`common.backbones.resolve_backbone` (default ``smollm2-135m``).
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

        from common.backbones import resolve_backbone

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


CHAT_GENERATORS: dict[str, Callable[..., CachedChatGenerator]] = {
    "openai": OpenAIChatGenerator,
    "local": LocalChatGenerator,
}


def get_generator(name: str, backends: Mapping[str, Callable] = CHAT_GENERATORS, **kwargs):
    """Build a generator by backend name with backend-specific options.

    Args:
        name: A key of ``backends`` (``openai`` or ``local`` by default).
        backends: Backend name -> class (the synthesis adds its ``rules`` backend).
        **kwargs: Options of that backend.

    Raises:
        ValueError: ``name`` is not a backend; the message lists them.

    Example:
        >>> get_generator("gpt")
        Traceback (most recent call last):
        ...
        ValueError: unknown generator 'gpt'; choose one of openai, local
    """
    if name not in backends:
        raise ValueError(f"unknown generator {name!r}; choose one of {', '.join(backends)}")
    return backends[name](**kwargs)
