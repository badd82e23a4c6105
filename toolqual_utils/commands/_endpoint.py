"""Shared model-endpoint options of the sub-commands that call a model (``judge``, ``ice``).

One place for: where the endpoint is, which environment variable holds the key, concurrency, timeout,
retries, the token limit and the field that carries it, the prompt ceiling, whether temperature is sent,
the answer cache, replay, and prices; their checks; the :class:`~toolqual_utils.llm.LLMConfig` they
make (through :func:`toolqual_utils.llm.endpoint_from_env`, the resolver the notebooks and views use
too); the cost plan both commands print; and the error a command raises after it kept its results when
the endpoint was unreachable.
"""
from __future__ import annotations

import argparse

from ..errors import ConfigError, EndpointError, InputError
from ..llm import DEFAULT_BASE_URL, HTTP_TRANSPORTS, TOKEN_LIMIT_PARAMS, CostPlan, Endpoint, LLMClient, LLMConfig, endpoint_from_env

DEFAULT_CACHE = ".toolqual_cache/llm.sqlite"


def add_endpoint_arguments(parser: argparse.ArgumentParser, *, max_tokens: int | None, max_tokens_help: str) -> None:
    """Add the endpoint, key, concurrency, timeout, token-limit, cache, replay and price options."""
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (.../v1); default env TOOLQUAL_BASE_URL, "
                        "else OPENAI_BASE_URL, else OpenAI")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="NAME",
                        help="NAME of the environment variable holding the API key (default OPENAI_API_KEY); "
                             "keys are never options")
    parser.add_argument("--concurrency", type=int, default=8, metavar="N", help="requests in flight (default 8)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="seconds one attempt may take in all, connecting and reading the whole answer (default 60)")
    parser.add_argument("--max-retries", type=int, default=5, metavar="N",
                        help="retries of a request after a timeout, connection error, 408/409/429 or 5xx, with "
                             "backoff and Retry-After (default 5)")
    parser.add_argument("--max-connection-failures", type=int, default=3, metavar="N",
                        help="stop the run (keeping what is done, exit status 3) after N connection failures in a "
                             "row; 0 = never stop (default 3)")
    parser.add_argument("--max-tokens", type=int, default=max_tokens, metavar="N", help=max_tokens_help)
    parser.add_argument("--token-limit-param", choices=TOKEN_LIMIT_PARAMS, default="max_tokens",
                        help="request field that carries --max-tokens; OpenAI reasoning models need "
                             "max_completion_tokens (a live run switches on its own when the server asks; "
                             "set it for --export-batch)")
    parser.add_argument("--no-temperature", action="store_true",
                        help="leave temperature out of the requests (models that accept only their default, "
                             "e.g. OpenAI reasoning models); answers are then sampled, not greedy")
    parser.add_argument("--max-prompt-tokens", type=int, metavar="N",
                        help="prompt-token ceiling (estimated as characters / 4): longer requests are not sent and "
                             "are recorded as unscored:too_long (default: the model's context window minus "
                             "--max-tokens; 128,000 for unknown models)")
    parser.add_argument("--http-transport", choices=HTTP_TRANSPORTS, default=None,
                        help="HTTP layer under the openai SDK: aiohttp (its DefaultAioHttpClient, about half the CPU "
                             "per request), httpx (its default) or auto = aiohttp when installed (default: env "
                             "TOOLQUAL_HTTP_TRANSPORT, else auto)")
    parser.add_argument("--cache", default=DEFAULT_CACHE, metavar="FILE",
                        help=f"sqlite answer cache (default {DEFAULT_CACHE}); 'none' disables it")
    parser.add_argument("--cache-endpoint", metavar="NAME",
                        help="name the answers are cached under (default: the base URL, so one server's answers are "
                             "never served for another); give replicas of one model the same name")
    parser.add_argument("--replay", action="store_true",
                        help="answer from the cache only, offline; misses become unscored:not_cached")
    parser.add_argument("--price-in", type=float, metavar="USD", help="USD per 1M input tokens (plan and ledger)")
    parser.add_argument("--price-out", type=float, metavar="USD", help="USD per 1M output tokens")


def check_endpoint_arguments(args: argparse.Namespace) -> None:
    """Refuse inconsistent endpoint options before any work is done."""
    if (args.price_in is None) != (args.price_out is None):
        raise InputError("give both --price-in and --price-out (USD per 1M input / output tokens), or neither")
    if args.concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {args.concurrency}", field="--concurrency")
    if not args.timeout > 0:
        raise InputError(f"--timeout must be positive, got {args.timeout}", field="--timeout")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise InputError(f"--max-tokens must be at least 1, got {args.max_tokens}", field="--max-tokens")
    if args.max_retries < 0:
        raise InputError(f"--max-retries must be 0 or more, got {args.max_retries}", field="--max-retries")
    if args.max_connection_failures < 0:
        raise InputError(f"--max-connection-failures must be 0 or more, got {args.max_connection_failures}",
                         field="--max-connection-failures")
    if args.max_prompt_tokens is not None and args.max_prompt_tokens < 1:
        raise InputError(f"--max-prompt-tokens must be at least 1, got {args.max_prompt_tokens}",
                         field="--max-prompt-tokens")


def endpoint(args: argparse.Namespace, role: str | None) -> Endpoint:
    """The endpoint the options and the environment describe (``--model`` / ``--base-url`` win)."""
    return endpoint_from_env(role, model=args.model or None, base_url=args.base_url, api_key_env=args.api_key_env)


def llm_config(args: argparse.Namespace, *, role: str | None = None, replay: bool | None = None) -> LLMConfig:
    """The client configuration the options describe (``replay`` overrides ``--replay``; ``role`` names the
    environment variable a missing ``--model`` is read from, see :func:`toolqual_utils.llm.endpoint_from_env`)."""
    resolved = endpoint(args, role)
    prices = {resolved.model: (args.price_in, args.price_out)} if args.price_in is not None else None
    return resolved.config(
        concurrency=args.concurrency, timeout_s=args.timeout,
        mode="replay" if (args.replay if replay is None else replay) else "live",
        cache_path=None if str(args.cache).lower() == "none" else args.cache, prices=prices,
        token_limit_param=args.token_limit_param,
        send_temperature=not args.no_temperature,
        max_retries=args.max_retries,
        max_prompt_tokens=args.max_prompt_tokens,
        max_connection_failures=args.max_connection_failures,
        cache_endpoint=args.cache_endpoint,
        http_transport=args.http_transport,
    )


def require_key(client: LLMClient) -> None:
    """Refuse, with what to do, a live run that must send requests but has no key for a remote endpoint."""
    resolved = endpoint_from_env(base_url=client.base_url, api_key_env=client.config.api_key_env)
    if resolved.can_send:
        return
    env = resolved.api_key_env
    raise ConfigError(
        f"no API key: requests would go to {resolved.where}, but the environment variable {env} is not set. "
        f"Set {env} in the environment (keys are never taken as options), or point --base-url / "
        "TOOLQUAL_BASE_URL at a local OpenAI-compatible server, or use --replay to answer from the cache only, "
        "or --export-batch to write Batch request files instead."
    )


def stopped_error(client: LLMClient, kept: str) -> EndpointError:
    """The error a command raises after writing ``kept`` (what it finished) when ``client`` stopped at an
    unreachable endpoint: names the URL, what to check, and how to resume."""
    url = client.base_url or DEFAULT_BASE_URL
    resume = ("answers already received are cached, so the same command resumes where this run stopped once the "
              "server is up" if client.cache is not None else
              "rerun the same command once the server is up (without a cache every request is sent again)")
    return EndpointError(
        f"{client.stopped}. Is the server running, and is {url} its address (--base-url, TOOLQUAL_BASE_URL or "
        f"OPENAI_BASE_URL)? Check with: curl {url.rstrip('/')}/models. {kept} Requests that were not answered "
        f"are recorded as unscored:not_sent; {resume}."
    )


def print_plan(plan: CostPlan, n_instances: int) -> None:
    """The cost plan of ``judge --plan`` and ``ice --plan``: requests, cached, to send, tokens, cost."""
    per_instance = plan.n_requests / n_instances if n_instances else 0.0
    cost = "unknown (give --price-in and --price-out)" if plan.est_cost_usd is None else f"${plan.est_cost_usd:,.4f}"
    shared = f", {plan.n_shared} identical to another request (answered once)" if plan.n_shared else ""
    print(f"plan for {plan.model}: {plan.n_requests} requests ({per_instance:.2f} per instance), {plan.n_cached} "
          f"already in the cache{shared}, {plan.n_to_send} to send; estimated ~{plan.est_prompt_tokens:,} prompt + "
          f"~{plan.est_completion_tokens:,} completion tokens; estimated cost {cost}. Nothing was sent.")
    if plan.n_too_long:
        print(f"{plan.n_too_long} requests are over the prompt ceiling and would not be sent "
              "(unscored:too_long; see --max-prompt-tokens)")
