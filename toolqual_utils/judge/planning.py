"""Planning a streaming judge run in a process of its own.

Planning an instance (reading it, running the rules, building its context and prompts) is pure CPU
work, and so is sending requests through the SDK. On one event loop they take turns; with the planner in
a second process they run side by side on two cores, and the loop that talks to the model only receives
finished plans (:class:`~toolqual_utils.judge.engine.JudgePlan` parts, one per instance) through a pipe.

- **Less for the sender to do.** The worker also works out each request's
  :class:`~toolqual_utils.llm.WireForm` (cache key, body bytes, prompt estimate) for the client's model,
  so the sending process spends its CPU on the network.
- **First request.** Each process loads only what it needs, side by side: the worker imports the checks
  (and the modules ``TOOLQUAL_CHECK_MODULES`` names) and reads, checks and prompts the first instance,
  while the sending process imports the openai SDK and its HTTP layer
  (:meth:`~toolqual_utils.llm.LLMClient.load_sdk_in_background`). The sending process loads neither the
  checks nor pandas before its first request (it needs pandas for the verdict table at the end), and the
  worker never loads pandas (the checks, the heuristics and the reader import it only in their table
  functions), so that request leaves about when the SDK is loaded (``tests/test_packaging.py``;
  ``benchmarks/bench_judge_e2e.py`` measures when).
- **Same result.** The worker runs the same :func:`~toolqual_utils.judge.engine.plan_parts` as the
  in-process planner; the parts arrive in input order and are absorbed in that order, so verdicts,
  requests and ids are identical (``tests/test_judge_planning.py``).
- **Bounded.** The worker blocks on the pipe when the event loop is not reading, and the loop reads only
  when the bounded queue of planned requests has room: the input is never read far ahead of the network.
- **Errors** raised while planning (bad input, duplicate ids) travel back whole and are raised after the
  requests in flight are answered, as in-process. A worker that dies says so. Ctrl-C is the parent's to
  handle: the worker ignores SIGINT and is ended when the run ends, however it ends.
- **Start.** ``fork`` on Linux when this is the only thread (the CLI): nothing is copied or pickled, the
  worker starts at once. Elsewhere (a notebook's worker thread) ``spawn``: the input must
  then be picklable (a list of instances, a :class:`~toolqual_utils.commands._inputs.CanonicalInputs`);
  when it is not (a generator), or on a platform whose event loop cannot watch a pipe, planning stays in
  process (:func:`start_planner` returns None).
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["PlannerProcess", "start_planner"]

log = logging.getLogger("toolqual.judge")
#: bytes the event loop buffers from the pipe before the worker's writes wait (about a dozen plans)
_READ_LIMIT = 2**17


def _send(fd: int, kind: str, payload: Any) -> None:
    """One message on the pipe: its length (8 bytes, big-endian), then the pickled (kind, payload)."""
    data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(8, "big") + data)
    while view:
        view = view[os.write(fd, view):]


def _work(conn, instances: Iterable[Any], settings: Any, table: Mapping | None, rule_criteria: Sequence[str] | None,
          wire_for: tuple | None, load_modules: bool) -> None:
    """The worker: plan every instance and send the parts, then ("done", None) or ("error", exception)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends this process
    fd = conn.fileno()
    try:
        if load_modules:  # spawned: register the user's check modules as the parent did
            from ..checks import load_check_modules

            load_check_modules()
        from .engine import plan_parts

        for part in plan_parts(instances, settings, table, rule_criteria, wire_for):
            _send(fd, "part", part)
        _send(fd, "done", None)
    except BrokenPipeError:  # the parent stopped reading: the run is over
        pass
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        try:
            _send(fd, "error", exc)
        except BrokenPipeError:
            pass
        except Exception:  # noqa: BLE001 - an exception that does not pickle travels as its text
            _send(fd, "error", RuntimeError(f"planning failed: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _fork_is_safe() -> bool:
    """Fork only on Linux (macOS system libraries are not fork-safe) and only from a single thread."""
    return (sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
            and threading.current_thread() is threading.main_thread() and threading.active_count() == 1)


class PlannerProcess:
    """A planning worker process and the receiving end of its pipe (see the module docstring)."""

    def __init__(self, process, conn) -> None:
        self.process = process
        self._conn = conn

    async def parts(self) -> AsyncIterator[Any]:
        """The plan parts, in input order, as the worker sends them; raises what planning raised.

        The pipe is read by the event loop (a message arriving in pieces never blocks the loop); the
        reader's buffer is bounded, so a worker far ahead of the network waits on its write."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_READ_LIMIT, loop=loop)
        pipe = os.fdopen(os.dup(self._conn.fileno()), "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe)
        try:
            while True:
                try:
                    size = int.from_bytes(await reader.readexactly(8), "big")
                    kind, payload = pickle.loads(await reader.readexactly(size))
                except asyncio.IncompleteReadError:
                    self.process.join(1)
                    raise RuntimeError(f"the planning process ended without finishing (exit code "
                                       f"{self.process.exitcode}); --planner inline plans in process") from None
                if kind == "part":
                    yield payload
                elif kind == "done":
                    return
                else:
                    raise payload
        finally:
            transport.close()

    def close(self) -> None:
        """End the worker (it may still be planning when the run stopped) and close the pipe."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(5)
        if self.process.is_alive():  # pragma: no cover - terminate is enough for a process that ignores nothing
            self.process.kill()
            self.process.join(5)
        self._conn.close()


def start_planner(instances: Iterable[Any], settings: Any, table: Mapping | None,
                  rule_criteria: Sequence[str] | None, wire_for: tuple | None = None) -> PlannerProcess | None:
    """Start planning ``instances`` in a worker process; None when it cannot be done here (planning then
    stays in this process, see the module docstring). ``rule_criteria`` as in
    :func:`~toolqual_utils.judge.engine.plan_parts` (None: the worker imports the checks and reads theirs).
    ``wire_for`` = (model, token-limit field, temperature sent): the worker also makes each request's wire
    form (cache key, body bytes, prompt estimate)."""
    if sys.platform == "win32":  # the proactor loop cannot watch a pipe
        return None
    method = "fork" if _fork_is_safe() else "spawn"
    context = multiprocessing.get_context(method)
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_work, name="toolqual-planner", daemon=True,
                              args=(send, instances, settings, table,
                                    None if rule_criteria is None else tuple(rule_criteria), wire_for,
                                    method == "spawn"))
    try:
        process.start()  # spawn pickles the arguments here, before the worker runs
    except Exception:  # noqa: BLE001 - input that cannot be sent (a generator, a lambda, ...): plan in process
        log.info("the input cannot be sent to a spawned planning process; planning in process")
        receive.close()
        return None
    finally:
        send.close()  # the worker holds the sending end: its exit closes the pipe
    return PlannerProcess(process, receive)
