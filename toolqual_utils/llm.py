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
  ``timeout_s`` bounds each attempt.
* **Cache.** A persistent sqlite file (WAL). The key is a sha256 of what changes the answer: model name
  (not the base URL), messages, temperature, max_tokens, response schema, tools, prompt id and sample
  index — not timeouts or concurrency. Each ok answer is written as soon as it arrives, so a run killed
  midway resumes without paying twice. Errors, refusals and truncations are never cached.
* **Statuses.** ``ok``; ``unscored:refusal`` (``message.refusal`` set, or ``finish_reason ==
  "content_filter"``); ``unscored:truncated`` (``finish_reason == "length"``); ``unscored:api_error``
  (HTTP error after retries, timeout, connection error, malformed body); ``unscored:not_cached`` (replay
  mode miss). Parsing ok text into verdicts is the caller's job.
* **Token limit.** ``ChatRequest.max_tokens`` is sent as ``max_tokens`` (what vLLM, Ollama, llama.cpp and
  older OpenAI models accept) or as ``max_completion_tokens`` (``LLMConfig.token_limit_param``; OpenAI's
  reasoning models accept only this one). When a server answers HTTP 400 saying the parameter sent is not
  supported and naming the other, the client switches to the other for the rest of the run and resends
  that request once (400s are not billed). The cache key holds the limit's value, not its name.
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
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence, Union
from urllib.parse import urlparse

from toolqual_utils.errors import ConfigError, InputError

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
    "cache_key",
    "completion_body",
    "is_local_url",
    "wire_options_from_env",
    "TOKEN_LIMIT_PARAMS",
]

log = logging.getLogger("toolqual.llm")

Mode = Literal["live", "replay"]
TokenLimitParam = Literal["max_tokens", "max_completion_tokens"]
TOKEN_LIMIT_PARAMS: tuple[str, ...] = ("max_tokens", "max_completion_tokens")

STATUS_OK = "ok"
STATUS_REFUSAL = "unscored:refusal"
STATUS_TRUNCATED = "unscored:truncated"
STATUS_API_ERROR = "unscored:api_error"
STATUS_NOT_CACHED = "unscored:not_cached"

#: Characters per token assumed by :meth:`LLMClient.plan` (a common rule of thumb for English text and
#: JSON with OpenAI tokenizers; real counts vary by roughly ±30%).
CHARS_PER_TOKEN = 4.0

_CACHE_SCHEMA_VERSION = 1
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
_ERROR_TEXT_LIMIT = 600


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
        timeout_s: timeout of each attempt, in seconds.
        mode: ``"live"`` (cache then network) or ``"replay"`` (cache only; misses are
            ``unscored:not_cached``).
        cache_path: sqlite cache file; ``None`` disables the cache.
        prices: model -> (USD per 1M input tokens, USD per 1M output tokens); ``None`` = cost unknown.
        token_limit_param: request field that carries ``ChatRequest.max_tokens``: ``"max_tokens"`` or
            ``"max_completion_tokens"`` (needed by OpenAI reasoning models, also in Batch files). Live
            runs switch on their own when the server rejects one and names the other.
        send_temperature: ``False`` leaves ``temperature`` out of every request (and the cache key), for
            models that accept only their default, such as OpenAI's reasoning models.
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
            ``unscored:not_cached``.
        text: message content (kept for refusals and truncations too, when the server sent any).
        tool_calls: ``[{"name": str, "arguments": str}]`` when the model called tools, else ``None``.
        finish_reason: as reported by the server.
        prompt_tokens: usage reported for this answer (for cached answers: the usage when first paid).
        completion_tokens: idem.
        cached: True when served from the cache (nothing paid now).
        error: why the result is unscored (no secrets); ``None`` when ok.
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

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


@dataclass(frozen=True)
class CostPlan:
    """What a run would cost before it is sent (see :meth:`LLMClient.plan`).

    Token figures are estimates for the requests still to send: prompt tokens = characters of the JSON
    request (messages, tools, schema) / ``CHARS_PER_TOKEN`` (4); completion tokens = the expected output
    per request (capped by its ``max_tokens``). ``est_cost_usd`` is ``None`` when no price is known for
    the model.
    """

    model: str
    n_requests: int
    n_cached: int
    n_to_send: int
    est_prompt_tokens: int
    est_completion_tokens: int
    est_cost_usd: float | None


