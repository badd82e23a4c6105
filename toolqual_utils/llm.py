"""The one OpenAI-compatible client of toolqual: async, cached, retried, counted, batch-file aware.

This is the ONLY module that imports ``openai``. Every model call of the judge and ICE engines goes
through :class:`LLMClient`:

* **Endpoint.** ``LLMConfig.base_url``, else env ``TOOLQUAL_BASE_URL``, else env ``OPENAI_BASE_URL``, else
  OpenAI. Any OpenAI-compatible server works (vLLM, llama.cpp server, LiteLLM, …).
* **Key.** Read only from the environment variable *named* by ``LLMConfig.api_key_env`` (default
  ``OPENAI_API_KEY``) and only when a request must actually be sent. When that variable is unset and the
  endpoint is a local server (``localhost``, ``127.x``, ``[::1]``), the placeholder ``"EMPTY"`` is sent,
  as local servers started without ``--api-key`` expect. The key never enters a parameter, a log line,
  an error text or the cache.
* **Concurrency and retries.** At most ``concurrency`` requests in flight (``asyncio.Semaphore``). Retries
  are the SDK's own (``max_retries`` on the client): it retries connection errors, timeouts, 408, 409,
  429 and 5xx with exponential backoff (0.5 s doubling, capped at 8 s, with jitter), and it honours a
  ``Retry-After``/``retry-after-ms`` header of up to 120 s (seconds, as in HTTP) instead of the backoff.
* **HTTP layer.** The SDK's ``DefaultAioHttpClient`` (aiohttp) when installed, else its default httpx
  client (``LLMConfig.http_transport``, env ``TOOLQUAL_HTTP_TRANSPORT``): the same SDK client either way;
  aiohttp spends about half the CPU per request. Its failures are reported as httpx reports them (a
  refused connection or a server that hangs up is a connection failure, not a timeout).
* **Deadline per attempt.** ``timeout_s`` bounds each attempt as a whole (connect, send, headers and the
  complete body): a server that drips its answer or never ends it is cut off after ``timeout_s`` and the
  attempt counts as a timeout (retried like one). A body over ``MAX_RESPONSE_BYTES`` is refused.
* **Unreachable endpoint.** When ``max_connection_failures`` connection attempts in a row fail (refused,
  unknown host, reset before any answer) and the endpoint has not answered once in this client, or
  that many requests in a row fail that way after all their retries, the client stops: requests in
  flight are abandoned, the rest are not sent (``unscored:not_sent``), and :attr:`LLMClient.stopped`
  says why. Answers received before are kept (and cached).
* **Cache.** A persistent sqlite file (WAL). The key is a sha256 of what changes the answer: the endpoint
  (the base URL, or ``cache_endpoint``), model name, messages, temperature, max_tokens, response schema,
  tools, prompt id and sample index — not timeouts or concurrency. Each ok answer is written as soon as
  it arrives, so a run killed midway resumes without paying twice: only the requests in flight at the
  kill (at most ``concurrency``) are sent again. Errors, refusals, truncations and malformed replies are
  never cached; a stored row that does not hold a well-formed answer is treated as a miss. A cache file
  that cannot be opened or read raises :class:`CacheError` naming the file and the ways out; a failed
  write mid-run is logged once and the run goes on without caching.
* **Statuses.** ``ok``; ``unscored:refusal`` (``message.refusal`` set, or ``finish_reason ==
  "content_filter"``); ``unscored:truncated`` (``finish_reason == "length"``); ``unscored:api_error``
  (HTTP error after retries, timeout, connection error, a body that is not a well-formed chat completion:
  content that is not text, usage that is not token counts, ...); ``unscored:not_cached`` (replay mode
  miss); ``unscored:too_long`` (the prompt is over the token ceiling: not sent); ``unscored:not_sent``
  (the run stopped at an unreachable endpoint first). Parsing ok text into verdicts is the caller's job.
* **Prompt ceiling.** A request whose prompt is estimated (characters / 4) above ``max_prompt_tokens``
  (default: the model's context window from :data:`MODEL_CONTEXT_TOKENS` minus the request's
  ``max_tokens``; 128,000 for models not listed) is never sent: ``unscored:too_long``.
* **Modes.** ``live`` (cache, then network) and ``replay`` (cache only: no network, no key needed).
* **Ledger** of requests, cache hits/misses, tokens and cost per model (:class:`Ledger`).
* **Batch files.** :meth:`LLMClient.export_batch` writes OpenAI Batch API request files (also runnable
  with ``vllm run-batch``); :meth:`LLMClient.import_batch` reads the result files back and fills the
  cache, so a following live or replay run reuses the answers.
* **Text completions.** A :class:`CompletionRequest` (plain-text prompt, stop sequences) goes to
  ``/v1/completions`` instead of ``/v1/chat/completions``, for base models without a chat template
  (vLLM refuses chat requests for those). Same cache (its key is distinct from any chat request's),
  retries, ledger, replay and Batch files (``"url": "/v1/completions"``; one endpoint per file). The
  answer text comes back in :attr:`ChatResult.text`; ``tool_calls`` is always ``None``.

Example:
    >>> cfg = LLMConfig(model="gpt-4o-mini", mode="replay", cache_path=None)
    >>> client = LLMClient(cfg)
    >>> req = ChatRequest("q1", ({"role": "user", "content": "Hi"},), prompt_id="demo.v1")
    >>> client.complete([req], progress=False)[0].status
    'unscored:not_cached'
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, AsyncIterable, Callable, Final, Iterable, Literal, Mapping, Sequence, Union
from urllib.parse import urlparse

from toolqual_utils.errors import ConfigError, InputError
from toolqual_utils.verdicts import Status

__all__ = [
    "LLMConfig",
    "ChatRequest",
    "CompletionRequest",
    "ChatResult",
    "CostPlan",
    "Ledger",
    "LLMClient",
    "ResponseCache",
    "request_body",
    "WireForm",
    "wire_form",
    "cache_key",
    "completion_body",
    "is_local_url",
    "wire_options_from_env",
    "Endpoint",
    "endpoint_from_env",
    "resolve_base_url",
    "TOKEN_LIMIT_PARAMS",
    "HTTP_TRANSPORTS",
    "resolve_http_transport",
    "CacheError",
    "CacheReport",
    "check_cache",
    "adopt_cache_answers",
    "cache_endpoint",
    "scoped_cache_key",
    "estimate_prompt_tokens",
    "model_context_tokens",
    "MODEL_CONTEXT_TOKENS",
    "MAX_RESPONSE_BYTES",
]

log = logging.getLogger("toolqual.llm")

Mode = Literal["live", "replay"]
TokenLimitParam = Literal["max_tokens", "max_completion_tokens"]
TOKEN_LIMIT_PARAMS: tuple[str, ...] = ("max_tokens", "max_completion_tokens")
#: HTTP layers under the SDK: ``aiohttp`` (the SDK's ``DefaultAioHttpClient``; about half the CPU per
#: request of the default one), ``httpx`` (the SDK's default), ``auto`` (aiohttp when installed)
HTTP_TRANSPORTS: tuple[str, ...] = ("auto", "aiohttp", "httpx")
#: the environment variable that picks the HTTP layer when ``LLMConfig.http_transport`` is None
HTTP_TRANSPORT_ENV: Final = "TOOLQUAL_HTTP_TRANSPORT"

# the statuses a result can have (defined once, in toolqual_utils.verdicts)
STATUS_OK = Status.OK
STATUS_REFUSAL = Status.UNSCORED_REFUSAL
STATUS_TRUNCATED = Status.UNSCORED_TRUNCATED
STATUS_API_ERROR = Status.UNSCORED_API_ERROR
STATUS_NOT_CACHED = Status.UNSCORED_NOT_CACHED
STATUS_TOO_LONG = Status.UNSCORED_TOO_LONG
STATUS_NOT_SENT = Status.UNSCORED_NOT_SENT

#: Characters per token assumed by :meth:`LLMClient.plan` (a common rule of thumb for English text and
#: JSON with OpenAI tokenizers; real counts vary by roughly ±30%).
CHARS_PER_TOKEN = 4.0

_CACHE_SCHEMA_VERSION = 1
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
_ERROR_TEXT_LIMIT = 600
#: the endpoint the SDK talks to when no base URL is configured
DEFAULT_BASE_URL = "https://api.openai.com/v1"

#: The largest response body read (a chat completion is a few KB; a bigger body is a broken server).
MAX_RESPONSE_BYTES = 32 * 2**20

#: Context windows (prompt + completion tokens) of well-known models, by name prefix (the longest
#: matching prefix wins). They set the default prompt ceiling; other models get
#: ``DEFAULT_CONTEXT_TOKENS``. Pass ``max_prompt_tokens`` for a local model with a smaller window.
MODEL_CONTEXT_TOKENS: dict[str, int] = {
    "gpt-3.5-turbo": 16_385,
    "gpt-4": 8_192,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
}
DEFAULT_CONTEXT_TOKENS = 128_000


# ---------------------------------------------------------------------------------------------- dataclasses
@dataclass(frozen=True)
class LLMConfig:
    """How to reach a model and what to do with its answers.

    Attributes:
        model: model name sent to the endpoint (also part of the cache key).
        base_url: endpoint base URL (``.../v1``); ``None`` = env ``TOOLQUAL_BASE_URL``, else env
            ``OPENAI_BASE_URL``, else OpenAI.
        api_key_env: NAME of the environment variable holding the key (the key is never a parameter).
        concurrency: maximum requests in flight.
        max_retries: SDK retries per request (connection errors, timeouts, 408/409/429/5xx).
        timeout_s: deadline of each attempt, in seconds: connecting, sending and receiving the whole
            answer (a server that drips bytes is cut off too).
        mode: ``"live"`` (cache then network) or ``"replay"`` (cache only; misses are
            ``unscored:not_cached``).
        cache_path: sqlite cache file; ``None`` disables the cache.
        prices: model -> (USD per 1M input tokens, USD per 1M output tokens); ``None`` = cost unknown.
        token_limit_param: request field that carries ``ChatRequest.max_tokens``: ``"max_tokens"`` or
            ``"max_completion_tokens"`` (needed by OpenAI reasoning models, also in Batch files). Live
            runs switch on their own when the server rejects one and names the other.
        send_temperature: ``False`` leaves ``temperature`` out of every request (and the cache key), for
            models that accept only their default, such as OpenAI's reasoning models.
        max_prompt_tokens: prompt-token ceiling (estimated as characters / 4); a request above it is
            ``unscored:too_long`` and never sent. ``None`` = the model's context window (see
            :data:`MODEL_CONTEXT_TOKENS`) minus the request's ``max_tokens``.
        max_connection_failures: stop the run after this many connection failures in a row (see the
            module docstring); 0 = never stop, every request then fails on its own.
        cache_endpoint: the name answers are cached under; ``None`` = the base URL. Give several URLs
            that serve the same model (replicas) one name so they share answers.
        http_transport: the HTTP layer under the SDK (see :func:`resolve_http_transport`): ``"aiohttp"``,
            ``"httpx"`` or ``"auto"`` (aiohttp when installed, else httpx); ``None`` = env
            ``TOOLQUAL_HTTP_TRANSPORT``, else ``"auto"``. Not part of the cache key: both send the same bytes.
    """

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    max_retries: int = 5
    timeout_s: float = 60.0
    mode: Mode = "live"
    cache_path: str | None = ".toolqual_cache/llm.sqlite"
    prices: Mapping[str, tuple[float, float]] | None = None
    token_limit_param: TokenLimitParam = "max_tokens"
    send_temperature: bool = True
    max_prompt_tokens: int | None = None
    max_connection_failures: int = 3
    cache_endpoint: str | None = None
    http_transport: str | None = None

    def __post_init__(self) -> None:
        if not self.model or not isinstance(self.model, str):
            raise ConfigError("LLMConfig.model must be a non-empty model name, e.g. 'gpt-4o-mini'.")
        if self.mode not in ("live", "replay"):
            raise ConfigError(f"LLMConfig.mode must be 'live' or 'replay', not {self.mode!r}.")
        if int(self.concurrency) < 1:
            raise ConfigError(f"LLMConfig.concurrency must be at least 1, not {self.concurrency!r}.")
        if int(self.max_retries) < 0:
            raise ConfigError(f"LLMConfig.max_retries must be 0 or more, not {self.max_retries!r}.")
        if not float(self.timeout_s) > 0:
            raise ConfigError(f"LLMConfig.timeout_s must be positive, not {self.timeout_s!r}.")
        if self.token_limit_param not in TOKEN_LIMIT_PARAMS:
            raise ConfigError(f"LLMConfig.token_limit_param must be one of {', '.join(TOKEN_LIMIT_PARAMS)}, "
                              f"not {self.token_limit_param!r}.")
        if self.max_prompt_tokens is not None and int(self.max_prompt_tokens) < 1:
            raise ConfigError(f"LLMConfig.max_prompt_tokens must be at least 1, not {self.max_prompt_tokens!r}.")
        if int(self.max_connection_failures) < 0:
            raise ConfigError("LLMConfig.max_connection_failures must be 0 (never stop) or more, "
                              f"not {self.max_connection_failures!r}.")
        if self.http_transport is not None and self.http_transport not in HTTP_TRANSPORTS:
            raise ConfigError(f"LLMConfig.http_transport must be one of {', '.join(HTTP_TRANSPORTS)}, "
                              f"not {self.http_transport!r}.")


#: How a request with a response schema asks for structured output (see ``ChatRequest.response_format``).
RESPONSE_FORMATS: Final = ("json_schema", "json_object", "none")


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completion request.

    Attributes:
        custom_id: caller's id, echoed in the result (also the Batch API ``custom_id``; must be unique
            within one batch file).
        messages: OpenAI chat messages.
        prompt_id: prompt template id and version, e.g. ``"judge_combined.v1"`` (part of the cache key).
        temperature: sampling temperature; ``None`` = not sent (the server's default).
        max_tokens: completion token limit (sent as ``LLMConfig.token_limit_param``); ``None`` = server
            default.
        response_schema: a JSON schema, sent as ``response_format={"type": "json_schema", ...}``. A bare
            schema is wrapped as ``{"name": <from prompt_id>, "schema": schema, "strict": False}``; a dict
            that already has ``"name"`` and ``"schema"`` keys is sent as the ``json_schema`` object as is
            (use that to set ``"strict": True``).
        tools: OpenAI tool definitions (``{"type": "function", "function": {...}}``).
        sample_index: index of a repeated sample of the same prompt (part of the cache key).
        response_format: how ``response_schema`` is asked for: ``"json_schema"`` (structured output, the
            default), ``"json_object"`` (any JSON object; for servers without json_schema support: older
            vLLM, some Ollama models, LiteLLM routes) or ``"none"`` (no response_format at all; the prompt
            describes the answer and the caller parses JSON out of free text). Part of the cache key when
            not the default.
        tool_choice: ``"auto"``, ``"none"`` or ``"required"``, sent with ``tools``; ``None`` = not sent (the
            server's default). Part of the cache key only when set, so existing keys are unchanged.
    """

    custom_id: str
    messages: tuple[dict, ...]
    prompt_id: str
    temperature: float | None = 0.0
    max_tokens: int | None = None
    response_schema: dict | None = None
    tools: tuple[dict, ...] | None = None
    sample_index: int = 0
    tool_choice: str | None = None
    response_format: str = "json_schema"


