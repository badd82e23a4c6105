"""What several benchmarks share: the bundled mix they replicate, the bare AsyncOpenAI loop they compare
toolqual with, and their temporary folder.

The benchmark scripts run as ``python benchmarks/bench_<name>.py``; their own folder is then first on
``sys.path``, so they import this module as ``_common``.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: every bundled canonical file (the sources, with their long BFCL and Seal-Tools tool lists)
BUNDLED_FILES = tuple(sorted(p for p in (ROOT / "data").glob("*.jsonl") if not p.name.endswith(".rejects.jsonl")))
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def copy_tag(copy: int) -> str:
    """A tag naming a copy without digits (digits in an instruction could ground numeric values)."""
    text = ""
    copy += 1
    while copy:
        copy, rest = divmod(copy - 1, 26)
        text = _LETTERS[rest] + text
    return text


def write_mix(path: Path, n: int, *, tag_instructions: bool = False) -> int:
    """The bundled instances replicated up to ``n`` lines of canonical JSONL at ``path``: every copy after
    the first gets a new id, and with ``tag_instructions`` its instruction ends with a copy tag too (so that
    no two prompts are the same). Returns the number of lines written."""
    base = [json.loads(line) for name in BUNDLED_FILES for line in name.open(encoding="utf-8") if line.strip()]
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        copy = 0
        while written < n:
            for record in base:
                if written >= n:
                    break
                if copy:
                    record = {**record, "id": f"{record['id']}~{copy}"}
                    if tag_instructions:
                        record["instruction"] = f"{record['instruction']} (copy {copy_tag(copy)})"
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
            copy += 1
    return written


async def bare_loop(client: Any, bodies: Sequence[dict], concurrency: int) -> tuple[list[str | None], float, float]:
    """The loop a user writes with the SDK alone: ``client.chat.completions.create`` for every body,
    ``asyncio.gather`` under a semaphore of ``concurrency``. Returns (answer texts, wall seconds, CPU
    seconds of this process), the client closed."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(body: dict) -> str | None:
        async with semaphore:
            response = await client.chat.completions.create(**body)
            return response.choices[0].message.content

    start, cpu_start = time.perf_counter(), time.process_time()
    answers = await asyncio.gather(*(one(body) for body in bodies))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    await client.close()
    return list(answers), elapsed, cpu


@contextmanager
def work_folder(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary folder for a benchmark's files, removed at the end unless ``keep`` (then its path is
    printed)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
