"""Garbage-collector settings for a command's long run.

A judge, ICE or evaluation run keeps every plan part, answer and verdict row until it writes its tables:
hundreds of thousands of container objects that live to the end of the run. With Python's default
thresholds (700, 10, 10) the collector scans them again and again. In a 4,000-instance judge run against
a local server, the sending process spent 2.2 s of its 11 s of CPU in 1,500 collections, 1.5 s of it in 9
full ones; unpickling the planning process's parts alone took 1.1 s with the collector on, 0.26 s with
it off. So a command's run:

- freezes what was loaded before it (modules, the SDK, caches: :func:`gc.freeze`), so that no collection
  scans them again;
- collects the young generation every ``threshold`` allocations instead of 700. Short-lived cycles are
  still collected young; the oldest generation is still collected as Python decides (when it has grown
  by a quarter since its last collection).

A process that plans or checks in a worker inherits the settings (fork) or sets them itself
(:func:`tune_for_throughput`). :func:`long_run_gc` puts the previous settings back when the run ends, so a
caller that runs a command in its own process (a test, a notebook) keeps its own.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

#: allocations between two young collections during a command's run (Python's default: 700)
RUN_GC_THRESHOLD: Final = 50_000


def tune_for_throughput(threshold: int = RUN_GC_THRESHOLD) -> None:
    """Freeze every object alive now out of the collector's scans and collect the young generation every
    ``threshold`` allocations (the older generations' thresholds are kept)."""
    gc.freeze()
    gc.set_threshold(threshold, *gc.get_threshold()[1:])


@contextmanager
def long_run_gc(threshold: int = RUN_GC_THRESHOLD) -> Iterator[None]:
    """:func:`tune_for_throughput` for the duration of the block (or of each call of a function it decorates:
    ``@long_run_gc()``), then the previous thresholds again and the frozen objects back in the collector's
    care."""
    previous = gc.get_threshold()
    tune_for_throughput(threshold)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