@dataclass(frozen=True)
class CompletionRequest:
    """One text-completion request (``/v1/completions``), for base models without a chat template.

    Attributes:
        custom_id: caller's id, echoed in the result (also the Batch API ``custom_id``).
        prompt: the whole prompt text; the model continues it.
        prompt_id: prompt template id and version (part of the cache key).
        stop: stop sequences (the server cuts the answer before the first one); ``None`` = not sent.
        temperature: sampling temperature; ``None`` = not sent.
        max_tokens: completion token limit, always sent as ``max_tokens`` (the completions API has no
            other name for it); ``None`` = server default.
        sample_index: index of a repeated sample of the same prompt (part of the cache key).
    """

    custom_id: str
    prompt: str
    prompt_id: str
    stop: tuple[str, ...] | None = None
    temperature: float | None = 0.0
    max_tokens: int | None = None
    sample_index: int = 0


#: Either kind of request the client sends.
AnyRequest = Union[ChatRequest, CompletionRequest]


@dataclass
class ChatResult:
    """The outcome of one :class:`ChatRequest` (results come back in request order).

    Attributes:
        custom_id: the request's id.
        status: ``ok`` | ``unscored:refusal`` | ``unscored:truncated`` | ``unscored:api_error`` |
            ``unscored:not_cached`` | ``unscored:too_long`` | ``unscored:not_sent``.
        text: message content (kept for refusals and truncations too, when the server sent any).
        tool_calls: ``[{"name": str, "arguments": str}]`` when the model called tools, else ``None``.
        finish_reason: as reported by the server.
        prompt_tokens: usage reported for this answer (for cached answers: the usage when first paid).
        completion_tokens: idem.
        cached: True when the answer was served from the cache or shared with an identical request of the
            same run (nothing paid now; see ``shared``).
        error: why the result is unscored (no secrets); ``None`` when ok.
        shared: True when an identical request of the same run was answered (or failed) and this request
            takes its outcome: it was neither sent nor read from the cache.
    """

    custom_id: str
    status: str
    text: str | None
    tool_calls: list[dict] | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    error: str | None
    shared: bool = False

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


@dataclass(frozen=True)
class CostPlan:
    """What a run would cost before it is sent (see :meth:`LLMClient.plan`).

    Token figures are estimates for the requests still to send: prompt tokens = characters of the JSON
    request (messages, tools, schema) / ``CHARS_PER_TOKEN`` (4); completion tokens = the expected output
    per request (capped by its ``max_tokens``). ``est_cost_usd`` is ``None`` when no price is known for
    the model. ``n_too_long`` requests are over the prompt ceiling: they would not be sent (and are not
    in ``n_to_send`` or the estimates). ``n_shared`` requests are identical to an earlier one of the same
    run: they are answered by its answer, not sent (outside replay mode, ``n_requests`` = ``n_cached`` +
    ``n_shared`` + ``n_to_send`` + ``n_too_long``).
    """

    model: str
    n_requests: int
    n_cached: int
    n_to_send: int
    est_prompt_tokens: int
    est_completion_tokens: int
    est_cost_usd: float | None
    n_too_long: int = 0
    n_shared: int = 0


