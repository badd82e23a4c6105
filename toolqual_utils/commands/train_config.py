"""``toolqual train-config``: a subset as an engine's tool-calling dataset, a ready LoRA config, and the
commands that train, serve and evaluate (toolqual trains nothing itself)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError

HELP = "write a subset as LLaMA-Factory, axolotl or TRL data + LoRA config, with the train/serve/evaluate commands"
DESCRIPTION = """\
Turn a selected subset (any format `toolqual load` reads: the canonical or openai output of `toolqual
select`, for instance) into the files an existing training engine needs, in one folder:

  llamafactory  data/<name>.jsonl (ShareGPT with human/function_call/observation/gpt turns and tools),
                data/dataset_info.json, train.yaml (llamafactory-cli train), serve.yaml (llamafactory-cli api
                with the vLLM backend: an OpenAI-compatible endpoint that renders tools and returns tool_calls)
  axolotl       data/<name>.jsonl (OpenAI messages + tools), axolotl.yaml (type chat_template with tools),
                chat_template.jinja for base models without a tool-aware template; merge and serve with vLLM
  trl           the same data, trl_sft.yaml (trl sft --config), chat_template.jinja; serve the LoRA adapter
                with vLLM

plus README.md with the exact commands (train, serve on port 8000, toolqual evaluate) and
toolqual_train.json (settings, ids written, instances skipped and why). Instances without gold calls or
with gold arguments that are not valid JSON are skipped and listed.

Presets are the paper's settings (LoRA): --preset toolbench = LLaMA-7B (huggyllama/llama-7b), learning rate
5e-5, batch 2, 2 epochs; --preset toolalpaca = Vicuna-7B (lmsys/vicuna-7b-v1.3), 2e-5, batch 2, 3 epochs.
--base-model, --learning-rate, --batch-size, --epochs and the LoRA options override them. Training needs a
GPU and the engine installed; this command only writes files.

examples:
  toolqual select data.jsonl --verdicts judge.csv --recipe high_instruction_seq --size 10000 --out subsets/hiseq.jsonl
  toolqual train-config --engine llamafactory subsets/hiseq.jsonl --run hiseq --out train/hiseq
  toolqual train-config --engine axolotl subsets/random.jsonl --run random --preset toolalpaca --out train/random
  toolqual train-config --engine trl subsets/hiseq.jsonl --run hiseq --base-model Qwen/Qwen2.5-7B \\
      --chat-template Qwen/Qwen2.5-7B-Instruct --out train/hiseq-trl
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..train_config import ENGINES, PRESETS

    parser.add_argument("data", nargs="+", metavar="SUBSET.jsonl", help="the subset to train on (any supported format)")
    parser.add_argument("--engine", required=True, choices=ENGINES, help="the training engine the files are for")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write (created; files in it are replaced)")
    parser.add_argument("--run", help="name of this fine-tune: dataset, output folder and served model name "
                                      "(default: the first file's stem)")
    parser.add_argument("--preset", choices=tuple(PRESETS), default="toolbench",
                        help="the paper's settings to start from (default toolbench)")
    parser.add_argument("--base-model", help="base model (Hugging Face id or folder); default: the preset's")
    parser.add_argument("--learning-rate", type=float, help="default: the preset's")
    parser.add_argument("--batch-size", type=int, help="per-device batch size; default: the preset's (2)")
    parser.add_argument("--gradient-accumulation", type=int, default=1, metavar="N", help="default 1")
    parser.add_argument("--epochs", type=int, help="default: the preset's")
    parser.add_argument("--lora-rank", type=int, default=8, help="default 8")
    parser.add_argument("--lora-alpha", type=int, default=16, help="default 16")
    parser.add_argument("--lora-dropout", type=float, default=0.05, help="default 0.05")
    parser.add_argument("--max-length", type=int, default=2048, help="sequence length (default 2048, LLaMA-7B's context)")
    parser.add_argument("--chat-template", metavar="NAME",
                        help="llamafactory: its template name (default: the preset's, default or vicuna); axolotl: "
                             "a chat_template name such as tokenizer_default or qwen_25; trl: tokenizer_default or "
                             "a tokenizer whose template to use. Default for axolotl and trl: toolqual's "
                             "tool_chat.v1 (written as chat_template.jinja)")
    parser.add_argument("--seed", type=int, default=42, help="training seed (default 42)")


def run(args: argparse.Namespace) -> int:
    from ..loaders import load
    from ..train_config import TrainSettings, write_train_config

    for name in ("gradient_accumulation", "lora_rank", "lora_alpha", "max_length"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}",
                             field=f"--{name.replace('_', '-')}")
    if not 0 <= args.lora_dropout < 1:
        raise InputError(f"--lora-dropout must be in [0, 1), got {args.lora_dropout}", field="--lora-dropout")
    settings = TrainSettings(
        engine=args.engine, run=args.run or Path(args.data[0]).name.split(".")[0], preset=args.preset,
        base_model=args.base_model, learning_rate=args.learning_rate, batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation, epochs=args.epochs, lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, max_length=args.max_length,
        chat_template=args.chat_template, seed=args.seed,
    )
    loaded = load(args.data)
    if not loaded.instances:
        raise InputError("holds no instance to train on", file=", ".join(args.data))
    manifest = write_train_config(loaded.instances, args.out, settings, source_files=args.data)
    print(f"{manifest['n_written']} of {manifest['n_instances']} instances written for {args.engine} "
          f"({manifest['n_skipped']} skipped, {len(loaded.rejects)} input records rejected) -> {args.out}")
    print(f"files: {', '.join(manifest['files'])}")
    print("nothing was trained: run these where the engine and a GPU are (also in README.md):")
    for step in ("train", "serve", "evaluate"):
        print(f"  {step}: {manifest['commands'][step]}")
    return 0
