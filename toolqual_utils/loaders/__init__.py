"""Readers for each source format, with content-based format detection.

>>> from toolqual_utils.loaders import load, detect_format   # doctest: +SKIP
>>> result = load(["data/toolalpaca_eval.jsonl"])           # doctest: +SKIP

One module per source (each module docstring lists the pitfalls it handles and cites the format's
description): ``toolalpaca``, ``toolbench`` (ToolBench + StableToolBench), ``bfcl``, ``seal_tools``,
``xlam`` (xLAM/APIGen), ``toolace``, ``toolllama`` (ToolBench's training conversations), ``glaive``,
``sharegpt`` (Hermes tags and LLaMA-Factory's layout), ``canonical`` (toolqual JSONL), ``openai_chat``;
``detect`` ties them together. Shared pieces: ``_dialogue`` (conversations -> one instance per
tool-calling turn), ``containers`` (streamed arrays, Parquet, Arrow, ``datasets`` folders, gzip),
``_literals`` (JSON or Python literals, Python-call syntax; never ``eval``), ``_toolspec``.
"""
from ._common import SUPPORTED_FORMATS
from .detect import FORMATS, SUMMARY_COLUMNS, LoadResult, LoadSession, detect_format, formats_of, iter_load, load

__all__ = ["FORMATS", "SUMMARY_COLUMNS", "SUPPORTED_FORMATS", "LoadResult", "LoadSession", "detect_format",
           "formats_of", "iter_load", "load"]