@dataclass
class _ModelCounts:
    n_requests: int = 0
    n_cache_hits: int = 0
    n_cache_misses: int = 0
    n_sent: int = 0
    n_ok: int = 0
    n_unscored: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Ledger:
    """Token and cost ledger of one :class:`LLMClient`, by model.

    Counts every request asked (``n_requests``), how many the cache served (``n_cache_hits``) and did not
    (``n_cache_misses``: sent in live mode, ``unscored:not_cached`` in replay), how many were sent
    (``n_sent``, including answers imported from batch result files), and the tokens paid now (usage of
    answers received from the server or imported, whatever their status; cached answers cost nothing).
    Cost uses the configured price table (Batch API discounts are not applied).
    """

    COLUMNS = [
        "model",
        "n_requests",
        "n_cache_hits",
        "n_cache_misses",
        "n_sent",
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

    def record(self, model: str, result: ChatResult, *, sent: bool) -> None:
        """Count one finished request (``sent`` = an answer or error came from the server or a batch file)."""
        with self._lock:
            counts = self._counts(model)
            counts.n_requests += 1
            if result.cached:
                counts.n_cache_hits += 1
            else:
                counts.n_cache_misses += 1
            if sent:
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
            f"Ledger(requests={t['n_requests']}, cache_hits={t['n_cache_hits']}, sent={t['n_sent']}, "
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
        body["response_format"] = {"type": "json_schema", "json_schema": json_schema}
    if request.tools is not None:
        body["tools"] = [dict(t) for t in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    return body


def cache_key(model: str, request: AnyRequest) -> str:
    """sha256 hex of everything that changes the answer (not base URL, timeouts or concurrency)."""
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
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    if not isinstance(text, str):
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


def _result_from_body(custom_id: str, body: Any) -> ChatResult:
    """Classify a chat-completion JSON body (live answer or Batch result) into a :class:`ChatResult`."""
    if not isinstance(body, dict):
        return _error_result(custom_id, STATUS_API_ERROR, f"response body is not a JSON object: {str(body)[:200]}")
    usage = body.get("usage") or {}
    prompt_tokens = int(usage.get("prompt_tokens") or 0)
    completion_tokens = int(usage.get("completion_tokens") or 0)
    choices = body.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        error = body.get("error")
        detail = json.dumps(error)[:300] if error else "response has no choices"
        result = _error_result(custom_id, STATUS_API_ERROR, detail)
        result.prompt_tokens, result.completion_tokens = prompt_tokens, completion_tokens
        return result
    choice = choices[0]
    if "message" not in choice and "text" in choice:
        return _result_from_completion_choice(custom_id, choice, prompt_tokens, completion_tokens)
    message = choice.get("message") or {}
    finish_reason = choice.get("finish_reason")
    text = message.get("content")
    tool_calls = None
    if message.get("tool_calls"):
        tool_calls = []
        for call in message["tool_calls"]:
            function = call.get("function") or call.get("custom") or {}
            arguments = function.get("arguments", function.get("input", ""))
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments)
            tool_calls.append({"name": function.get("name"), "arguments": arguments})
    refusal = message.get("refusal")
    status, error = STATUS_OK, None
    if refusal:
        status, error = STATUS_REFUSAL, f"model refused: {str(refusal)[:300]}"
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


def _describe_exception(exc: BaseException, secret: str | None) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        text = "request timed out (after the SDK's retries)"
    elif isinstance(exc, openai.APIStatusError):
        text = f"HTTP {exc.status_code}: {exc.message}"
        if exc.status_code in (400, 422) and "temperature" in str(exc.message):
            text += (" [if the model accepts only its default temperature, leave it out: --no-temperature, "
                     "or LLMConfig(send_temperature=False)]")
    elif isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        text = f"connection error: {type(cause).__name__ if cause else ''} {cause or exc}".strip()
    elif isinstance(exc, json.JSONDecodeError):
        text = f"malformed JSON response body: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return _redact(text, secret)


# ---------------------------------------------------------------------------------------------- cache
class ResponseCache:
    """Persistent sqlite cache of ok answers, keyed by :func:`cache_key`.

    One connection per instance, guarded by a lock (safe for concurrent writers of one process; other
    processes may share the file: WAL journal, 30 s busy timeout). Each :meth:`put` commits at once, so
    answers survive a killed run.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS responses ("
            " key TEXT PRIMARY KEY, model TEXT NOT NULL, prompt_id TEXT, custom_id TEXT,"
            " result TEXT NOT NULL, created REAL NOT NULL)"
        )

    def get_many(self, keys: Iterable[str]) -> dict[str, dict]:
        """Stored answers for the keys present (key -> answer dict)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(f"SELECT key, result FROM responses WHERE key IN ({marks})", chunk)
                for key, result in rows:
                    found[key] = json.loads(result)
        return found

    def put(self, key: str, model: str, prompt_id: str, custom_id: str, result: ChatResult) -> None:
        """Store one ok answer (committed immediately)."""
        record = {
            "text": result.text,
            "tool_calls": result.tool_calls,
            "finish_reason": result.finish_reason,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
        }
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, model, prompt_id, custom_id, result, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, model, prompt_id, custom_id, json.dumps(record, ensure_ascii=False), time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

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


# ---------------------------------------------------------------------------------------------- client
def _resolve_base_url(config: LLMConfig) -> str | None:
    return config.base_url or os.environ.get("TOOLQUAL_BASE_URL") or os.environ.get("OPENAI_BASE_URL") or None


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


class LLMClient:
    """Send chat requests through one cached, bounded, retried OpenAI-compatible client.

    Args:
        config: see :class:`LLMConfig`.

    Attributes:
        ledger: :class:`Ledger` of this client's requests (accumulates over calls).
        cache: the :class:`ResponseCache`, or ``None`` when ``cache_path`` is ``None``.
    """

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.ledger = Ledger(config.prices)
        self.cache: ResponseCache | None = ResponseCache(config.cache_path) if config.cache_path else None
        self.base_url = _resolve_base_url(config)
        #: the token-limit field live requests use now (starts as the config's; may switch, see _send)
        self.token_limit_param: TokenLimitParam = config.token_limit_param

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

    def _make_sdk_client(self, api_key: str):
        import openai

        kwargs: dict[str, Any] = {
            "api_key": api_key,
            "max_retries": int(self.config.max_retries),
            "timeout": float(self.config.timeout_s),
        }
        if self.base_url:
            kwargs["base_url"] = self.base_url
        if self.config.concurrency > 100:
            limits = _httpx_module().Limits(
                max_connections=max(1000, self.config.concurrency),
                max_keepalive_connections=self.config.concurrency,
            )
            kwargs["http_client"] = openai.DefaultAsyncHttpxClient(limits=limits)
        return openai.AsyncOpenAI(**kwargs)

    def _prepare(self, requests: Sequence[AnyRequest]) -> list[AnyRequest]:
        """Validated requests, as this client sends them (temperature dropped when not to be sent)."""
        requests = _validate_requests(requests)
        if not self.config.send_temperature:
            requests = [r if r.temperature is None else replace(r, temperature=None) for r in requests]
        return requests

    # ------------------------------------------------------------------ completion
    async def acomplete(self, requests: Sequence[AnyRequest], *, progress: bool = True) -> list[ChatResult]:
        """Answer ``requests`` (cache first; in live mode send the rest). Results in request order.

        Never raises for a failed request: it comes back unscored with ``error`` set. Raises
        :class:`~toolqual_utils.errors.ConfigError` only when requests must be sent and no key is
        available. Empty input -> ``[]``.
        """
        requests = self._prepare(requests)
        model = self.config.model
        results: list[ChatResult | None] = [None] * len(requests)
        keys = [cache_key(model, r) for r in requests]
        stored = self.cache.get_many(keys) if self.cache is not None else {}
        to_send: list[int] = []
        for index, (request, key) in enumerate(zip(requests, keys)):
            record = stored.get(key)
            if record is not None:
                results[index] = _result_from_cache(request.custom_id, record)
                self.ledger.record(model, results[index], sent=False)
            elif self.config.mode == "replay":
                results[index] = _error_result(
                    request.custom_id, STATUS_NOT_CACHED, "replay mode: no cached answer for this request"
                )
                self.ledger.record(model, results[index], sent=False)
            else:
                to_send.append(index)

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

            async def run_one(index: int) -> None:
                request = requests[index]
                async with semaphore:
                    result = await self._send(sdk, request, api_key)
                if result.status == STATUS_OK and self.cache is not None:
                    self.cache.put(keys[index], model, request.prompt_id, request.custom_id, result)
                results[index] = result
                self.ledger.record(model, result, sent=True)
                for other in duplicates.get(index, ()):
                    copy = ChatResult(**{**vars(result), "custom_id": requests[other].custom_id})
                    copy.cached = result.status == STATUS_OK
                    results[other] = copy
                    self.ledger.record(model, copy, sent=False)
                if bar is not None:
                    bar.update(1 + len(duplicates.get(index, ())))

            try:
                await asyncio.gather(*(run_one(i) for i in unique))
            finally:
                if bar is not None:
                    bar.close()
                await sdk.close()
        return [r for r in results if r is not None]

    async def _send(self, sdk, request: AnyRequest, api_key: str) -> ChatResult:
        path = "/completions" if isinstance(request, CompletionRequest) else "/chat/completions"
        for attempt in (1, 2):
            sent_param = self.token_limit_param
            body = request_body(self.config.model, request, sent_param)
            try:
                # The SDK's documented raw route (``client.post(path, cast_to=<httpx Response>, body=...)``):
                # same retries, Retry-After, timeouts and error classes as ``chat.completions.create``, but
                # the exact JSON body goes out as built (no per-request TypedDict transform) and the answer
                # is read as plain JSON (no pydantic model) — that overhead matters at hundreds of req/s.
                response = await sdk.post(path, body=body, cast_to=_http_response_class())
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
                return _error_result(request.custom_id, STATUS_API_ERROR, _describe_exception(exc, api_key))
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

    # ------------------------------------------------------------------ planning
    def in_cache(self, requests: Sequence[AnyRequest]) -> list[bool]:
        """For each request, whether the cache holds an answer now (nothing is sent or counted)."""
        requests = self._prepare(requests)
        if self.cache is None:
            return [False] * len(requests)
        keys = [cache_key(self.config.model, r) for r in requests]
        stored = self.cache.get_many(keys)
        return [key in stored for key in keys]

    def plan(self, requests: Sequence[AnyRequest], *, expected_output_tokens: int = 256) -> CostPlan:
        """Estimate what answering ``requests`` would send and cost (nothing is sent).

        Prompt tokens are estimated as characters of the JSON request (messages, tools, response
        schema) divided by ``CHARS_PER_TOKEN`` (4), summed over the requests not in the cache;
        completion tokens as ``expected_output_tokens`` per request, capped by its ``max_tokens``.
        In replay mode nothing is sent, so ``n_to_send`` is 0. Empty input -> all zeros.
        """
        requests = self._prepare(requests)
        model = self.config.model
        keys = [cache_key(model, r) for r in requests]
        stored = self.cache.get_many(keys) if self.cache is not None else {}
        seen: set[str] = set()
        n_cached = n_to_send = prompt_chars = completion_tokens = 0
        for request, key in zip(requests, keys):
            if key in stored:
                n_cached += 1
                continue
            if key in seen:  # duplicates are sent once
                continue
            seen.add(key)
            n_to_send += 1
            body = request_body(model, request, self.token_limit_param)
            prompt_chars += len(json.dumps({k: body[k] for k in ("messages", "tools", "response_format", "prompt")
                                            if k in body}))
            expected = expected_output_tokens
            if request.max_tokens is not None:
                expected = min(expected, request.max_tokens)
            completion_tokens += expected
        if self.config.mode == "replay":
            n_to_send, prompt_chars, completion_tokens = 0, 0, 0
        prompt_tokens = int(round(prompt_chars / CHARS_PER_TOKEN))
        cost = _cost(self.ledger.prices, model, prompt_tokens, completion_tokens)
        if cost is None and n_to_send == 0:
            cost = 0.0 if model in self.ledger.prices else None
        return CostPlan(model, len(requests), n_cached, n_to_send, prompt_tokens, completion_tokens, cost)

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
            stored = self.cache.get_many(cache_key(model, r) for r in requests)
            requests = [r for r in requests if cache_key(model, r) not in stored]
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
        for target, chunk in zip(targets, chunks):
            with open(target, "w", encoding="utf-8") as handle:
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
        for result_path in result_paths:
            result_path = Path(result_path)
            if not result_path.exists():
                raise InputError("batch result file not found", file=str(result_path))
            with open(result_path, encoding="utf-8") as handle:
                for line_no, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except ValueError as exc:
                        raise InputError(
                            f"not valid JSON ({exc.msg}); expected one Batch result object per line",
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

        keys = [cache_key(model, r) for r in requests]
        stored = self.cache.get_many(keys) if self.cache is not None else {}
        results: list[ChatResult] = []
        for request, key in zip(requests, keys):
            result = lines_by_id.get(request.custom_id)
            if result is not None:
                result = ChatResult(**vars(result))  # one object per request, even for shared ids
                if result.status == STATUS_OK and self.cache is not None:
                    self.cache.put(key, model, request.prompt_id, request.custom_id, result)
                self.ledger.record(model, result, sent=True)
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
        except ValueError:
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


def _progress_bar(total: int, initial: int, model: str, *, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"{model}", unit="req", mininterval=0.5, leave=False)
