"""ICE (in-context evaluation): score each instance by how well it teaches a target model, as the only
demonstration, to solve a fixed hand-made test bed (docs/method.md, "ICE: value as a one-shot teacher").

Public names are re-exported here; see the submodules for details:
:mod:`.testbed` (load/validate), :mod:`.prompt` (requests), :mod:`.parse` (answers), :mod:`.score`
(similarity, strict match, aggregation), :mod:`.engine` (runs through ``toolqual_utils.llm``),
:mod:`.adaptive` (top-K/bottom-K with fewer generations), :mod:`.distributions` (histograms,
bimodality, K thresholds), :mod:`.plots` (figures from finished tables).

The engine (and through it ``openai``) is imported lazily, so the pure parts stay light.
"""
from __future__ import annotations

from .adaptive import AdaptiveConfig, AdaptiveResult, adaptive_select, full_selection, selection_overlap
from .distributions import bimodality_coefficient, distribution_summary, k_thresholds, score_histogram
from .parse import ParsedAnswer, parse_answer
from .prompt import CALL_FORMATS, IcePrompt, build_prompt, build_prompts
from .score import INSTANCE_COLUMNS, aggregate_instances, canonical_calls, similarity, strict_match
from .testbed import DEFAULT_TESTBED, TestBed, TestQuery, load_testbed

__all__ = [
    "AdaptiveConfig", "AdaptiveResult", "adaptive_select", "full_selection", "selection_overlap",
    "bimodality_coefficient", "distribution_summary", "k_thresholds", "score_histogram",
    "ParsedAnswer", "parse_answer", "CALL_FORMATS", "IcePrompt", "build_prompt", "build_prompts",
    "INSTANCE_COLUMNS", "aggregate_instances", "canonical_calls", "similarity", "strict_match",
    "DEFAULT_TESTBED", "TestBed", "TestQuery", "load_testbed", "run_ice", "run_ice_adaptive", "IceRun",
]


def __getattr__(name: str):
    if name in ("run_ice", "run_ice_adaptive", "IceRun"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(name)