@dataclass
class _ModelCounts:
    n_requests: int = 0
    n_cache_hits: int = 0
    n_cache_misses: int = 0
    n_shared: int = 0
    n_sent: int = 0
    n_imported: int = 0
    n_ok: int = 0
    n_unscored: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Ledger:
    """Token and cost ledger of one :class:`LLMClient`, by model.

    Counts every request asked (``n_requests``), how many the cache served (``n_cache_hits``) and did not
    (``n_cache_misses``: sent in live mode, ``unscored:not_cached`` in replay), how many took the outcome
    of an identical request of the same run (``n_shared``: neither sent nor served by the cache, which they
    may not even have; ``n_requests`` = hits + misses + shared), how many were sent to the
    server now (``n_sent``), how many were answered from Batch result files (``n_imported``: sent earlier,
    through the Batch API or ``vllm run-batch``), and the tokens paid (usage of answers received from the
    server or imported, whatever their status; cached answers cost nothing now).
    Cost uses the configured price table (Batch API discounts are not applied).
    """

    COLUMNS = [
        "model",
        "n_requests",
        "n_cache_hits",
        "n_cache_misses",
        "n_shared",
        "n_sent",
        "n_imported",
        "n_ok",
        "n_unscored",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
    ]

    def __init__(self, prices: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.prices = dict(prices or {})
        self._by_model: dict[str, _ModelCounts] = {}
        self._lock = threading.Lock()

    def _counts(self, model: str) -> _ModelCounts:
        counts = self._by_model.get(model)
        if counts is None:
            counts = self._by_model[model] = _ModelCounts()
        return counts

    def record(self, model: str, result: ChatResult, *, sent: bool, imported: bool = False) -> None:
        """Count one finished request (``sent`` = an answer or error came from the server or, with
        ``imported``, from a Batch result file)."""
        with self._lock:
            counts = self._counts(model)
            counts.n_requests += 1
            if result.shared:
                counts.n_shared += 1
            elif result.cached:
                counts.n_cache_hits += 1
            else:
                counts.n_cache_misses += 1
            if sent:
                if imported:
                    counts.n_imported += 1
                else:
                    counts.n_sent += 1
                counts.prompt_tokens += result.prompt_tokens
                counts.completion_tokens += result.completion_tokens
            if result.status == STATUS_OK:
                counts.n_ok += 1
            else:
                counts.n_unscored += 1

    def cost_usd(self, model: str | None = None) -> float | None:
        """Cost paid so far (one model, or all); ``None`` if a model with paid tokens has no price."""
        total = 0.0
        for name, counts in self._by_model.items():
            if model is not None and name != model:
                continue
            cost = _cost(self.prices, name, counts.prompt_tokens, counts.completion_tokens)
            if cost is None:
                if counts.prompt_tokens or counts.completion_tokens:
                    return None
                cost = 0.0
            total += cost
        return total

    def totals(self) -> dict[str, Any]:
        """All models added up: the same keys as :attr:`COLUMNS` (``model`` = ``"all"``)."""
        total = _ModelCounts()
        for counts in self._by_model.values():
            for name in vars(total):
                setattr(total, name, getattr(total, name) + getattr(counts, name))
        return {"model": "all", **vars(total), "cost_usd": self.cost_usd()}

    def to_frame(self):
        """One row per model; columns :attr:`COLUMNS` (``cost_usd`` is NaN/None when no price is known).

        Empty ledger -> an empty frame with those columns.
        """
        import pandas as pd

        rows = [
            {
                "model": name,
                **vars(counts),
                "cost_usd": _cost(self.prices, name, counts.prompt_tokens, counts.completion_tokens),
            }
            for name, counts in sorted(self._by_model.items())
        ]
        return pd.DataFrame(rows, columns=self.COLUMNS)

    def __repr__(self) -> str:
        t = self.totals()
        return (
            f"Ledger(requests={t['n_requests']}, cache_hits={t['n_cache_hits']}, shared={t['n_shared']}, "
            f"sent={t['n_sent']}, "
            f"prompt_tokens={t['prompt_tokens']}, completion_tokens={t['completion_tokens']}, "
            f"cost_usd={t['cost_usd']})"
        )


def _cost(prices: Mapping[str, tuple[float, float]], model: str, prompt: int, completion: int) -> float | None:
    price = prices.get(model)
    if price is None:
        return None
    return (prompt * float(price[0]) + completion * float(price[1])) / 1_000_000


# ---------------------------------------------------------------------------------------------- requests
def _schema_name(prompt_id: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", prompt_id).strip("_") or "response"
    return name[:64]


def request_body(model: str, request: AnyRequest, token_limit_param: TokenLimitParam = "max_tokens") -> dict:
    """The exact JSON body sent for ``request`` (live, and in Batch files).

    ``token_limit_param`` names the field that carries ``request.max_tokens`` of a chat request (see
    :class:`LLMConfig`); a :class:`CompletionRequest` gets :func:`completion_body`.
    """
    if isinstance(request, CompletionRequest):
        return completion_body(model, request)
    body: dict[str, Any] = {
        "model": model,
        "messages": [dict(m) for m in request.messages],
    }
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        if token_limit_param not in TOKEN_LIMIT_PARAMS:
            raise ConfigError(f"token_limit_param must be one of {', '.join(TOKEN_LIMIT_PARAMS)}, "
                              f"not {token_limit_param!r}.")
        body[token_limit_param] = request.max_tokens
    if request.response_schema is not None:
        schema = request.response_schema
        if "schema" in schema and "name" in schema:
            json_schema = dict(schema)
        else:
            json_schema = {"name": _schema_name(request.prompt_id), "schema": schema, "strict": False}
        if request.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        elif request.response_format != "none":
            body["response_format"] = {"type": "json_schema", "json_schema": json_schema}
    if request.tools is not None:
        body["tools"] = [dict(t) for t in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    return body


def cache_key(model: str, request: AnyRequest) -> str:
    """sha256 hex of everything in the request that changes the answer (not timeouts or concurrency).

    This is the request's part of the key; the client stores answers under
    :func:`scoped_cache_key` of it and the endpoint, so answers from one server are never served for
    another. (Caches written before the endpoint was part of the key hold answers under this key
    alone; ``toolqual cache adopt`` assigns them to an endpoint.)
    """
    if isinstance(request, CompletionRequest):
        return _completion_cache_key(model, request)
    payload = {
        "v": _CACHE_SCHEMA_VERSION,
        "model": model,
        "messages": list(request.messages),
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "response_schema": request.response_schema,
        "tools": list(request.tools) if request.tools is not None else None,
        "prompt_id": request.prompt_id,
        "sample_index": request.sample_index,
    }
    if request.tool_choice is not None:
        payload["tool_choice"] = request.tool_choice
    if request.response_format != "json_schema":
        payload["response_format"] = request.response_format
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_endpoint(base_url: str | None) -> str:
    """The endpoint name answers are cached under: the base URL with a lower-case scheme and host and no
    trailing slash; ``None`` (the SDK's default) is OpenAI's URL, so naming it explicitly changes nothing."""
    url = (base_url or DEFAULT_BASE_URL).strip()
    parts = urlparse(url)
    if parts.scheme and parts.netloc:
        url = parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()
    return url.rstrip("/")


def scoped_cache_key(request_key: str, endpoint: str) -> str:
    """The stored key: ``request_key`` (see :func:`cache_key`) scoped to one endpoint name."""
    return hashlib.sha256(f"endpoint\n{endpoint}\n{request_key}".encode("utf-8")).hexdigest()


def _prompt_chars(body: Mapping[str, Any]) -> int:
    return len(json.dumps({k: body[k] for k in ("messages", "tools", "response_format", "prompt") if k in body}))


def estimate_prompt_tokens(request: AnyRequest) -> int:
    """Prompt tokens of ``request``, estimated as characters of its JSON (messages, tools, response
    schema) / ``CHARS_PER_TOKEN``; the same estimate :meth:`LLMClient.plan` uses."""
    return int(round(_prompt_chars(request_body("model", request)) / CHARS_PER_TOKEN))


def model_context_tokens(model: str) -> int:
    """The context window of ``model`` by its longest known name prefix (:data:`MODEL_CONTEXT_TOKENS`),
    else ``DEFAULT_CONTEXT_TOKENS``. A provider prefix such as ``openai/`` is ignored."""
    name = model.rsplit("/", 1)[-1].lower()
    best = max((prefix for prefix in MODEL_CONTEXT_TOKENS if name.startswith(prefix)), key=len, default=None)
    return MODEL_CONTEXT_TOKENS[best] if best is not None else DEFAULT_CONTEXT_TOKENS


def _prompt_ceiling(config: LLMConfig, request: AnyRequest) -> int:
    if config.max_prompt_tokens is not None:
        return int(config.max_prompt_tokens)
    return max(1, model_context_tokens(config.model) - int(request.max_tokens or 0))


def _too_long(config: LLMConfig, request: AnyRequest, wire: WireForm | None = None) -> ChatResult | None:
    """``unscored:too_long`` for a request over the prompt ceiling, else None (``wire``: its
    :class:`WireForm`, whose estimate is used when given)."""
    ceiling = _prompt_ceiling(config, request)
    estimate = (int(round(wire.prompt_chars / CHARS_PER_TOKEN)) if wire is not None
                else estimate_prompt_tokens(request))
    if estimate <= ceiling:
        return None
    where = ("--max-prompt-tokens" if config.max_prompt_tokens is not None
             else f"the context window of {config.model} ({model_context_tokens(config.model):,} tokens) minus "
                  f"max_tokens; set --max-prompt-tokens to change it")
    return _error_result(
        request.custom_id, STATUS_TOO_LONG,
        f"prompt of about {estimate:,} tokens (characters / {CHARS_PER_TOKEN:g}) is over the ceiling of "
        f"{ceiling:,} ({where}); not sent",
    )


@dataclass(frozen=True)
class WireForm:
    """What the client works out from a chat request before sending it, worked out ahead of time (a
    planning process does it while the event loop sends; see :meth:`LLMClient.astream`).

    Valid for one model, temperature and token-limit field: the client uses it only when they are the
    ones it sends with, and works the request out itself otherwise.

    Attributes:
        request_key: :func:`cache_key` of the request for ``model``.
        content: the body (:func:`request_body`) as compact UTF-8 JSON, the bytes sent.
        prompt_chars: the characters the prompt ceiling is estimated from (see :func:`estimate_prompt_tokens`).
    """

    model: str
    temperature: float | None
    token_limit_param: str
    request_key: str
    content: bytes
    prompt_chars: int

    def fits(self, model: str, request: AnyRequest) -> bool:
        """True when this wire form is the one ``request`` has when ``model`` sends it."""
        return self.model == model and isinstance(request, ChatRequest) and self.temperature == request.temperature


def wire_form(request: ChatRequest, model: str, token_limit_param: TokenLimitParam = "max_tokens") -> WireForm:
    """The :class:`WireForm` of ``request`` sent to ``model`` with ``token_limit_param``."""
    body = request_body(model, request, token_limit_param)
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)  # as the SDK writes it
    return WireForm(model, request.temperature, token_limit_param, cache_key(model, request), content.encode("utf-8"),
                    _prompt_chars(body))


def _validate_requests(requests: Sequence[AnyRequest]) -> list[AnyRequest]:
    requests = list(requests)
    for index, request in enumerate(requests):
        if isinstance(request, CompletionRequest):
            if not isinstance(request.prompt, str) or not request.prompt:
                raise InputError("a completion request needs a non-empty prompt text", record=request.custom_id,
                                 field="prompt")
            continue
        if not isinstance(request, ChatRequest):
            raise InputError(
                f"expected a ChatRequest or CompletionRequest, got {type(request).__name__}", record=index,
                field="requests"
            )
        if not request.messages:
            raise InputError("a chat request needs at least one message", record=request.custom_id, field="messages")
        if getattr(request, "response_format", "json_schema") not in RESPONSE_FORMATS:
            raise InputError(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, not "
                             f"{request.response_format!r}", record=request.custom_id, field="response_format")
    return requests


# ---------------------------------------------------------------------------------------------- completions
def completion_body(model: str, request: CompletionRequest) -> dict:
    """The exact ``/v1/completions`` JSON body sent for ``request`` (live, and in Batch files)."""
    body: dict[str, Any] = {"model": model, "prompt": request.prompt}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    return body


def _completion_cache_key(model: str, request: CompletionRequest) -> str:
    """Cache key of a completion request: its own payload shape (``"api": "completions"``), so it can never
    equal a chat request's key."""
    payload = {
        "v": _CACHE_SCHEMA_VERSION,
        "api": "completions",
        "model": model,
        "prompt": request.prompt,
        "stop": list(request.stop) if request.stop else None,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "prompt_id": request.prompt_id,
        "sample_index": request.sample_index,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _batch_url(request: AnyRequest) -> str:
    return "/v1/completions" if isinstance(request, CompletionRequest) else "/v1/chat/completions"


def _result_from_completion_choice(custom_id: str, choice: dict, prompt_tokens: int,
                                   completion_tokens: int) -> ChatResult:
    """Classify the first choice of a text-completion body (``{"text", "finish_reason"}``)."""
    text = choice.get("text")
    finish_reason = choice.get("finish_reason")
    status, error = STATUS_OK, None
    if finish_reason is not None and not isinstance(finish_reason, str):
        status, error = STATUS_API_ERROR, (f"malformed reply: choices[0].finish_reason is {_kind(finish_reason)} "
                                           f"({_excerpt(finish_reason)}), expected text or null")
        finish_reason, text = None, text if isinstance(text, str) else None
    elif not isinstance(text, str):
        status, error, text = STATUS_API_ERROR, f"completion choice has no text (finish_reason={finish_reason})", None
    elif finish_reason == "content_filter":
        status, error = STATUS_REFUSAL, "finish_reason=content_filter"
    elif finish_reason == "length":
        status, error = STATUS_TRUNCATED, "finish_reason=length: the answer hit max_tokens"
    return ChatResult(custom_id=custom_id, status=status, text=text, tool_calls=None, finish_reason=finish_reason,
                      prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cached=False, error=error)


# ---------------------------------------------------------------------------------------------- parsing
def _redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "<redacted>")
    text = re.sub(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}", r"\1<redacted>", text)
    text = re.sub(r"\bsk-[A-Za-z0-9_\-]{8,}", "sk-<redacted>", text)
    return text[:_ERROR_TEXT_LIMIT]


def _error_result(custom_id: str, status: str, error: str) -> ChatResult:
    return ChatResult(custom_id, status, None, None, None, 0, 0, False, error)


class _Malformed(Exception):
    """A reply part that is not what a chat completion holds (the message says which and what it was)."""


def _excerpt(value: Any, limit: int = 200) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _token_count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Malformed(f"usage.{name} is {_kind(value)} ({_excerpt(value)}), expected a token count")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise _Malformed(f"usage.{name} is {_excerpt(value)}, expected a whole token count")
    if value < 0:
        raise _Malformed(f"usage.{name} is negative ({value})")
    return int(value)


def _usage(body: Mapping[str, Any]) -> tuple[int, int]:
    """(prompt, completion) tokens; a missing or null ``usage`` counts 0 (some servers send none)."""
    usage = body.get("usage")
    if usage is None:
        return 0, 0
    if not isinstance(usage, dict):
        raise _Malformed(f"usage is {_kind(usage)} ({_excerpt(usage)}), expected an object of token counts")
    return _token_count(usage, "prompt_tokens"), _token_count(usage, "completion_tokens")


def _optional_text(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _Malformed(f"{where} is {_kind(value)} ({_excerpt(value)}), expected text or null")


def _tool_calls(value: Any) -> list[dict] | None:
    """``[{"name", "arguments"}]`` from ``message.tool_calls`` (None when there are none)."""
    if value is None or value == []:
        return None
    if not isinstance(value, list):
        raise _Malformed(f"message.tool_calls is {_kind(value)} ({_excerpt(value)}), expected a list")
    calls = []
    for index, call in enumerate(value):
        where = f"message.tool_calls[{index}]"
        if not isinstance(call, dict):
            raise _Malformed(f"{where} is {_kind(call)} ({_excerpt(call)}), expected an object")
        function = call.get("function") if call.get("function") is not None else call.get("custom")
        if not isinstance(function, dict):
            raise _Malformed(f"{where}.function is {_kind(function)} ({_excerpt(function)}), expected an object")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise _Malformed(f"{where}.function.name is {_kind(name)} ({_excerpt(name)}), expected a function name")
        arguments = function.get("arguments", function.get("input", ""))
        if arguments is None:
            arguments = ""
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False, default=str)
        calls.append({"name": name, "arguments": arguments})
    return calls


def _result_from_body(custom_id: str, body: Any) -> ChatResult:
    """Classify a chat-completion JSON body (live answer or Batch result) into a :class:`ChatResult`.

    Every part is checked before the answer can be ok (and so cached): a body that is not an object,
    no choices, a message, content, refusal, finish reason, tool call or usage of the wrong shape gives
    ``unscored:api_error`` naming the part and showing what was there (the content is kept as ``text``
    when it was text).
    """
    if not isinstance(body, dict):
        return _error_result(custom_id, STATUS_API_ERROR,
                             f"response body is {_kind(body)} ({_excerpt(body)}), expected a chat completion object")
    try:
        prompt_tokens, completion_tokens = _usage(body)
    except _Malformed as exc:
        usage_problem: str | None = str(exc)
        prompt_tokens = completion_tokens = 0
    else:
        usage_problem = None
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        error = body.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else None
            detail = f"the server answered with an error: {message if isinstance(message, str) else _excerpt(error)}"
        elif choices is None:
            detail = "response has no choices"
        elif isinstance(choices, list) and choices:
            detail = f"choices[0] is {_kind(choices[0])} ({_excerpt(choices[0])}), expected an object"
        else:
            detail = f"response has no choices (choices is {_excerpt(choices)})"
        result = _error_result(custom_id, STATUS_API_ERROR, detail[:_ERROR_TEXT_LIMIT])
        result.prompt_tokens, result.completion_tokens = prompt_tokens, completion_tokens
        return result
    choice = choices[0]
    if "message" not in choice and "text" in choice:  # a text completion (/v1/completions)
        if usage_problem:
            result = _error_result(custom_id, STATUS_API_ERROR, f"malformed reply: {usage_problem}"[:_ERROR_TEXT_LIMIT])
            result.text = choice["text"] if isinstance(choice["text"], str) else None
            return result
        return _result_from_completion_choice(custom_id, choice, prompt_tokens, completion_tokens)
    text: str | None = None
    try:
        message = choice.get("message")
        if message is None:
            message = {}
        if not isinstance(message, dict):
            raise _Malformed(f"choices[0].message is {_kind(message)} ({_excerpt(message)}), expected an object")
        text = _optional_text(message.get("content"), "message.content")
        finish_reason = _optional_text(choice.get("finish_reason"), "choices[0].finish_reason")
        refusal = _optional_text(message.get("refusal"), "message.refusal")
        tool_calls = _tool_calls(message.get("tool_calls"))
        if usage_problem:
            raise _Malformed(usage_problem)
    except _Malformed as exc:
        result = _error_result(custom_id, STATUS_API_ERROR, f"malformed reply: {exc}"[:_ERROR_TEXT_LIMIT])
        result.text = text
        result.prompt_tokens, result.completion_tokens = prompt_tokens, completion_tokens
        return result
    status, error = STATUS_OK, None
    if refusal:
        status, error = STATUS_REFUSAL, f"model refused: {refusal[:300]}"
    elif finish_reason == "content_filter":
        status, error = STATUS_REFUSAL, "finish_reason=content_filter"
    elif finish_reason == "length":
        status, error = STATUS_TRUNCATED, "finish_reason=length: the answer hit max_tokens"
    elif text is None and not tool_calls:
        status, error = STATUS_API_ERROR, f"answer has neither content nor tool_calls (finish_reason={finish_reason})"
    return ChatResult(
        custom_id=custom_id,
        status=status,
        text=text,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached=False,
        error=error,
    )


def _other_token_param(exc: BaseException, sent: str) -> str | None:
    """The other token-limit field, when ``exc`` is a 400 rejecting the field ``sent`` and naming the other.

    OpenAI's reasoning models answer ``max_tokens`` with "Unsupported parameter: 'max_tokens' is not
    supported with this model. Use 'max_completion_tokens' instead."; an older server may reject
    ``max_completion_tokens`` as an unrecognised/extra argument.
    """
    import openai

    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 422):
        return None
    text = str(exc.message or "")
    body = getattr(exc, "body", None)
    if body is not None:
        text += " " + json.dumps(body, default=str)
    other = "max_completion_tokens" if sent == "max_tokens" else "max_tokens"
    names_sent = re.search(rf"(?<![A-Za-z_]){sent}(?![A-Za-z_])", text) is not None
    names_other = re.search(rf"(?<![A-Za-z_]){other}(?![A-Za-z_])", text) is not None
    rejects = re.search(r"(?i)unsupported|not supported|unrecogni[sz]ed|unknown|extra|not permitted|"
                        r"not allowed|invalid (?:request )?argument", text) is not None
    if names_sent and rejects and (names_other or sent == "max_completion_tokens"):
        return other
    return None


def _describe_exception(exc: BaseException, secret: str | None, config: LLMConfig | None = None) -> str:
    import openai

    retries = f", after {config.max_retries} retr{'y' if config.max_retries == 1 else 'ies'}" if config else ""
    if isinstance(exc, openai.APITimeoutError):
        if config is not None:
            text = (f"request timed out: no complete answer within {config.timeout_s:g} s per attempt (connect + "
                    f"read; --timeout){retries}")
        else:
            text = "request timed out (after the SDK's retries)"
    elif isinstance(exc, openai.APIStatusError):
        text = f"HTTP {exc.status_code}: {exc.message}"
        if exc.status_code in (400, 422) and "temperature" in str(exc.message):
            text += (" [if the model accepts only its default temperature, leave it out: --no-temperature, "
                     "or LLMConfig(send_temperature=False)]")
    elif isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        text = f"connection error: {type(cause).__name__ if cause else ''} {cause or exc}".strip() + retries
    elif isinstance(exc, openai.OpenAIError) and type(exc).__name__ == "_ResponseTooLarge":
        text = f"malformed reply: {exc}"
    elif isinstance(exc, json.JSONDecodeError):
        text = f"malformed JSON response body: {exc}"
    elif isinstance(exc, (ValueError, RecursionError)):
        text = f"malformed JSON response body: {type(exc).__name__}: {str(exc)[:200]}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return _redact(text, secret)


# ---------------------------------------------------------------------------------------------- cache
class CacheError(ConfigError):
    """The answer cache file cannot be used. The message names the file and the ways out."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        if "is a directory" in problem:
            ways = "give a file path with --cache FILE.sqlite, or run without a cache (--cache none)."
        elif "not a toolqual answer cache" in problem:
            ways = (f"give another file with --cache FILE.sqlite, or run without a cache (--cache none); {path} is "
                    f"left as it is (`toolqual cache check {path}` shows what it holds).")
        else:
            ways = (f"run `toolqual cache check {path}` to see what is wrong (with --repair it removes damaged "
                    f"answers), or run without a cache (--cache none), or start a new cache file (--cache "
                    f"NEW.sqlite). Deleting {path} also works, but the answers it holds are then paid for again.")
        super().__init__(f"the answer cache {path} {problem}. To go on: {ways}")


def _sqlite_problem(exc: BaseException) -> str:
    """What an sqlite/OS error means for the user, in a few words (the raw text in brackets)."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, IsADirectoryError) or "is a directory" in lowered:
        return "is a directory, not a cache file"
    if "not a database" in lowered or "malformed" in lowered or "disk i/o" in lowered or "corrupt" in lowered:
        return f"is damaged or is not an sqlite file (sqlite: {text})"
    if "locked" in lowered or "busy" in lowered:
        return (f"is locked by another program that has been writing to it for more than 30 s (sqlite: {text}); "
                "wait for that run to finish")
    if "readonly" in lowered or "read-only" in lowered or isinstance(exc, PermissionError):
        return f"cannot be written (sqlite: {text}); check its permissions and those of its folder"
    if "unable to open" in lowered:
        return f"cannot be opened (sqlite: {text}); is its folder missing, read-only, or is the path a directory?"
    if "no such table" in lowered or "no such column" in lowered or "has no column" in lowered:
        return f"is an sqlite file but not a toolqual answer cache (sqlite: {text})"
    return f"cannot be used (sqlite: {text})"


_CACHE_ERRORS = (sqlite3.Error, OSError)


def _record_from_row(text: Any) -> dict | None:
    """The stored answer of one row, or None when the row does not hold a well-formed ok answer."""
    if not isinstance(text, (str, bytes)):
        return None
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    content, tool_calls, finish = record.get("text"), record.get("tool_calls"), record.get("finish_reason")
    if content is not None and not isinstance(content, str):
        return None
    if finish is not None and not isinstance(finish, str):
        return None
    if tool_calls is not None:
        if not isinstance(tool_calls, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("arguments"), str)
            for c in tool_calls
        ):
            return None
    if content is None and not tool_calls:
        return None
    for name in ("prompt_tokens", "completion_tokens"):
        value = record.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            return None
    return record


