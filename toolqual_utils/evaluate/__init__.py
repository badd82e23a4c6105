"""``toolqual evaluate``: run a served model (the one fine-tuned on a subset) on a tool-use test set.

- :mod:`.testset` — test items and their gold answers (BFCL possible answers, or derived from the gold
  calls); test-set cleaning with a verdict table.
- :mod:`.answers` — reading calls out of the model's answers (native tool calls, Hermes tags, ReAct, JSON).
- :mod:`.static` — one request per item, calls matched with the BFCL-style matcher.
- :mod:`.multistep` — several steps with simulated tools and a judge (ToolAlpaca / ToolEval setting).
- :mod:`.engine` — runs through :mod:`toolqual_utils.llm` (cache, retries, ledger, Batch files) and
  writes one outcome row per item and run; :mod:`toolqual_utils.extrinsic` and notebook 06 read them.
- :mod:`.prompting` — the versioned prompt files in ``prompts/``.
"""
