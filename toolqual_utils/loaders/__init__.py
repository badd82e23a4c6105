"""Readers for each source format, with content-based format detection.

>>> from toolqual_utils.loaders import load, detect_format   # doctest: +SKIP
>>> result = load(["data/toolalpaca_eval.jsonl"])           # doctest: +SKIP

One module per source (each module docstring lists the pitfalls it handles): ``toolalpaca``,
``toolbench`` (ToolBench + StableToolBench), ``bfcl``, ``seal_tools``, ``canonical`` (toolqual JSONL),
``openai_chat``; ``detect`` ties them together.
"""
from ._common import SUPPORTED_FORMATS
from .detect import FORMATS, SUMMARY_COLUMNS, LoadResult, LoadSession, detect_format, iter_load, load

__all__ = ["FORMATS", "SUMMARY_COLUMNS", "SUPPORTED_FORMATS", "LoadResult", "LoadSession", "detect_format",
           "iter_load", "load"]