class ResponseCache:
    """Persistent sqlite cache of ok answers, keyed by :func:`scoped_cache_key`.

    One connection per instance, guarded by a lock (safe for concurrent writers of one process; other
    processes may share the file: WAL journal, 30 s busy timeout). Each :meth:`put` commits at once, so
    answers survive a killed run. Rows also record the endpoint and the request's own key
    (:func:`cache_key`), so a miss can say which other endpoint answered the same request.

    Rows that do not hold a well-formed answer (damaged, or written by a faulty version) are skipped by
    :meth:`get_many` and counted in :attr:`n_malformed`: the request is then asked again and the new
    answer replaces the row.

    Raises:
        CacheError: the file cannot be opened, is not an sqlite database, is not a toolqual cache, or
            cannot be read (every method); the message names the file and what to do.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        #: rows skipped by get_many because they hold no well-formed answer
        self.n_malformed = 0
        #: True when the file can be read but not written (the schema could not be brought up to date)
        self.read_only = False
        try:
            if self.path.is_dir():
                raise IsADirectoryError(str(self.path))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
        except _CACHE_ERRORS as exc:
            raise CacheError(self.path, _sqlite_problem(exc)) from None
        try:
            self._prepare_schema()
        except _CACHE_ERRORS as exc:
            self._conn.close()
            raise CacheError(self.path, _sqlite_problem(exc)) from None

    def _prepare_schema(self) -> None:
        conn = self._conn
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "responses" not in tables:  # never write into another program's database
            raise sqlite3.DatabaseError(f"no such table: responses (it holds {', '.join(sorted(tables)[:5])})")
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                " key TEXT PRIMARY KEY, model TEXT NOT NULL, prompt_id TEXT, custom_id TEXT,"
                " result TEXT NOT NULL, created REAL NOT NULL, endpoint TEXT, request_key TEXT)"
            )
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc).lower() or "responses" not in tables:
                raise
            self.read_only = True
        columns = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
        missing = {"key", "result"} - columns
        if missing:
            raise sqlite3.DatabaseError(f"its responses table has no column {', '.join(sorted(missing))}")
        if self.read_only:
            self._has_endpoint_columns = {"endpoint", "request_key"} <= columns
            return
        for column in ("endpoint", "request_key"):  # caches written before answers were kept per endpoint
            if column not in columns:
                try:
                    conn.execute(f"ALTER TABLE responses ADD COLUMN {column} TEXT")
                except sqlite3.OperationalError as exc:  # another process added it a moment ago
                    if "duplicate column" not in str(exc).lower():
                        raise
        conn.execute("CREATE INDEX IF NOT EXISTS responses_request_key ON responses (request_key)")
        self._has_endpoint_columns = True

    def _fail(self, exc: BaseException) -> CacheError:
        return CacheError(self.path, _sqlite_problem(exc))

    def get_many(self, keys: Iterable[str]) -> dict[str, dict]:
        """Stored well-formed answers for the keys present (key -> answer dict)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict] = {}
        with self._lock:
            try:
                for start in range(0, len(keys), 500):
                    chunk = keys[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = self._conn.execute(f"SELECT key, result FROM responses WHERE key IN ({marks})", chunk)
                    for key, result in rows:
                        record = _record_from_row(result)
                        if record is None:
                            self.n_malformed += 1
                        else:
                            found[key] = record
            except _CACHE_ERRORS as exc:
                raise self._fail(exc) from None
        return found

    def other_endpoints(self, request_keys: Iterable[str], endpoint: str) -> dict[str | None, int]:
        """How many of ``request_keys`` are answered under another endpoint name (``None`` = answers
        stored before the endpoint was part of the key)."""
        request_keys = list(dict.fromkeys(request_keys))
        counts: dict[str | None, int] = {}
        with self._lock:
            try:
                for start in range(0, len(request_keys), 500):
                    chunk = request_keys[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    queries = [(f"SELECT NULL, COUNT(*) FROM responses WHERE key IN ({marks})", chunk)]
                    if self._has_endpoint_columns:
                        queries = [
                            (f"SELECT NULL, COUNT(*) FROM responses WHERE key IN ({marks}) AND endpoint IS NULL",
                             chunk),
                            (f"SELECT endpoint, COUNT(*) FROM responses WHERE request_key IN ({marks}) AND "
                             f"endpoint IS NOT NULL AND endpoint != ? GROUP BY endpoint", [*chunk, endpoint]),
                        ]
                    for sql, parameters in queries:
                        for name, count in self._conn.execute(sql, parameters):
                            if count:
                                counts[name] = counts.get(name, 0) + int(count)
            except _CACHE_ERRORS as exc:
                raise self._fail(exc) from None
        return counts

    def put(
        self, key: str, model: str, prompt_id: str, custom_id: str, result: ChatResult, *,
        endpoint: str | None = None, request_key: str | None = None,
    ) -> None:
        """Store one ok answer (committed immediately)."""
        record = {
            "text": result.text,
            "tool_calls": result.tool_calls,
            "finish_reason": result.finish_reason,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
        }
        text = json.dumps(record, ensure_ascii=False)
        with self._lock:
            try:
                if self._has_endpoint_columns:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO responses (key, model, prompt_id, custom_id, result, created, endpoint,"
                        " request_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (key, model, prompt_id, custom_id, text, time.time(), endpoint, request_key),
                    )
                else:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO responses (key, model, prompt_id, custom_id, result, created)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (key, model, prompt_id, custom_id, text, time.time()),
                    )
            except _CACHE_ERRORS as exc:
                raise self._fail(exc) from None

    def __len__(self) -> int:
        with self._lock:
            try:
                return self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            except _CACHE_ERRORS as exc:
                raise self._fail(exc) from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _result_from_cache(custom_id: str, record: dict) -> ChatResult:
    return ChatResult(
        custom_id=custom_id,
        status=STATUS_OK,
        text=record.get("text"),
        tool_calls=record.get("tool_calls"),
        finish_reason=record.get("finish_reason"),
        prompt_tokens=int(record.get("prompt_tokens") or 0),
        completion_tokens=int(record.get("completion_tokens") or 0),
        cached=True,
        error=None,
    )


@dataclass
class CacheReport:
    """What :func:`check_cache` found in a cache file.

    Attributes:
        path: the file.
        integrity: sqlite's ``PRAGMA integrity_check`` verdict (``"ok"`` when sound).
        n_answers: rows in the cache.
        n_malformed: rows that hold no well-formed answer (skipped by runs; removed by ``repair``).
        n_removed: rows removed by ``repair``.
        n_legacy: answers stored before the endpoint was part of the key (no run reuses them until
            :func:`adopt_cache_answers` assigns them to an endpoint).
        by_endpoint: endpoint name (``"(before endpoints were recorded)"`` for legacy rows) -> model ->
            number of answers.
        problem: why the file cannot be used at all (then the other counts are 0), else None.
    """

    path: str
    integrity: str = "ok"
    n_answers: int = 0
    n_malformed: int = 0
    n_removed: int = 0
    n_legacy: int = 0
    by_endpoint: dict[str, dict[str, int]] = field(default_factory=dict)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.integrity == "ok" and self.n_malformed == self.n_removed


LEGACY_ENDPOINT_LABEL = "(before endpoints were recorded)"


def check_cache(path: str | os.PathLike, *, repair: bool = False) -> CacheReport:
    """Inspect an answer cache: sqlite integrity, every row's answer, answers per endpoint and model.

    With ``repair``, rows that hold no well-formed answer are deleted (they would be asked again anyway).
    A file that cannot be opened as a cache is reported in ``problem``; nothing raises for a bad file.

    Raises:
        InputError: no file at ``path``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such cache file", file=str(path))
    report = CacheReport(str(path))
    try:
        cache = ResponseCache(path)
    except CacheError as exc:
        report.problem = exc.problem
        return report
    conn = cache._conn
    try:
        report.integrity = "; ".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check(20)"))
        endpoint_column = "endpoint" if cache._has_endpoint_columns else "NULL"
        bad: list[str] = []
        for key, model, result, endpoint in conn.execute(
            f"SELECT key, model, result, {endpoint_column} FROM responses"
        ):
            report.n_answers += 1
            if _record_from_row(result) is None:
                report.n_malformed += 1
                bad.append(key)
                continue
            if endpoint is None:
                report.n_legacy += 1
            label = endpoint if endpoint is not None else LEGACY_ENDPOINT_LABEL
            per_model = report.by_endpoint.setdefault(label, {})
            per_model[str(model)] = per_model.get(str(model), 0) + 1
        if repair and bad:
            for start in range(0, len(bad), 500):
                chunk = bad[start : start + 500]
                conn.execute(f"DELETE FROM responses WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            report.n_removed = len(bad)
    except _CACHE_ERRORS as exc:
        report.problem = _sqlite_problem(exc)
    finally:
        cache.close()
    return report


def adopt_cache_answers(path: str | os.PathLike, base_url: str | None) -> int:
    """Assign the answers stored before the endpoint was part of the key to the endpoint ``base_url``
    (``None`` = OpenAI), so runs against it reuse them. Returns how many answers were assigned.

    Raises:
        InputError: no file at ``path``. CacheError: the file cannot be used.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such cache file", file=str(path))
    endpoint = cache_endpoint(base_url)
    cache = ResponseCache(path)
    try:
        if cache.read_only:
            raise CacheError(path, "cannot be written (it is read-only)")
        rows = cache._conn.execute("SELECT key FROM responses WHERE endpoint IS NULL").fetchall()
        with cache._lock:
            cache._conn.execute("BEGIN IMMEDIATE")
            try:
                for (request_key,) in rows:
                    cache._conn.execute(
                        "UPDATE OR REPLACE responses SET key = ?, endpoint = ?, request_key = ? WHERE key = ?",
                        (scoped_cache_key(request_key, endpoint), endpoint, request_key, request_key),
                    )
                cache._conn.execute("COMMIT")
            except BaseException:
                cache._conn.execute("ROLLBACK")
                raise
    except _CACHE_ERRORS as exc:
        raise CacheError(path, _sqlite_problem(exc)) from None
    finally:
        cache.close()
    return len(rows)


# ---------------------------------------------------------------------------------------------- client
def _resolve_base_url(config: LLMConfig) -> str | None:
    return resolve_base_url(config.base_url)


def wire_options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``LLMConfig`` wire options a notebook takes from the environment (model-facing sections read no key
    parameters): ``TOOLQUAL_TOKEN_LIMIT_PARAM`` (``max_tokens`` | ``max_completion_tokens``) and
    ``TOOLQUAL_NO_TEMPERATURE=1`` (leave temperature out). Unset variables give the defaults.

    Raises:
        ConfigError: ``TOOLQUAL_TOKEN_LIMIT_PARAM`` names neither field.
    """
    environ = os.environ if environ is None else environ
    param = (environ.get("TOOLQUAL_TOKEN_LIMIT_PARAM") or "max_tokens").strip()
    if param not in TOKEN_LIMIT_PARAMS:
        raise ConfigError(f"TOOLQUAL_TOKEN_LIMIT_PARAM must be one of {', '.join(TOKEN_LIMIT_PARAMS)}, not {param!r}.")
    no_temperature = (environ.get("TOOLQUAL_NO_TEMPERATURE") or "").strip().lower() in ("1", "true", "yes")
    return {"token_limit_param": param, "send_temperature": not no_temperature}


def is_local_url(url: str | None) -> bool:
    """True for a URL on this machine (``localhost``, ``127.x``, ``[::1]``, ``0.0.0.0``)."""
    if not url:
        return False
    host = (urlparse(url).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.startswith("127.")


#: role -> the environment variable naming its model
MODEL_ENV: Final[Mapping[str, str]] = {"judge": "TOOLQUAL_JUDGE_MODEL", "ice": "TOOLQUAL_ICE_MODEL"}
#: role -> the environment variable that asks for answers from the cache only (``1``/``true``/``yes``)
REPLAY_ENV: Final[Mapping[str, str]] = {"judge": "TOOLQUAL_JUDGE_REPLAY", "ice": "TOOLQUAL_ICE_REPLAY"}
#: where the endpoint comes from when none is given, in order (then OpenAI itself)
BASE_URL_ENV: Final = ("TOOLQUAL_BASE_URL", "OPENAI_BASE_URL")
_TRUE = ("1", "true", "yes")


@dataclass(frozen=True)
class Endpoint:
    """Where a model is reached and whether a request could be sent, as the environment says.

    Built by :func:`endpoint_from_env`; holds names and URLs only, never the key itself.

    Attributes:
        role: ``"judge"``, ``"ice"`` or None (no model variable consulted).
        model: the model name (given, or the role's variable), or None.
        base_url: the endpoint (given, else ``TOOLQUAL_BASE_URL``, else ``OPENAI_BASE_URL``); None = OpenAI.
        api_key_env: NAME of the variable holding the key; ``key_set``: whether it is set.
        replay: the role's replay variable asks for answers from the cache only.
        token_limit_param, send_temperature: wire options (``TOOLQUAL_TOKEN_LIMIT_PARAM``,
            ``TOOLQUAL_NO_TEMPERATURE``; see :func:`wire_options_from_env`).
    """

    role: str | None
    model: str | None
    base_url: str | None
    api_key_env: str
    key_set: bool
    replay: bool
    token_limit_param: TokenLimitParam = "max_tokens"
    send_temperature: bool = True

    @property
    def local(self) -> bool:
        """The endpoint is on this machine: a local server started without a key needs none."""
        return is_local_url(self.base_url)

    @property
    def can_send(self) -> bool:
        """A request could be sent: the key is set, or the endpoint is local. A remote base URL without a
        key cannot (it is not enough that *some* base URL is set)."""
        return self.key_set or self.local

    @property
    def where(self) -> str:
        """The endpoint in words, for messages."""
        return f"the endpoint {self.base_url}" if self.base_url else \
            "OpenAI (no --base-url, TOOLQUAL_BASE_URL or OPENAI_BASE_URL set)"

    def config_kwargs(self) -> dict[str, Any]:
        """``LLMConfig`` keyword arguments (model, base URL, key variable NAME, wire options; no key)."""
        if not self.model:
            raise ConfigError(f"no model: set {MODEL_ENV.get(self.role or '', 'the model name')} in the environment.")
        return {"model": self.model, "base_url": self.base_url, "api_key_env": self.api_key_env,
                "token_limit_param": self.token_limit_param, "send_temperature": self.send_temperature}

    def config(self, **overrides: Any) -> LLMConfig:
        """The :class:`LLMConfig` for this endpoint (``mode="replay"`` when the role asks for it);
        ``overrides`` set any other field (cache, concurrency, prices, ...) or replace these."""
        return LLMConfig(**{**self.config_kwargs(), "mode": "replay" if self.replay else "live", **overrides})


def resolve_base_url(base_url: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The endpoint's base URL: ``base_url`` when given, else ``TOOLQUAL_BASE_URL``, else
    ``OPENAI_BASE_URL``, else None (OpenAI). Part of :func:`endpoint_from_env`; the client uses it alone."""
    if base_url and base_url.strip():
        return base_url.strip()
    environ = os.environ if environ is None else environ
    return next(((environ.get(name) or "").strip() for name in BASE_URL_ENV if (environ.get(name) or "").strip()),
                None)


def endpoint_from_env(
    role: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
) -> Endpoint:
    """The one resolver of where a model is reached: the CLI, the notebooks, the views and the client use it.

    Args:
        role: ``"judge"`` (model from ``TOOLQUAL_JUDGE_MODEL``, replay from ``TOOLQUAL_JUDGE_REPLAY``),
            ``"ice"`` (``TOOLQUAL_ICE_MODEL``, ``TOOLQUAL_ICE_REPLAY``) or None.
        environ: the environment (default ``os.environ``).
        model, base_url: given values win over the environment (command-line options).
        api_key_env: NAME of the variable that holds the key (only whether it is set is read).

    Returns:
        An :class:`Endpoint`. The base URL is ``base_url``, else ``TOOLQUAL_BASE_URL``, else
        ``OPENAI_BASE_URL``, else None (OpenAI).

    Raises:
        ConfigError: an unknown role, or ``TOOLQUAL_TOKEN_LIMIT_PARAM`` naming neither field.
    """
    if role is not None and role not in MODEL_ENV:
        raise ConfigError(f"unknown endpoint role {role!r}; use one of {', '.join(MODEL_ENV)}")
    environ = os.environ if environ is None else environ
    if model is None and role is not None:
        model = (environ.get(MODEL_ENV[role]) or "").strip() or None
    base_url = resolve_base_url(base_url, environ)
    replay = role is not None and (environ.get(REPLAY_ENV[role]) or "").strip().lower() in _TRUE
    return Endpoint(role, model, base_url, api_key_env, bool(environ.get(api_key_env)), replay,
                    **wire_options_from_env(environ))


class _EndpointHealth:
    """Connection failures seen by one client, and whether it has stopped because of them.

    Attempt level (from the HTTP layer): a connection attempt that fails before any answer (refused,
    unknown host, reset) counts; any HTTP answer resets the count. Request level: a request whose
    retries all ended in connection failures counts; any request that reached the server resets it.
    The client stops when ``limit`` attempts in a row failed and the endpoint never answered in this
    client, or when ``limit`` requests in a row failed (the server went away during the run).
    """

    def __init__(self, url: str, limit: int) -> None:
        self.url = url
        self.limit = limit
        self.ever_answered = False
        self.failed_attempts = 0
        self.failed_requests = 0
        self.last_error = ""
        self.stop_reason: str | None = None
        self.on_stop: Any = None

    def answered(self) -> None:
        self.ever_answered = True
        self.failed_attempts = 0

    def attempt_failed(self, exc: BaseException) -> None:
        self.failed_attempts += 1
        self.last_error = f"{type(exc).__name__}: {exc}".strip()
        if self.limit and not self.ever_answered and self.failed_attempts >= self.limit:
            self._stop(self.failed_attempts, "connection attempts", "the endpoint never answered")

    def request_done(self, connection_failed: bool) -> None:
        if not connection_failed:
            self.failed_requests = 0
            return
        self.failed_requests += 1
        if self.limit and self.failed_requests >= self.limit:
            self._stop(self.failed_requests, "requests", "each after all its retries")

    def _stop(self, count: int, what: str, detail: str) -> None:
        if self.stop_reason is not None:
            return
        self.stop_reason = (
            f"stopped after {count} {what} in a row failed to connect to {self.url} ({detail}; last error: "
            f"{self.last_error or 'connection error'})"
        )
        log.info("%s; the requests not answered yet are not sent", self.stop_reason)
        if self.on_stop is not None:
            self.on_stop()


def _attempt_deadline():
    """``asyncio.timeout`` (3.11+) or a wait_for-based stand-in (3.10)."""
    return getattr(asyncio, "timeout", None)


def resolve_http_transport(requested: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The HTTP layer a client uses: ``"aiohttp"`` or ``"httpx"``.

    ``requested`` (``LLMConfig.http_transport``) wins; None reads env ``TOOLQUAL_HTTP_TRANSPORT``; ``auto``
    (the default) is aiohttp when the SDK offers ``DefaultAioHttpClient`` and aiohttp is installed, else
    httpx. Both go through the same SDK client (retries, errors, auth); aiohttp spends about half the CPU
    per request, which is what limits a judge run at high concurrency.

    Raises:
        ConfigError: an unknown name, or ``aiohttp`` asked for but not installed.
    """
    environ = os.environ if environ is None else environ
    choice = (requested or environ.get(HTTP_TRANSPORT_ENV) or "auto").strip().lower()
    if choice not in HTTP_TRANSPORTS:
        raise ConfigError(f"{HTTP_TRANSPORT_ENV} must be one of {', '.join(HTTP_TRANSPORTS)}, not {choice!r}.")
    if choice == "httpx":
        return "httpx"
    available = _aiohttp_available()
    if choice == "aiohttp" and not available:
        raise ConfigError("the aiohttp HTTP layer was asked for, but aiohttp (or an openai SDK with "
                          "DefaultAioHttpClient) is not installed: `pip install aiohttp 'openai>=1.90'`, or use "
                          "http_transport='httpx' (--http-transport httpx).")
    return "aiohttp" if available else "httpx"


def _aiohttp_available() -> bool:
    cached = globals().get("_AIOHTTP_AVAILABLE")
    if cached is None:
        try:
            import aiohttp  # noqa: F401
            import openai

            base = getattr(openai, "DefaultAioHttpClient", None)
            # the SDK puts a stand-in that raises on use there when its aiohttp extra cannot be imported
            cached = base is not None and "Missing" not in base.__name__
        except ImportError:
            cached = False
        globals()["_AIOHTTP_AVAILABLE"] = cached
    return cached


def _aiohttp_error_map(httpx):
    """(aiohttp exception, httpx exception) pairs, most specific first: what the SDK's aiohttp layer
    reports as a connect *timeout* (any ``ClientConnectionError``) said as httpx says it, so that a
    refused connection or a server that hangs up counts as a connection failure, as with httpx."""
    import aiohttp

    return (
        (aiohttp.ServerTimeoutError, httpx.ReadTimeout),  # a real timeout (the SDK says "connect timeout")
        (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, unknown host
        (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),  # hung up before answering
        (aiohttp.ClientOSError, httpx.ReadError),  # reset while reading
        (aiohttp.ClientConnectionError, httpx.RemoteProtocolError),
    )


def _guarded_http_client_class(transport: str = "httpx"):
    """An ``httpx.AsyncClient`` subclass (the SDK's ``DefaultAsyncHttpxClient``, or its
    ``DefaultAioHttpClient`` for ``transport="aiohttp"``) that bounds every attempt as a whole and reports
    connection failures; built lazily so importing llm.py does not import openai."""
    classes = globals().setdefault("_GUARDED_CLIENT_CLASSES", {})
    if transport in classes:
        return classes[transport]
    import openai

    httpx = _httpx_module()
    timeout_context = _attempt_deadline()
    base = openai.DefaultAioHttpClient if transport == "aiohttp" else openai.DefaultAsyncHttpxClient
    error_map = _aiohttp_error_map(httpx) if transport == "aiohttp" else ()

    def as_httpx_error(exc: BaseException, request) -> BaseException | None:
        """The httpx error an aiohttp failure stands for (see :func:`_aiohttp_error_map`), or None."""
        cause = exc.__cause__
        for aiohttp_error, httpx_error in error_map:
            if isinstance(cause, aiohttp_error):
                return httpx_error(str(exc) or type(cause).__name__, request=request)
        return None

    class _ResponseTooLarge(openai.OpenAIError):
        """Raised from the HTTP layer; the SDK passes OpenAIErrors through without retrying."""

    class GuardedAsyncClient(base):
        def __init__(self, *, deadline_s: float, health: _EndpointHealth, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._deadline_s = deadline_s
            self._health = health

        async def _read(self, request, stream: bool, kwargs: dict):
            response = await super().send(request, stream=True, **kwargs)
            if stream:
                return response
            try:
                parts, size = [], 0
                async for part in response.aiter_bytes():
                    size += len(part)
                    if size > MAX_RESPONSE_BYTES:
                        raise _ResponseTooLarge(
                            f"the response body is larger than {MAX_RESPONSE_BYTES // 2**20} MiB; not read further")
                    parts.append(part)
                response._content = b"".join(parts)  # what Response.aread() sets
            except BaseException:
                await response.aclose()
                raise
            return response

        async def send(self, request, *, stream: bool = False, **kwargs: Any):
            try:
                if timeout_context is not None:
                    async with timeout_context(self._deadline_s):
                        response = await self._read(request, stream, kwargs)
                else:  # Python 3.10
                    response = await asyncio.wait_for(self._read(request, stream, kwargs), self._deadline_s)
            except httpx.TransportError as exc:
                mapped = as_httpx_error(exc, request) if error_map else None
                if mapped is None:
                    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError,
                                        httpx.ReadError, httpx.WriteError)):
                        self._health.attempt_failed(exc)
                    raise
                if not isinstance(mapped, httpx.TimeoutException):  # a timeout is no connection failure
                    self._health.attempt_failed(mapped)
                raise mapped from exc.__cause__
            except (TimeoutError, asyncio.TimeoutError):
                raise httpx.ReadTimeout(
                    f"no complete answer within {self._deadline_s:g} s (the deadline of one attempt)", request=request
                ) from None
            self._health.answered()
            return response

    classes[transport] = GuardedAsyncClient
    globals()["_RESPONSE_TOO_LARGE"] = _ResponseTooLarge
    return GuardedAsyncClient


class LLMClient:
    """Send chat requests through one cached, bounded, retried OpenAI-compatible client.

    Args:
        config: see :class:`LLMConfig`.

    Attributes:
        ledger: :class:`Ledger` of this client's requests (accumulates over calls).
        cache: the :class:`ResponseCache`, or ``None`` when ``cache_path`` is ``None``.
        endpoint: the name answers are cached under (:func:`cache_endpoint` of the base URL, or
            ``LLMConfig.cache_endpoint``).
        stopped: why the client stopped sending (an unreachable endpoint), else ``None``. Once stopped,
            every request not answered from the cache comes back ``unscored:not_sent``.
        cache_write_error: why answers could not be stored in the cache during a run (the run went on
            without storing them), else ``None``.

    Raises:
        CacheError: the cache file cannot be opened (names the file and the ways out).
    """

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.ledger = Ledger(config.prices)
        self.cache: ResponseCache | None = ResponseCache(config.cache_path) if config.cache_path else None
        self.base_url = _resolve_base_url(config)
        self.endpoint = config.cache_endpoint.strip() if config.cache_endpoint else cache_endpoint(self.base_url)
        #: the token-limit field live requests use now (starts as the config's; may switch, see _send)
        self.token_limit_param: TokenLimitParam = config.token_limit_param
        #: the HTTP layer under the SDK ("aiohttp" or "httpx"), set when the first request needs the SDK
        self.http_transport: str | None = None
        self.cache_write_error: str | None = None
        self._health = _EndpointHealth(self.base_url or DEFAULT_BASE_URL, int(config.max_connection_failures))
        self._malformed_reported = 0
        self._loading_sdk: threading.Thread | None = None

    @property
    def stopped(self) -> str | None:
        return self._health.stop_reason

    # ------------------------------------------------------------------ key & SDK client
    def _api_key(self) -> str:
        key = os.environ.get(self.config.api_key_env)
        if key:
            return key
        if is_local_url(self.base_url):
            return "EMPTY"
        raise ConfigError(
            f"No API key: the environment variable {self.config.api_key_env} is not set. Set it (keys are read "
            f"only from the environment), point TOOLQUAL_BASE_URL at a local server, or use mode='replay' to "
            f"work from the cache only."
        )

    def load_sdk_in_background(self) -> None:
        """Start importing the SDK and its HTTP layer (openai, aiohttp: most of a second of CPU) on a
        background thread, instead of when the first request needs them.

        For a caller whose own work is elsewhere meanwhile: the streaming judge calls it while its planning
        process reads, checks and prompts the first instances, so that the first request need not wait for
        the planning and the import one after the other. The first request waits for the thread. Nothing
        in replay mode (no request is sent); reads no key and connects nowhere; a failure (no aiohttp, a
        bad ``TOOLQUAL_HTTP_TRANSPORT``) is left to the first request, which raises it as before.
        """
        if self.config.mode == "replay" or self._loading_sdk is not None:
            return
        transport = self.config.http_transport

        def load() -> None:
            try:
                _guarded_http_client_class(resolve_http_transport(transport))
            except Exception:  # noqa: BLE001 - met again, and reported, by the first request
                pass

        self._loading_sdk = threading.Thread(target=load, name="toolqual-sdk-import", daemon=True)
        self._loading_sdk.start()

    def _make_sdk_client(self, api_key: str):
        if self._loading_sdk is not None:
            self._loading_sdk.join()  # the import under way (see load_sdk_in_background)
        import openai

        kwargs: dict[str, Any] = {
            "api_key": api_key,
            "max_retries": int(self.config.max_retries),
            "timeout": float(self.config.timeout_s),
        }
        if self.base_url:
            kwargs["base_url"] = self.base_url
        http_options: dict[str, Any] = {"deadline_s": float(self.config.timeout_s), "health": self._health}
        if self.config.concurrency > 100:
            http_options["limits"] = _httpx_module().Limits(
                max_connections=max(1000, self.config.concurrency),
                max_keepalive_connections=self.config.concurrency,
            )
        self.http_transport = resolve_http_transport(self.config.http_transport)
        kwargs["http_client"] = _guarded_http_client_class(self.http_transport)(**http_options)
        return openai.AsyncOpenAI(**kwargs)

    def _prepare(self, requests: Sequence[AnyRequest]) -> list[AnyRequest]:
        """Validated requests, as this client sends them (temperature dropped when not to be sent)."""
        requests = _validate_requests(requests)
        if not self.config.send_temperature:
            requests = [r if r.temperature is None else replace(r, temperature=None) for r in requests]
        return requests

    def _keys(self, requests: Sequence[AnyRequest],
              wires: Sequence[WireForm | None] | None = None) -> tuple[list[str], list[str]]:
        """(request keys, stored keys): :func:`cache_key` of each request (from its wire form when it has
        one) and its key in this endpoint."""
        model, endpoint = self.config.model, self.endpoint
        if wires is None:
            request_keys = [cache_key(model, r) for r in requests]
        else:
            request_keys = [w.request_key if w is not None else cache_key(model, r) for r, w in zip(requests, wires)]
        return request_keys, [scoped_cache_key(k, endpoint) for k in request_keys]

    def _stored(self, keys: Sequence[str]) -> dict[str, dict]:
        if self.cache is None:
            return {}
        stored = self.cache.get_many(keys)
        if self.cache.n_malformed > self._malformed_reported:
            log.warning(
                "%d cached answer(s) in %s are damaged or malformed and were ignored (those requests are asked "
                "again, and good answers replace them); `toolqual cache check %s --repair` removes them",
                self.cache.n_malformed - self._malformed_reported, self.cache.path, self.cache.path,
            )
            self._malformed_reported = self.cache.n_malformed
        return stored

    def _store(self, key: str, request_key: str, request: AnyRequest, result: ChatResult) -> None:
        """Cache one ok answer; a failed write is reported once and the run goes on without caching."""
        if self.cache is None or self.cache_write_error is not None:
            return
        try:
            self.cache.put(key, self.config.model, request.prompt_id, request.custom_id, result,
                           endpoint=self.endpoint, request_key=request_key)
        except CacheError as exc:
            self.cache_write_error = str(exc)
            log.warning("answers are no longer stored in the cache, the run goes on without it: %s", exc)

    def _note_other_endpoints(self, request_keys: Sequence[str], what: str) -> None:
        """Log when requests missing here are answered in the cache under another endpoint name."""
        if self.cache is None or not request_keys:
            return
        others = self.cache.other_endpoints(request_keys, self.endpoint)
        if not others:
            return
        parts = []
        for name, count in sorted(others.items(), key=lambda item: -item[1]):
            if name is None:
                parts.append(f"{count} stored before answers were kept per endpoint (assign them with `toolqual "
                             f"cache adopt {self.cache.path} --base-url URL`)")
            else:
                parts.append(f"{count} by {name} (use --base-url {name}, or the same --cache-endpoint name)")
        log.warning("%d %s have no answer from %s in the cache; the cache holds answers to %d of them from "
                    "elsewhere: %s. Answers are kept per endpoint, so one server is never credited with "
                    "another's answers.", len(request_keys), what, self.endpoint, sum(others.values()),
                    "; ".join(parts))

    # ------------------------------------------------------------------ completion
    async def acomplete(self, requests: Sequence[AnyRequest], *, progress: bool = True) -> list[ChatResult]:
        """Answer ``requests`` (cache first; in live mode send the rest). Results in request order.

        Never raises for a failed request: it comes back unscored with ``error`` set. Raises
        :class:`~toolqual_utils.errors.ConfigError` only when requests must be sent and no key is
        available, and :class:`CacheError` when the cache cannot be read. Empty input -> ``[]``.
        When the endpoint is unreachable the run stops early (see :attr:`stopped`): the requests not
        answered by then come back ``unscored:not_sent``.
        """
        requests = self._prepare(requests)
        model = self.config.model
        results: list[ChatResult | None] = [None] * len(requests)
        request_keys, keys = self._keys(requests)
        stored = self._stored(keys)
        to_send: list[int] = []
        replay_misses: list[str] = []
        for index, (request, key) in enumerate(zip(requests, keys)):
            record = stored.get(key)
            if record is not None:
                results[index] = _result_from_cache(request.custom_id, record)
            elif (too_long := _too_long(self.config, request)) is not None:
                results[index] = too_long
            elif self.config.mode == "replay":
                results[index] = _error_result(
                    request.custom_id, STATUS_NOT_CACHED, "replay mode: no cached answer for this request"
                )
                replay_misses.append(request_keys[index])
            elif self.stopped is not None:
                results[index] = self._not_sent(request)
            else:
                to_send.append(index)
                continue
            self.ledger.record(model, results[index], sent=False)
        if replay_misses:
            self._note_other_endpoints(replay_misses, "requests of this replay")

        if to_send:
            api_key = self._api_key()
            sdk = self._make_sdk_client(api_key)
            bar = _progress_bar(len(requests), len(requests) - len(to_send), model, enabled=progress)
            semaphore = asyncio.Semaphore(self.config.concurrency)
            # Identical requests in one call are sent once and share the answer.
            first_index: dict[str, int] = {}
            duplicates: dict[int, list[int]] = {}
            unique: list[int] = []
            for index in to_send:
                owner = first_index.setdefault(keys[index], index)
                if owner == index:
                    unique.append(index)
                else:
                    duplicates.setdefault(owner, []).append(index)
            sending: set[asyncio.Task] = set()

            def stop_sending() -> None:
                for task in list(sending):
                    task.cancel()

            self._health.on_stop = stop_sending

            def finish(index: int, result: ChatResult, sent: bool) -> None:
                request = requests[index]
                if result.status == STATUS_OK:
                    self._store(keys[index], request_keys[index], request, result)
                results[index] = result
                self.ledger.record(model, result, sent=sent)
                for other in duplicates.get(index, ()):
                    copy = ChatResult(**{**vars(result), "custom_id": requests[other].custom_id})
                    copy.cached, copy.shared = result.status == STATUS_OK, True
                    results[other] = copy
                    self.ledger.record(model, copy, sent=False)
                if bar is not None:
                    bar.update(1 + len(duplicates.get(index, ())))

            async def run_one(index: int) -> None:
                async with semaphore:
                    result, sent = await self._send_unless_stopped(sdk, requests[index], api_key, sending)
                finish(index, result, sent=sent)

            try:
                outcomes = await asyncio.gather(*(run_one(i) for i in unique), return_exceptions=True)
            finally:
                self._health.on_stop = None
                if bar is not None:
                    bar.close()
                await sdk.close()
            for outcome in outcomes:
                if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                    raise outcome
            for index in unique:  # cancelled right as it finished: its result is in, or it was never sent
                if results[index] is None:
                    finish(index, self._not_sent(requests[index]), sent=False)
        return [r for r in results if r is not None]

    def _not_sent(self, request: AnyRequest) -> ChatResult:
        return _error_result(request.custom_id, STATUS_NOT_SENT,
                             f"not sent: {self.stopped or 'the run stopped'}"[:_ERROR_TEXT_LIMIT])

    async def _send_unless_stopped(self, sdk, request: AnyRequest, api_key: str, sending: set[asyncio.Task],
                                   wire: WireForm | None = None) -> tuple[ChatResult, bool]:
        """(result, sent) of one request: not sent when the run is stopped (endpoint unreachable, or
        interrupted) before it leaves or while it is in flight (the stop cancels the tasks in ``sending``);
        any other cancellation propagates."""
        if self.stopped is not None:
            return self._not_sent(request), False
        task = asyncio.current_task()
        sending.add(task)
        try:
            return await self._send(sdk, request, api_key, wire), True
        except asyncio.CancelledError:
            if self.stopped is None:
                raise
            if hasattr(task, "uncancel"):
                task.uncancel()
            return self._not_sent(request), False
        finally:
            sending.discard(task)

    async def _send(self, sdk, request: AnyRequest, api_key: str, wire: WireForm | None = None) -> ChatResult:
        import openai

        path = "/completions" if isinstance(request, CompletionRequest) else "/chat/completions"
        for attempt in (1, 2):
            sent_param = self.token_limit_param
            try:
                # The SDK's documented raw route (``client.post(path, cast_to=<httpx Response>, body=...)``):
                # same retries, Retry-After, timeouts and error classes as ``chat.completions.create``, but
                # the exact JSON body goes out as built (no per-request TypedDict transform) and the answer
                # is read as plain JSON (no pydantic model) — that overhead matters at hundreds of req/s.
                # A wire form made ahead goes out as its bytes (``content=``, where the SDK takes it).
                if wire is not None and wire.token_limit_param == sent_param and _sdk_takes_content(sdk):
                    response = await sdk.post(path, content=wire.content, cast_to=_http_response_class())
                else:
                    response = await sdk.post(path, body=request_body(self.config.model, request, sent_param),
                                              cast_to=_http_response_class())
                data = json.loads(response.content)
                break
            except Exception as exc:  # noqa: BLE001 - every failure becomes an unscored result
                other = None
                if isinstance(request, ChatRequest) and request.max_tokens is not None:
                    other = _other_token_param(exc, sent_param)
                if attempt == 1 and other is not None:
                    if self.token_limit_param == sent_param:
                        self.token_limit_param = other
                        log.warning("the server rejected %r and asks for %r: sending %r from now on (set "
                                    "token_limit_param=%r to start with it)", sent_param, other, other, other)
                    continue
                connection_failed = (isinstance(exc, openai.APIConnectionError)
                                     and not isinstance(exc, openai.APITimeoutError))
                self._health.request_done(connection_failed)
                return _error_result(request.custom_id, STATUS_API_ERROR,
                                     _describe_exception(exc, api_key, self.config))
        self._health.request_done(False)
        result = _result_from_body(request.custom_id, data)
        if result.error:
            result.error = _redact(result.error, api_key)
        return result

    def complete(self, requests: Sequence[AnyRequest], *, progress: bool = True) -> list[ChatResult]:
        """Synchronous :meth:`acomplete`; works in plain scripts and inside a running event loop.

        Inside a running loop (a Jupyter kernel), the work runs on a worker thread with its own event
        loop and this call blocks until it is done (in a notebook, ``await client.acomplete(...)`` is the
        non-blocking alternative).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.acomplete(requests, progress=progress))
        return _run_in_worker_thread(lambda: self.acomplete(requests, progress=progress))

    async def astream(
        self,
        chunks: AsyncIterable[Sequence[AnyRequest]],
        on_result: Callable[[int, ChatResult], None],
        *,
        before_first_send: Callable[[], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        prepared: dict[str, WireForm] | None = None,
    ) -> int:
        """Answer requests as they arrive, for pipelines that build requests while earlier ones are in flight.

        ``chunks`` yields lists of requests (a producer hands over what it has ready); request ``i`` (counted
        over all chunks, from 0) is answered by ``on_result(i, result)``, called on this event loop in the
        order answers come (cache hits at once). Same cache, ledger, replay, prompt ceiling, retries and
        stop-at-an-unreachable-endpoint as :meth:`acomplete`; identical requests are sent once and share the
        answer (a later duplicate of an answered one is served from it). Backpressure: a chunk is only
        taken when fewer than ``concurrency`` requests are in flight, so a producer that waits on a
        bounded queue never runs more than that queue ahead of the network.

        ``before_first_send`` is called once, before the first request that must go to the server (e.g. to
        refuse a run without a key with the caller's message); ``on_progress(n_answered, n_received)`` after
        each answer. ``prepared``: wire forms made ahead (:func:`wire_form`) by custom_id; each is taken out
        of the mapping when its request arrives and used when it fits (:meth:`WireForm.fits`). Returns the
        number of requests received.
        """
        model = self.config.model
        concurrency = max(1, int(self.config.concurrency))
        slots = asyncio.Semaphore(concurrency)
        sdk = None
        api_key = ""
        n_received = 0
        n_answered = 0
        custom_ids: set[str] = set()
        in_flight: dict[str, list[tuple[int, AnyRequest]]] = {}  # stored key -> duplicates waiting for it
        answered: dict[str, ChatResult] = {}  # stored key -> its answer (for later duplicates)
        replay_misses: list[str] = []
        sending: set[asyncio.Task] = set()
        tasks: set[asyncio.Task] = set()

        def deliver(index: int, result: ChatResult) -> None:
            nonlocal n_answered
            n_answered += 1
            on_result(index, result)
            if on_progress is not None:
                on_progress(n_answered, n_received)

        def finish(index: int, request: AnyRequest, key: str, request_key: str, result: ChatResult,
                   sent: bool) -> None:
            if result.status == STATUS_OK:
                self._store(key, request_key, request, result)
            self.ledger.record(model, result, sent=sent)
            answered[key] = result
            deliver(index, result)
            for other_index, other in in_flight.pop(key, ()):
                copy = ChatResult(**{**vars(result), "custom_id": other.custom_id})
                copy.cached, copy.shared = result.status == STATUS_OK, True
                self.ledger.record(model, copy, sent=False)
                deliver(other_index, copy)

        async def run_one(index: int, request: AnyRequest, key: str, request_key: str,
                          wire: WireForm | None) -> None:
            try:
                result, sent = await self._send_unless_stopped(sdk, request, api_key, sending, wire)
                finish(index, request, key, request_key, result, sent=sent)
            finally:
                slots.release()

        def stop_sending() -> None:
            for task in list(sending):
                task.cancel()

        self._health.on_stop = stop_sending
        try:
            async for chunk in chunks:
                chunk = self._prepare(chunk)
                first = n_received
                n_received += len(chunk)
                for request in chunk:
                    if request.custom_id in custom_ids:
                        raise InputError("two requests share a custom_id; results are matched by it",
                                         record=request.custom_id, field="custom_id")
                    custom_ids.add(request.custom_id)
                wires: list[WireForm | None] | None = None
                if prepared:
                    wires = [prepared.pop(r.custom_id, None) for r in chunk]
                    wires = [w if w is not None and w.fits(model, r) else None for r, w in zip(chunk, wires)]
                request_keys, keys = self._keys(chunk, wires)
                stored = self._stored([k for k in keys if k not in answered and k not in in_flight])
                for offset, (request, request_key, key) in enumerate(zip(chunk, request_keys, keys)):
                    wire = wires[offset] if wires is not None else None
                    index = first + offset
                    record = stored.get(key)
                    if key in answered:  # an identical request was answered in this run
                        earlier = answered[key]
                        result = ChatResult(**{**vars(earlier), "custom_id": request.custom_id})
                        # an answer the cache served serves this one too (as when both are looked up at once)
                        result.cached = earlier.status == STATUS_OK
                        result.shared = earlier.shared or not earlier.cached
                    elif key in in_flight:
                        in_flight[key].append((index, request))
                        continue
                    elif record is not None:
                        result = _result_from_cache(request.custom_id, record)
                    elif (too_long := _too_long(self.config, request, wire)) is not None:
                        result = too_long
                    elif self.config.mode == "replay":
                        result = _error_result(request.custom_id, STATUS_NOT_CACHED,
                                               "replay mode: no cached answer for this request")
                        replay_misses.append(request_key)
                    elif self.stopped is not None:
                        result = self._not_sent(request)
                    else:
                        if sdk is None:
                            if before_first_send is not None:
                                before_first_send()
                            api_key = self._api_key()
                            sdk = self._make_sdk_client(api_key)
                        in_flight[key] = []
                        await slots.acquire()  # backpressure: at most `concurrency` in flight
                        task = asyncio.ensure_future(run_one(index, request, key, request_key, wire))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                        continue
                    if result.status == STATUS_OK:
                        answered.setdefault(key, result)
                    self.ledger.record(model, result, sent=False)
                    deliver(index, result)
                # a new chunk only when a slot is free: the producer's queue holds the rest meanwhile
                await slots.acquire()
                slots.release()
            while tasks:
                done = await asyncio.gather(*list(tasks), return_exceptions=True)
                for outcome in done:
                    if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                        raise outcome
        except BaseException:
            for task in list(tasks):
                task.cancel()
            if tasks:
                await asyncio.gather(*list(tasks), return_exceptions=True)
            raise
        finally:
            self._health.on_stop = None
            if sdk is not None:
                await sdk.close()
        for key, waiting in list(in_flight.items()):  # cancelled right as they finished: never answered
            for index, request in waiting:
                result = self._not_sent(request)
                self.ledger.record(model, result, sent=False)
                deliver(index, result)
        if replay_misses:
            self._note_other_endpoints(replay_misses, "requests of this replay")
        return n_received

    # ------------------------------------------------------------------ planning
    def in_cache(self, requests: Sequence[AnyRequest]) -> list[bool]:
        """For each request, whether the cache holds an answer now (nothing is sent or counted)."""
        requests = self._prepare(requests)
        if self.cache is None:
            return [False] * len(requests)
        _, keys = self._keys(requests)
        stored = self._stored(keys)
        return [key in stored for key in keys]

    def plan(self, requests: Sequence[AnyRequest], *, expected_output_tokens: int = 256) -> CostPlan:
        """Estimate what answering ``requests`` would send and cost (nothing is sent).

        Prompt tokens are estimated as characters of the JSON request (messages, tools, response
        schema) divided by ``CHARS_PER_TOKEN`` (4), summed over the requests not in the cache;
        completion tokens as ``expected_output_tokens`` per request, capped by its ``max_tokens``.
        Requests over the prompt ceiling are counted in ``n_too_long`` (they would not be sent).
        In replay mode nothing is sent, so ``n_to_send`` is 0. Empty input -> all zeros.
        """
        requests = self._prepare(requests)
        model = self.config.model
        request_keys, keys = self._keys(requests)
        stored = self._stored(keys)
        seen: set[str] = set()
        n_cached = n_shared = n_to_send = n_too_long = prompt_chars = completion_tokens = 0
        missing: list[str] = []
        for request, key, request_key in zip(requests, keys, request_keys):
            if key in stored:
                n_cached += 1
                continue
            if key in seen:  # duplicates are sent once
                n_shared += 1
                continue
            seen.add(key)
            missing.append(request_key)
            if _too_long(self.config, request) is not None:
                n_too_long += 1
                continue
            n_to_send += 1
            prompt_chars += _prompt_chars(request_body(model, request, self.token_limit_param))
            expected = expected_output_tokens
            if request.max_tokens is not None:
                expected = min(expected, request.max_tokens)
            completion_tokens += expected
        self._note_other_endpoints(missing, "requests of this plan")
        if self.config.mode == "replay":
            n_to_send, prompt_chars, completion_tokens = 0, 0, 0
        prompt_tokens = int(round(prompt_chars / CHARS_PER_TOKEN))
        cost = _cost(self.ledger.prices, model, prompt_tokens, completion_tokens)
        if cost is None and n_to_send == 0:
            cost = 0.0 if model in self.ledger.prices else None
        return CostPlan(model, len(requests), n_cached, n_to_send, prompt_tokens, completion_tokens, cost, n_too_long,
                        n_shared)

    # ------------------------------------------------------------------ batch files
    def export_batch(
        self,
        requests: Sequence[AnyRequest],
        path: str | os.PathLike,
        *,
        max_per_file: int = 50_000,
        include_cached: bool = False,
    ) -> list[Path]:
        """Write OpenAI Batch API request files for ``requests`` (also runnable by ``vllm run-batch``).

        One line per request: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions"`` (or
        ``"/v1/completions"`` for :class:`CompletionRequest`; one kind per call), ``"body": <the exact live
        request body>}``. Requests already answered in the cache are skipped
        unless ``include_cached``. If more than ``max_per_file`` lines are to be written, they are split
        into ``<stem>-000<suffix>``, ``<stem>-001<suffix>``, … next to ``path``; otherwise ``path`` itself
        is written.

        Returns:
            The files written, in order; ``[]`` (and no file) when nothing is left to send.

        Raises:
            InputError: two requests share a ``custom_id`` (the Batch API requires unique ids).
        """
        requests = self._prepare(requests)
        if max_per_file < 1:
            raise InputError(f"max_per_file must be at least 1, not {max_per_file}", field="max_per_file")
        seen: set[str] = set()
        for request in requests:
            if request.custom_id in seen:
                raise InputError(
                    "custom_id is used by two requests; Batch files need unique ids",
                    record=request.custom_id,
                    field="custom_id",
                )
            seen.add(request.custom_id)
        if len({_batch_url(r) for r in requests}) > 1:
            raise InputError("chat and completion requests cannot share a Batch file (the Batch API takes one "
                             "endpoint per file); export them separately", field="requests")
        model = self.config.model
        if not include_cached and self.cache is not None:
            _, keys = self._keys(requests)
            stored = self._stored(keys)
            requests = [r for r, key in zip(requests, keys) if key not in stored]
        too_long = [r for r in requests if _too_long(self.config, r) is not None]
        if too_long:
            log.warning("%d request(s) are over the prompt ceiling and are left out of the batch file, e.g. %s: %s",
                        len(too_long), too_long[0].custom_id, _too_long(self.config, too_long[0]).error)
            requests = [r for r in requests if _too_long(self.config, r) is None]
        if not requests:
            return []
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        chunks = [requests[i : i + max_per_file] for i in range(0, len(requests), max_per_file)]
        if len(chunks) == 1:
            targets = [path]
        else:
            suffix = "".join(path.suffixes) or ".jsonl"
            stem = path.name[: -len("".join(path.suffixes))] if path.suffixes else path.name
            targets = [path.with_name(f"{stem}-{i:03d}{suffix}") for i in range(len(chunks))]
        from .io import atomic_open

        for target, chunk in zip(targets, chunks):
            with atomic_open(target) as handle:
                for request in chunk:
                    line = {
                        "custom_id": request.custom_id,
                        "method": "POST",
                        "url": _batch_url(request),
                        "body": request_body(model, request, self.token_limit_param),
                    }
                    handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        return targets

    def import_batch(
        self, result_paths: Sequence[str | os.PathLike] | str | os.PathLike, requests: Sequence[AnyRequest]
    ) -> list[ChatResult]:
        """Read Batch API result files back into results for ``requests`` (in request order).

        Each result line is ``{"id", "custom_id", "response": {"status_code", "body"} | null, "error"}``.
        A 200 body is classified like a live answer (ok answers are stored in the cache, so a following
        live or replay run reuses them); an ``error`` or a non-200 status gives ``unscored:api_error``
        with the error text. A request with no result line is served from the cache when it is there
        (export skipped it), else ``unscored:api_error`` ("no result line for custom_id …"). Lines whose
        custom_id is not among ``requests`` are ignored; when an id has several lines, an ok one wins.

        Raises:
            InputError: a result file is missing or a line is not a JSON object (names file and line).
        """
        requests = self._prepare(requests)
        if isinstance(result_paths, (str, os.PathLike)):
            result_paths = [result_paths]
        model = self.config.model
        wanted = {r.custom_id for r in requests}
        lines_by_id: dict[str, ChatResult] = {}
        from .io import iter_lines

        for result_path in result_paths:
            result_path = Path(result_path)
            if not result_path.exists():
                raise InputError("batch result file not found", file=str(result_path))
            for line_no, line in iter_lines(result_path, not_utf8_hint="Batch result files are UTF-8 JSON Lines"):
                if not isinstance(line, str):
                    raise InputError(line.reason, file=str(result_path), record=f"line {line_no}")
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError) as exc:
                    detail = exc.msg if isinstance(exc, json.JSONDecodeError) else f"{type(exc).__name__}: {exc}"
                    raise InputError(
                        f"not valid JSON ({str(detail)[:200]}); expected one Batch result object per line",
                        file=str(result_path),
                        record=f"line {line_no}",
                    ) from None
                if not isinstance(record, dict) or "custom_id" not in record:
                    raise InputError(
                        "expected a Batch result object with a custom_id",
                        file=str(result_path),
                        record=f"line {line_no}",
                        field="custom_id",
                    )
                custom_id = str(record["custom_id"])
                if custom_id not in wanted:
                    continue
                result = _result_from_batch_line(custom_id, record)
                previous = lines_by_id.get(custom_id)
                if previous is None or previous.status != STATUS_OK:
                    lines_by_id[custom_id] = result

        request_keys, keys = self._keys(requests)
        stored = self._stored(keys)
        results: list[ChatResult] = []
        for request, key, request_key in zip(requests, keys, request_keys):
            result = lines_by_id.get(request.custom_id)
            if result is not None:
                result = ChatResult(**vars(result))  # one object per request, even for shared ids
                if result.status == STATUS_OK:
                    self._store(key, request_key, request, result)
                self.ledger.record(model, result, sent=True, imported=True)
            elif key in stored:
                result = _result_from_cache(request.custom_id, stored[key])
                self.ledger.record(model, result, sent=False)
            else:
                result = _error_result(
                    request.custom_id,
                    STATUS_API_ERROR,
                    f"no result line for custom_id {request.custom_id!r} in the batch result files",
                )
                self.ledger.record(model, result, sent=False)
            results.append(result)
        return results

    def close(self) -> None:
        """Close the cache file (the client is unusable afterwards)."""
        if self.cache is not None:
            self.cache.close()


def _result_from_batch_line(custom_id: str, record: dict) -> ChatResult:
    error = record.get("error")
    response = record.get("response")
    if error:
        if isinstance(error, dict):
            detail = f"{error.get('code') or ''}: {error.get('message') or json.dumps(error)}".strip(": ")
        else:
            detail = str(error)
        return _error_result(custom_id, STATUS_API_ERROR, _redact(f"batch error: {detail}", None))
    if not isinstance(response, dict):
        return _error_result(custom_id, STATUS_API_ERROR, "batch result line has neither response nor error")
    status_code = response.get("status_code")
    body = response.get("body")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            pass
    if status_code != 200:
        message = body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = body["error"].get("message", body["error"])
        return _error_result(custom_id, STATUS_API_ERROR, _redact(f"HTTP {status_code}: {message}", None))
    return _result_from_body(custom_id, body)


def _run_in_worker_thread(make_coroutine):
    """Run a coroutine on a new event loop in a worker thread and wait for it.

    An interrupt of the waiting thread (Ctrl-C, Jupyter's "interrupt kernel") cancels the coroutine, waits
    for it to stop (answers already received stay cached) and re-raises.
    """
    state: dict[str, Any] = {}
    started = threading.Event()

    def target() -> None:
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(make_coroutine())
            state["loop"], state["task"] = loop, task
            started.set()
            state["result"] = loop.run_until_complete(task)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            state["error"] = exc
        finally:
            started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    worker = threading.Thread(target=target, name="toolqual-llm", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.05)
    except BaseException:
        started.wait(5)
        loop, task = state.get("loop"), state.get("task")
        if loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile
                pass
        worker.join(30)
        raise
    if "error" in state:
        raise state["error"]
    return state["result"]


def _httpx_module():
    try:  # openai >= 3 is built on httpx2, earlier majors on httpx
        import httpx2 as module
    except ImportError:  # pragma: no cover - depends on the installed SDK
        import httpx as module
    return module


def _http_response_class():
    return _httpx_module().Response


def _sdk_takes_content(sdk) -> bool:
    """True when the SDK's ``post`` takes a raw ``content=`` body (openai >= 2)."""
    cached = globals().get("_SDK_TAKES_CONTENT")
    if cached is None:
        import inspect

        cached = "content" in inspect.signature(type(sdk).post).parameters
        globals()["_SDK_TAKES_CONTENT"] = cached
    return cached


def _progress_bar(total: int, initial: int, model: str, *, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"{model}", unit="req", mininterval=0.5, leave=False)
