"""A local OpenAI-compatible HTTP server for tests and benchmarks — a TEST DOUBLE, not a model.

:class:`OpenAIDouble` listens on ``127.0.0.1`` (random port) and answers
``POST /v1/chat/completions``, ``POST /v1/completions`` (text completions: ``content`` becomes the
choice's ``text``, cut before the first of the request's ``stop`` sequences, as servers do) and
``GET /v1/models`` with scripted :class:`Reply` objects, so the real
client code (``toolqual_utils.llm`` driving the real ``openai`` SDK over real HTTP) can be tested for
retries, timeouts, refusals, truncation, malformed bodies and throughput without any model or network.
Its answers are whatever the test scripted: they must never be presented as a model's judgement.

Besides well-formed answers it can misbehave the way real servers and proxies do: any JSON value as the
body (``Reply.body``), a body dripped one byte at a time (``drip_s``), a body that never ends
(``endless``), or a connection closed without an answer (``disconnect``). :data:`FAULTS` names a set of
such replies (content that is an object, usage that is text, a 200 carrying an error, ...) that the
fault tests and ``--fault`` on the command line use.

The server is a small asyncio HTTP/1.1 server (keep-alive, ``Content-Length`` bodies, listen backlog
1024) running in a background thread with its own event loop; it stays responsive at concurrency 64+.

Example:
    >>> from toolqual_utils.testing import OpenAIDouble, Reply
    >>> with OpenAIDouble() as double:
    ...     double.script = Reply(content='{"label": 1}')
    ...     # point the client at double.base_url, then inspect double.hits / double.bodies

``script`` may be:
    * a :class:`Reply` — the same reply to every request;
    * a list of replies — consumed in order, the last one repeats once the list is used up;
    * a callable ``(body: dict) -> Reply`` — called once per request with the parsed JSON body (a chat
      body has ``messages``, a completion body has ``prompt``; called on the server thread; keep it
      quick and thread-safe).

Run standalone (e.g. so a benchmark's server does not share the client's interpreter)::

    python -m toolqual_utils.testing.openai_double --delay 0.1 --content OK
    # prints "BASE_URL http://127.0.0.1:PORT/v1" on one line, serves until stdin closes or SIGTERM
    python -m toolqual_utils.testing.openai_double --fault slow_drip   # one of FAULTS, to probe a client
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Union

__all__ = ["OpenAIDouble", "Reply", "FAULTS", "fault_reply"]

#: ``Reply.body`` default: no JSON body override (the reply is built from the other fields).
_NO_BODY: Any = object()

_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_exceeded",
}


@dataclass
class Reply:
    """One scripted answer of the double.

    Attributes:
        content: assistant message text (``None`` = no content).
        tool_calls: ``[{"name": str, "arguments": str | dict}]``; rendered as OpenAI ``tool_calls`` with
            ids ``call_<n>_<i>`` (dict arguments are JSON-encoded, strings are sent verbatim).
        finish_reason: e.g. ``"stop"``, ``"length"``, ``"tool_calls"``, ``"content_filter"``.
        refusal: the message's ``refusal`` text (``None`` = not a refusal).
        status: HTTP status; non-200 sends an OpenAI-style ``{"error": {...}}`` body whose message is
            ``content`` (or a default text).
        headers: extra response headers, e.g. ``{"Retry-After": "1"}``.
        raw_body: bytes sent verbatim as the body (with ``status``), e.g. malformed JSON.
        delay_s: seconds to wait before answering (latency).
        prompt_tokens: ``usage.prompt_tokens`` reported.
        completion_tokens: ``usage.completion_tokens`` reported.
        body: any JSON value sent as the whole body (with ``status``) instead of a built completion, e.g.
            a completion whose ``content`` is an object; NaN is written as ``NaN`` (as Python's json does).
        drip_s: send the body one byte at a time with this pause between bytes (a slow-drip server).
        endless: after the headers (which announce a huge ``Content-Length``) send spaces for ever, with
            ``drip_s`` between chunks (0 = as fast as the client reads), until the client gives up.
        disconnect: close the connection after reading the request, without any answer.
    """

    content: str | None = None
    tool_calls: list[dict] | None = None
    finish_reason: str = "stop"
    refusal: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None
    delay_s: float = 0.0
    prompt_tokens: int = 10
    completion_tokens: int = 5
    body: Any = _NO_BODY
    drip_s: float = 0.0
    endless: bool = False
    disconnect: bool = False


Script = Union[Reply, "list[Reply]", Callable[[dict], Reply]]


class OpenAIDouble:
    """A local OpenAI-compatible test server (context manager). See the module docstring.

    Attributes:
        base_url: ``http://127.0.0.1:<port>/v1`` once started.
        script: what to answer (a :class:`Reply`, a list of replies, or a callable).
        hits: number of chat and text completion requests received (every retry counts).
        bodies: parsed JSON bodies of the requests received, in arrival order (the raw text when
            a body was not valid JSON).
        paths: the route of each of those requests (``"/v1/chat/completions"`` or ``"/v1/completions"``).
        request_headers: the headers of each request (lower-cased names), in arrival order.
        in_flight: requests received and not yet answered.
        max_in_flight: the most requests ever in flight at once (since start or :meth:`reset`).
    """

    def __init__(self, script: Script | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.script: Script = script if script is not None else Reply(content="OK")
        self.host = host
        self.port = port
        self.hits = 0
        self.bodies: list[Any] = []
        self.paths: list[str] = []
        self.request_headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._script_pos = 0
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> "OpenAIDouble":
        """Start serving in a background thread; returns self once the port is bound."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="OpenAIDouble", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._start_error is not None:
            raise RuntimeError(f"OpenAIDouble failed to start: {self._start_error}")
        return self

    def stop(self) -> None:
        """Stop the server and its thread (open connections are closed)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            fut.result(5)
        except Exception:  # noqa: BLE001 - best effort on teardown
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        self._thread = None
        self._loop = None

    def reset(self) -> None:
        """Forget hits, bodies and headers seen, and restart a list script from its first reply."""
        with self._lock:
            self.hits = 0
            self.bodies = []
            self.paths = []
            self.request_headers = []
            self.max_in_flight = self.in_flight
            self._script_pos = 0

    def __enter__(self) -> "OpenAIDouble":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ server internals
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, backlog=1024, limit=2**24)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._start_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except Exception:  # noqa: BLE001
                pass

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, version = lines[0].split(" ", 2)
                except ValueError:
                    return
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    await self._send(writer, 411, {}, _error_body(411, "chunked bodies not supported"))
                    return
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
                await self._dispatch(writer, method, target, headers, body)
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    async def _dispatch(
        self, writer: asyncio.StreamWriter, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> None:
        path = target.split("?", 1)[0].rstrip("/")
        if method == "GET" and path.endswith("/models"):
            data = {
                "object": "list",
                "data": [{"id": "double-model", "object": "model", "created": 0, "owned_by": "toolqual-test-double"}],
            }
            await self._send(writer, 200, {}, json.dumps(data).encode())
            return
        is_chat = path.endswith("/chat/completions")
        if method != "POST" or not (is_chat or path.endswith("/completions")):
            await self._send(writer, 404, {}, _error_body(404, f"OpenAIDouble has no route {method} {path}"))
            return
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        with self._lock:
            self.hits += 1
            self.bodies.append(parsed)
            self.paths.append("/v1/chat/completions" if is_chat else "/v1/completions")
            self.request_headers.append(headers)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                reply = self._next_reply(parsed)
            except Exception as exc:  # noqa: BLE001 - a broken script answers 500, visibly
                reply = Reply(status=500, content=f"OpenAIDouble script raised {type(exc).__name__}: {exc}")
        try:
            await self._answer(writer, reply, parsed, chat=is_chat)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, writer: asyncio.StreamWriter, reply: Reply, parsed: Any, *, chat: bool = True) -> None:
        n = next(self._counter)
        if reply.delay_s > 0:
            await asyncio.sleep(reply.delay_s)
        if reply.disconnect:
            writer.close()
            raise ConnectionResetError("OpenAIDouble: scripted disconnect")
        if reply.endless:
            await self._send_endless(writer, reply)
            return
        if reply.raw_body is not None:
            body = reply.raw_body
        elif reply.body is not _NO_BODY:
            body = json.dumps(reply.body).encode()
        elif reply.status != 200:
            body = _error_body(reply.status, reply.content)
        else:
            model = parsed.get("model", "double-model") if isinstance(parsed, dict) else "double-model"
            if chat:
                data = _completion(reply, model, n)
            else:
                stop = parsed.get("stop") if isinstance(parsed, dict) else None
                data = _text_completion(reply, model, n, stop)
            body = json.dumps(data).encode()
        await self._send(writer, reply.status, reply.headers, body, drip_s=reply.drip_s)

    def _next_reply(self, body: Any) -> Reply:
        script = self.script
        if isinstance(script, Reply):
            return script
        if isinstance(script, (list, tuple)):
            if not script:
                return Reply(status=500, content="OpenAIDouble script is an empty list")
            reply = script[min(self._script_pos, len(script) - 1)]
            self._script_pos += 1
            return reply
        if callable(script):
            return script(body)
        raise TypeError(f"OpenAIDouble.script must be a Reply, a list of Reply or a callable, not {type(script)}")

    async def _send(
        self, writer: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes, *, drip_s: float = 0.0
    ) -> None:
        head = _head(status, headers, len(body))
        if drip_s <= 0:
            writer.write(head + body)
            try:
                await writer.drain()
            except ConnectionError:
                pass
            return
        writer.write(head)
        for index in range(len(body)):
            if writer.is_closing():
                raise ConnectionResetError("OpenAIDouble: the client went away during a slow drip")
            writer.write(body[index : index + 1])
            await writer.drain()
            await asyncio.sleep(drip_s)

    async def _send_endless(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        writer.write(_head(reply.status, reply.headers, 10**15))
        chunk = b" " * 65536
        while not writer.is_closing():
            writer.write(chunk if reply.drip_s <= 0 else b" ")
            await writer.drain()
            await asyncio.sleep(reply.drip_s)
        raise ConnectionResetError("OpenAIDouble: the client went away during an endless body")


def _head(status: int, headers: dict[str, str], length: int) -> bytes:
    reason = _STATUS_TEXT.get(status, "Status")
    out = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json", f"Content-Length: {length}"]
    out.extend(f"{k}: {v}" for k, v in headers.items())
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


def _error_body(status: int, message: str | None) -> bytes:
    error = {
        "message": message or f"OpenAIDouble scripted error {status}",
        "type": _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        "param": None,
        "code": str(status),
    }
    return json.dumps({"error": error}).encode()


def _completion(reply: Reply, model: str, n: int) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": reply.refusal}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{n}_{i}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": call["arguments"]
                    if isinstance(call.get("arguments"), str)
                    else json.dumps(call.get("arguments", {})),
                },
            }
            for i, call in enumerate(reply.tool_calls)
        ]
    return {
        "id": f"chatcmpl-double-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def _text_completion(reply: Reply, model: str, n: int, stop: Any) -> dict:
    """A ``/v1/completions`` body: ``content`` as the text, cut before the first stop sequence."""
    text = reply.content or ""
    finish_reason = reply.finish_reason
    stops = [stop] if isinstance(stop, str) else [s for s in (stop or []) if isinstance(s, str) and s]
    cuts = [text.find(s) for s in stops if s in text]
    if cuts:
        text = text[: min(cuts)]
        finish_reason = "stop"
    return {
        "id": f"cmpl-double-{n}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def _body(message: Any = None, *, choices: Any = None, usage: Any = None, finish_reason: Any = "stop") -> dict:
    """A chat-completion body with the given (possibly malformed) parts."""
    if message is None:
        message = {"role": "assistant", "content": "OK"}
    if choices is None:
        choices = [{"index": 0, "message": message, "finish_reason": finish_reason}]
    body = {"id": "chatcmpl-fault", "object": "chat.completion", "created": 0, "model": "double-model",
            "choices": choices}
    body["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15} if usage is None else usage
    return body


def _message(**fields: Any) -> dict:
    return {"role": "assistant", **fields}


#: Named misbehaving replies: name -> (reply, what is wrong). Every one of them must come back from the
#: client as ``unscored:api_error`` with a reason, and never be cached.
FAULTS: dict[str, tuple[Reply, str]] = {
    "content_object": (Reply(body=_body(_message(content={"specificity": 1}))), "message.content is a JSON object"),
    "content_list": (Reply(body=_body(_message(content=[{"type": "text", "text": "OK"}]))),
                     "message.content is a list of parts"),
    "content_number": (Reply(body=_body(_message(content=1))), "message.content is a number"),
    "usage_text": (Reply(body=_body(usage="abc")), "usage is a string"),
    "usage_nan": (Reply(body=_body(usage=float("nan"))), "usage is NaN"),
    "usage_list": (Reply(body=_body(usage=[10, 5])), "usage is a list"),
    "usage_tokens_text": (Reply(body=_body(usage={"prompt_tokens": "many", "completion_tokens": 5})),
                          "usage.prompt_tokens is a string"),
    "usage_tokens_negative": (Reply(body=_body(usage={"prompt_tokens": -3, "completion_tokens": 5})),
                              "usage.prompt_tokens is negative"),
    "usage_tokens_infinite": (Reply(body=_body(usage={"prompt_tokens": float("inf"), "completion_tokens": 5})),
                              "usage.prompt_tokens is Infinity"),
    "message_string": (Reply(body=_body("OK")), "choices[0].message is a string"),
    "message_list": (Reply(body=_body([{"content": "OK"}])), "choices[0].message is a list"),
    "tool_calls_strings": (Reply(body=_body(_message(content=None, tool_calls=["get_weather"]))),
                           "message.tool_calls holds strings"),
    "tool_calls_object": (Reply(body=_body(_message(content=None, tool_calls={"name": "get_weather"}))),
                          "message.tool_calls is an object"),
    "tool_call_without_name": (Reply(body=_body(_message(content=None, tool_calls=[
        {"id": "c1", "type": "function", "function": {"arguments": "{}"}}]))), "a tool call has no function name"),
    "tool_call_function_string": (Reply(body=_body(_message(content=None, tool_calls=[
        {"id": "c1", "type": "function", "function": "get_weather"}]))), "a tool call's function is a string"),
    "refusal_object": (Reply(body=_body(_message(content=None, refusal={"reason": "no"}))),
                       "message.refusal is an object"),
    "finish_reason_object": (Reply(body=_body(finish_reason={"why": "stop"})), "finish_reason is an object"),
    "choices_empty": (Reply(body=_body(choices=[])), "choices is empty"),
    "choices_object": (Reply(body=_body(choices={"0": {"message": {"content": "OK"}}})), "choices is an object"),
    "choice_string": (Reply(body=_body(choices=["OK"])), "choices[0] is a string"),
    "error_200": (Reply(body={"error": {"message": "The model is overloaded", "type": "server_error"}}),
                  "HTTP 200 whose body is an error object"),
    "body_list": (Reply(body=[_body()]), "the body is a JSON list"),
    "body_string": (Reply(body="OK"), "the body is a JSON string"),
    "body_null": (Reply(body=None), "the body is JSON null"),
    "body_empty": (Reply(raw_body=b""), "the body is empty"),
    "body_html": (Reply(raw_body=b"<html><body>502 Bad Gateway</body></html>"), "the body is an HTML page"),
    "body_truncated": (Reply(raw_body=json.dumps(_body()).encode()[:40]), "the body is cut off mid-JSON"),
    "slow_drip": (Reply(content="OK", drip_s=0.25), "the body arrives one byte every 0.25 s"),
    "endless_body": (Reply(endless=True, drip_s=0.01), "the body never ends"),
    "disconnect": (Reply(disconnect=True), "the connection closes without an answer"),
}


def fault_reply(name: str) -> Reply:
    """The :class:`Reply` of a named fault (see :data:`FAULTS`)."""
    try:
        return FAULTS[name][0]
    except KeyError:
        raise KeyError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}") from None


def main(argv: list[str] | None = None) -> int:
    """Serve a double with one fixed reply until stdin closes (or the process is terminated)."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible TEST DOUBLE (scripted replies, no model).")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--content", default="OK", help="assistant message text of every reply")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fault", choices=sorted(FAULTS), help="answer every request with this misbehaviour")
    args = parser.parse_args(argv)
    reply = fault_reply(args.fault) if args.fault else Reply(content=args.content, delay_s=args.delay)
    with OpenAIDouble(reply, port=args.port) as double:
        print(f"BASE_URL {double.base_url}", flush=True)
        try:
            sys.stdin.read()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
