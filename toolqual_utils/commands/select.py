"""``toolqual select``: draw a fine-tune subset with a recipe and export it with a manifest."""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ..errors import EmptyResultError, InputError
from ..export import EXPORT_FORMATS, export_selection, manifest_path
from ..io import read_instances, read_table
from ..selection import RECIPE_LABELS, RECIPES, select
from ..verdicts import merge_verdicts, read_verdicts

HELP = "draw a subset with a recipe (random, high/low ICE, high instruction[+seq][+ICE], original) and export it"
DESCRIPTION = """\
Draw a fine-tune subset from canonical instances with one of the paper's Table 6 recipes and export it,
plus <out>.manifest.json (recipe, thresholds, ids, seed, counts, source files with sha256, toolqual
version, and exactly what the format could not hold: system prompts, tool results, final answers).

formats (--format; docs/training_formats.md shows the trainer configuration for each):
  canonical     toolqual's own JSON Lines (every selected instance)
  openai        {messages, tools}: OpenAI fine-tuning, TRL SFTTrainer, axolotl chat_template
  sharegpt      ShareGPT with Hermes tags (<tools>, <tool_call>, <tool_response>)
  llamafactory  LLaMA-Factory ShareGPT (function_call/observation turns, tools and system columns)
  xlam          xLAM/APIGen {id, query, tools, answers}
Earlier turns of multi-turn instances are written before the instruction with "weight": 0 on their
assistant messages (context, not a training target).

recipes:
""" + "\n".join(f"  {name:<26} {RECIPE_LABELS[name]}" for name in RECIPES) + """

high_instruction* recipes need --verdicts (from `toolqual check` / `toolqual judge`); *ice recipes need
--ice (from `toolqual ice`). When fewer instances qualify than --size asks for, the subset is not
padded: the manifest and the printed notes say how many qualified.

examples:
  toolqual select data/toolalpaca_eval.jsonl --recipe random --size 50 --seed 1 --out subsets/random.jsonl
  toolqual select data/toolalpaca_eval.jsonl --verdicts results/judge.jsonl --recipe high_instruction_seq \\
      --size 50 --out subsets/clean.jsonl --format openai
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA.jsonl", help="canonical JSONL file (the pool)")
    parser.add_argument("--verdicts", action="append", metavar="FILE",
                        help="verdict table (.jsonl/.csv/.parquet); repeat to merge several judges, the first "
                             "file's scored verdicts taking priority")
    parser.add_argument("--ice", metavar="FILE", help="ICE score table (instance_id, ice_score, ...)")
    parser.add_argument("--target-model", help="with --ice: keep the scores of this target model")
    parser.add_argument("--recipe", required=True, choices=RECIPES, help="selection recipe")
    parser.add_argument("--size", type=int, help="instances wanted (required for random, low_ice, high_ice)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling and tie-breaks (default 0)")
    parser.add_argument("--unscored", choices=("exclude", "pass"), default="exclude",
                        help="unscored criteria: exclude the instance (default) or count them as holding")
    parser.add_argument("--min-confidence", type=float, default=None, metavar="C",
                        help="verdicts whose confidence (share of agreeing votes, from judge --samples/--judges) is "
                        "below C count as unscored, so --unscored decides what happens to them")
    parser.add_argument("--source", action="append", dest="sources", metavar="NAME",
                        help="restrict the pool to this source (repeatable)")
    parser.add_argument("--out", required=True, metavar="FILE", help="export file to write")
    parser.add_argument("--format", default="canonical", choices=EXPORT_FORMATS, help="export format")
    parser.add_argument("--include-ids", action="store_true",
                        help="openai format: add id/source to each record (default: a plain fine-tuning file)")
    parser.add_argument("--tool-arguments", choices=("string", "object"), default="string",
                        help="openai format: call arguments as a JSON string (OpenAI, default) or as an object "
                             "(for chat templates that serialise them, e.g. with TRL)")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")


def _read_verdicts(paths: list[str] | None) -> pd.DataFrame | None:
    """The --verdicts files, each checked, merged in the order given (the first scored verdict wins)."""
    if not paths:
        return None
    return merge_verdicts(*(read_verdicts(path) for path in paths))


def _read_ice(path: str | None, target_model: str | None) -> pd.DataFrame | None:
    if not path:
        return None
    frame = read_table(path)
    missing = {"instance_id", "ice_score"} - set(frame.columns)
    if missing:
        raise InputError(f"not an ICE score table: column(s) {sorted(missing)} missing", file=path)
    if target_model is not None:
        if "target_model" not in frame.columns:
            raise InputError("--target-model given but the table has no target_model column", file=path)
        frame = frame.loc[frame["target_model"].astype(str) == target_model]
        if frame.empty:
            raise InputError(f"no ICE scores for target model {target_model!r}", file=path, field="target_model")
    if frame["instance_id"].duplicated().any():
        hint = ""
        if "target_model" in frame.columns and frame["target_model"].nunique() > 1:
            hint = f" (target models: {', '.join(sorted(map(str, frame['target_model'].unique())))}; choose with --target-model)"
        raise InputError(f"several ICE rows per instance{hint}; select needs one score per instance",
                         file=path, field="instance_id")
    return frame


def _empty_selection_message(args: argparse.Namespace, selection) -> str:
    """Why a recipe kept nothing, and what to do about it (nothing is written in that case)."""
    advice = []
    if selection.thresholds.get("n_unscored_no_error") and args.unscored == "exclude":
        advice.append("score the open criteria with `toolqual judge` (solvability and sufficiency need a model), "
                      "or add --unscored pass to count unscored criteria as holding")
    if selection.thresholds.get("n_with_error") and selection.thresholds.get("n_with_error") == selection.n_pool:
        advice.append("every instance has an error on a needed criterion: try --recipe high_instruction, "
                      "or look at the errors first (`toolqual check`, notebook 01)")
    if args.recipe in ("low_ice", "high_ice", "high_instruction_seq_ice") and not selection.thresholds.get("ice_order"):
        advice.append("give ICE scores with --ice (from `toolqual ice`)")
    reasons = [n for n in selection.notes if n.startswith(("no instance qualifies", "pool restricted"))]
    reasons = reasons or [n for n in selection.notes if not n.startswith("only 0 of")] or ["no instance qualified"]
    notes = "; ".join(reasons)
    todo = (" To get a subset: " + "; ".join(advice) + ".") if advice else ""
    return (f"recipe {args.recipe} kept 0 of {selection.n_pool} instances ({notes}); nothing was written to "
            f"{args.out}.{todo}")


def run(args: argparse.Namespace) -> int:
    instances = read_instances(args.data, strict=True)
    if not instances:
        raise InputError("no instances in the file", file=args.data)
    verdicts = _read_verdicts(args.verdicts)
    ice = _read_ice(args.ice, args.target_model)
    try:
        selection = select(instances, verdicts, ice, recipe=args.recipe, size=args.size, seed=args.seed,
                           unscored=args.unscored, sources=args.sources, min_confidence=args.min_confidence)
    except InputError as exc:
        # name the command-line option rather than the Python argument
        option = {"verdicts": "--verdicts", "ice": "--ice", "size": "--size", "recipe": "--recipe",
                  "min_confidence": "--min-confidence"}.get(exc.field or "")
        if option is None:
            raise
        raise InputError(str(exc).split(": ", 1)[-1], field=option) from None
    except ValueError as exc:  # bad labels inside a verdict file
        raise InputError(str(exc), file=", ".join(args.verdicts or [args.data])) from None
    if selection.n_selected == 0:
        raise EmptyResultError(_empty_selection_message(args, selection))
    source_files = [args.data, *(args.verdicts or []), *([args.ice] if args.ice else [])]
    options = {key: value for key, value in vars(args).items() if not key.startswith("_") and key != "command"}
    manifest = export_selection(
        instances, selection, args.out, format=args.format, include_ids=args.include_ids or None,
        tool_arguments=args.tool_arguments, source_files=source_files, extra={"command_options": options},
    )
    if not args.quiet:
        print(f"{args.recipe}: selected {manifest['n_selected']} of {manifest['n_pool']} instances "
              f"({manifest['n_candidates']} qualified, seed {args.seed}); wrote {manifest['n_written']} "
              f"to {args.out} ({args.format}) and {manifest_path(Path(args.out))}")
        dropped = manifest["system_prompts_dropped"]
        extra_notes = [f"system prompt not written for {dropped['n']} instance(s): {dropped['reason']} "
                       "(ids in the manifest)"] if dropped["n"] else []
        for note in [*manifest["notes"], *extra_notes,
                     *(f"skipped {s['id']}: {s['reason']}" for s in manifest["skipped"])]:
            print(f"  note: {note}")
    return 0
