"""Fine-tuning files for an existing training engine: the selected subset in the engine's tool-calling
format, a ready LoRA config, and the commands that train, serve and evaluate (``toolqual train-config``).

toolqual trains nothing itself. It writes, into one folder:

============  =====================================================  ==========================================
engine        data (from :func:`toolqual_utils.export.to_openai_record`)  config and commands
============  =====================================================  ==========================================
llamafactory  ``data/<name>.jsonl``: ShareGPT rows with                ``train.yaml`` (``llamafactory-cli train``),
              ``conversations`` (``human`` / ``function_call`` /        ``serve.yaml`` (``llamafactory-cli api``,
              ``observation`` / ``gpt``) and ``tools`` (a JSON string);  vLLM backend: an OpenAI-compatible API that
              ``data/dataset_info.json`` describes it                  renders the tools and returns ``tool_calls``)
axolotl       ``data/<name>.jsonl``: OpenAI ``messages`` (assistant      ``axolotl.yaml`` (``axolotl train``; merge
              ``tool_calls`` with JSON-string arguments, ``tool``        with ``axolotl merge-lora``; serve the merged
              results) + ``tools`` (JSON string)                        model with ``vllm serve``)
trl           the same file                                           ``trl_sft.yaml`` (``trl sft --config``; serve
                                                                      the adapter with ``vllm serve --enable-lora``)
============  =====================================================  ==========================================

The field names follow each engine's documentation (LLaMA-Factory ``data/README.md`` and
``examples/train_lora``; axolotl's conversation dataset format, ``type: chat_template`` with tools; TRL's
SFT tool-calling datasets and ``trl sft`` config files); ``tests/test_train_config.py`` checks the written
files against them. Rules every engine needs, applied to all: a record alternates user and assistant
turns as LLaMA-Factory requires (a trailing tool result with no reply after it is left out), and
instances whose gold arguments could not be parsed, that have no gold calls, or whose gold answer is to
call nothing with no reply text, are skipped and listed (a trainer would learn broken JSON or an empty
turn, or fail on it).

Chat template: LLaMA-Factory renders tools with its own templates (``default`` for LLaMA-7B, ``vicuna``
for Vicuna-7B; its default tool format writes ``Action:`` / ``Action Input:``). axolotl and TRL need a
tool-aware Jinja template; base models such as LLaMA-7B have none, so ``chat_template.jinja`` (toolqual's
``tool_chat.v1``: plain text, ``<tool_call>`` blocks, the tokenizer's own EOS) is written and used for
training and serving alike. ``--chat-template tokenizer_default`` keeps a base model's own template.

Presets hold the paper's settings: ``toolbench`` = LLaMA-7B, learning rate 5e-5, batch 2, 2 epochs;
``toolalpaca`` = Vicuna-7B, 2e-5, batch 2, 3 epochs; LoRA rank 8, alpha 16, dropout 0.05 on all linear
layers (the paper does not give its LoRA settings).

Pure module (no network, no training): standard library, PyYAML and the toolqual pure modules.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

import yaml

from . import __version__
from .errors import InputError
from .export import to_openai_record
from .io import atomic_open, atomic_write_text
from .schema import Instance

__all__ = ["ENGINES", "PRESETS", "Preset", "TrainSettings", "trainable", "llamafactory_record", "messages_record",
           "write_train_config", "CHAT_TEMPLATE", "MANIFEST_NAME"]

ENGINES: Final = ("llamafactory", "axolotl", "trl")
CHAT_TEMPLATE: Final = Path(__file__).resolve().parent / "train_templates" / "tool_chat.v1.jinja"
MANIFEST_NAME: Final = "toolqual_train.json"
#: The port every serve command uses, and so the ``--base-url`` of the evaluate command.
SERVE_PORT: Final = 8000


@dataclass(frozen=True)
class Preset:
    """The paper's fine-tuning settings for one dataset."""

    name: str
    base_model: str
    learning_rate: float
    batch_size: int
    epochs: int
    llamafactory_template: str
    about: str


PRESETS: Final = {
    "toolbench": Preset("toolbench", "huggyllama/llama-7b", 5e-5, 2, 2, "default",
                        "the paper's ToolBench setting: LLaMA-7B, LoRA, learning rate 5e-5, batch 2, 2 epochs"),
    "toolalpaca": Preset("toolalpaca", "lmsys/vicuna-7b-v1.3", 2e-5, 2, 3, "vicuna",
                         "the paper's ToolAlpaca setting: Vicuna-7B, LoRA, learning rate 2e-5, batch 2, 3 epochs"),
}


@dataclass(frozen=True)
class TrainSettings:
    """Everything a written config depends on (defaults: the preset's)."""

    engine: str
    run: str
    preset: str = "toolbench"
    base_model: str | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    gradient_accumulation_steps: int = 1
    epochs: int | None = None
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    max_length: int = 2048
    chat_template: str | None = None
    seed: int = 42

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InputError(f"unknown engine {self.engine!r}; use one of {', '.join(ENGINES)}", field="--engine")
        if self.preset not in PRESETS:
            raise InputError(f"unknown preset {self.preset!r}; use one of {', '.join(PRESETS)}", field="--preset")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", self.run):
            raise InputError(f"run name {self.run!r} must be letters, digits, '_', '.' or '-' (it names the dataset, "
                             "the output folder and the served model)", field="--run")
        for name in ("learning_rate", "batch_size", "epochs"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(f"--{name.replace('_', '-')} must be positive, got {value}", field=f"--{name}")

    def value(self, name: str) -> Any:
        own = getattr(self, name)
        return own if own is not None else getattr(PRESETS[self.preset], name)

    @property
    def dataset_name(self) -> str:
        return "toolqual_" + re.sub(r"[^A-Za-z0-9_]", "_", self.run)


# ---------------------------------------------------------------------------------------------- records
def trainable(instances: Iterable[Instance]) -> tuple[list[Instance], list[dict[str, str]]]:
    """Instances a trainer can learn from, and the others as ``[{"id", "reason"}]``."""
    kept, skipped = [], []
    for instance in instances:
        if instance.calls is None:
            skipped.append({"id": instance.id, "reason": "no gold calls known (calls is null): no training target"})
        elif any(call.parse_failed for call in instance.calls):
            skipped.append({"id": instance.id, "reason": "a gold call's arguments could not be parsed (not valid "
                                                         "JSON): a trainer would learn or fail on the broken text"})
        elif not instance.calls and not (instance.final_answer or "").strip():
            skipped.append({"id": instance.id, "reason": "the gold answer is to call nothing and there is no reply "
                                                         "text: the assistant turn would be empty"})
        else:
            kept.append(instance)
    return kept, skipped


def _arguments_value(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except (ValueError, RecursionError):
            return arguments
    return arguments


def llamafactory_record(record: Mapping[str, Any]) -> dict[str, Any] | str:
    """An OpenAI chat record (``to_openai_record``) as a LLaMA-Factory ShareGPT row, or why it cannot be one.

    ``user`` -> ``human``; an assistant turn with ``tool_calls`` -> ``function_call`` whose value is the
    JSON ``{"name", "arguments"}`` (a JSON list of them for parallel calls); the ``tool`` results that
    follow -> one ``observation`` (a JSON list of the results when there are several); other assistant
    turns -> ``gpt``. LLaMA-Factory wants ``human``/``observation`` at odd positions and
    ``gpt``/``function_call`` at even ones, ending on an even one: a trailing observation is dropped.
    """
    turns: list[dict[str, str]] = []
    system = ""
    pending_results: list[str] = []

    def flush_results() -> None:
        if pending_results:
            value = pending_results[0] if len(pending_results) == 1 else json.dumps(pending_results, ensure_ascii=False)
            turns.append({"from": "observation", "value": value})
            pending_results.clear()

    for message in record.get("messages", []):
        role = message.get("role")
        if role == "system":
            system = str(message.get("content") or "")
        elif role == "tool":
            pending_results.append(str(message.get("content") or ""))
        else:
            flush_results()
            if role == "user":
                turns.append({"from": "human", "value": str(message.get("content") or "")})
            elif role == "assistant" and message.get("tool_calls"):
                calls = [{"name": c["function"]["name"], "arguments": _arguments_value(c["function"].get("arguments"))}
                         for c in message["tool_calls"]]
                value = calls[0] if len(calls) == 1 else calls
                turns.append({"from": "function_call", "value": json.dumps(value, ensure_ascii=False)})
            elif role == "assistant":
                turns.append({"from": "gpt", "value": str(message.get("content") or "")})
            else:
                return f"message role {role!r} has no LLaMA-Factory tag"
    flush_results()
    if turns and turns[-1]["from"] == "observation":
        turns.pop()  # nothing learned after it; LLaMA-Factory needs an even number of turns
    for index, turn in enumerate(turns):
        expected = ("human", "observation") if index % 2 == 0 else ("gpt", "function_call")
        if turn["from"] not in expected:
            return (f"turn {index} is {turn['from']!r} where LLaMA-Factory expects {' or '.join(expected)} "
                    "(turns must alternate user/tool result and assistant)")
    if len(turns) < 2 or len(turns) % 2:
        return "no assistant turn to learn"
    row: dict[str, Any] = {"conversations": turns, "tools": json.dumps(
        [tool["function"] for tool in record.get("tools", [])], ensure_ascii=False)}
    if system:
        row["system"] = system
    return row


def messages_record(record: Mapping[str, Any]) -> dict[str, Any] | str:
    """An OpenAI chat record as the ``messages`` + ``tools`` row of axolotl's ``chat_template`` datasets and
    TRL's SFT tool-calling datasets.

    Tool-call arguments stay JSON strings and ``tools`` is one JSON string (both engines decode them):
    across instances the same parameter name has different types, which a dataset's column types
    cannot hold otherwise (axolotl's documentation says to do exactly this).
    """
    messages = []
    for message in record.get("messages", []):
        message = dict(message)
        if message.get("tool_calls"):
            for call in message["tool_calls"]:
                arguments = call["function"].get("arguments")
                if not isinstance(arguments, str):
                    call["function"]["arguments"] = json.dumps(arguments, ensure_ascii=False)
                try:
                    json.loads(call["function"]["arguments"])
                except (ValueError, RecursionError):
                    return f"arguments of {call['function']['name']!r} are not valid JSON"
        messages.append(message)
    if not any(m.get("role") == "assistant" for m in messages):
        return "no assistant turn to learn"
    return {"messages": messages, "tools": json.dumps(list(record.get("tools", [])), ensure_ascii=False)}


# ---------------------------------------------------------------------------------------------- configs
def _chat_template_mode(settings: TrainSettings) -> str:
    return settings.chat_template or ("tool_chat" if settings.engine in ("axolotl", "trl") else
                                      PRESETS[settings.preset].llamafactory_template)


def _llamafactory_files(settings: TrainSettings, data_file: str) -> dict[str, Any]:
    template = _chat_template_mode(settings)
    dataset_info = {settings.dataset_name: {
        "file_name": data_file,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call"},
    }}
    train = {
        "model_name_or_path": settings.value("base_model"),
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_rank": settings.lora_rank,
        "lora_alpha": settings.lora_alpha,
        "lora_dropout": settings.lora_dropout,
        "lora_target": "all",
        "dataset": settings.dataset_name,
        "dataset_dir": "data",
        "template": template,
        "cutoff_len": settings.max_length,
        "overwrite_cache": True,
        "output_dir": f"saves/{settings.run}",
        "logging_steps": 10,
        "save_strategy": "epoch",
        "plot_loss": True,
        "overwrite_output_dir": True,
        "report_to": "none",
        "per_device_train_batch_size": settings.value("batch_size"),
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "learning_rate": settings.value("learning_rate"),
        "num_train_epochs": float(settings.value("epochs")),
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.03,
        "bf16": True,
        "seed": settings.seed,
    }
    serve = {
        "model_name_or_path": settings.value("base_model"),
        "adapter_name_or_path": f"saves/{settings.run}",
        "template": template,
        "finetuning_type": "lora",
        "infer_backend": "vllm",
        "vllm_maxlen": settings.max_length,
    }
    return {"data/dataset_info.json": dataset_info, "train.yaml": train, "serve.yaml": serve}


def _axolotl_config(settings: TrainSettings, data_file: str) -> dict[str, Any]:
    template = _chat_template_mode(settings)
    config: dict[str, Any] = {
        "base_model": settings.value("base_model"),
        "datasets": [{"path": f"data/{data_file}", "ds_type": "json", "type": "chat_template",
                      "field_messages": "messages", "field_tools": "tools", "roles_to_train": ["assistant"]}],
        "dataset_prepared_path": "last_run_prepared",
        "val_set_size": 0.0,
        "output_dir": f"outputs/{settings.run}",
        "sequence_len": settings.max_length,
        "sample_packing": False,
        "adapter": "lora",
        "lora_r": settings.lora_rank,
        "lora_alpha": settings.lora_alpha,
        "lora_dropout": settings.lora_dropout,
        "lora_target_linear": True,
        "micro_batch_size": settings.value("batch_size"),
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "num_epochs": settings.value("epochs"),
        "learning_rate": settings.value("learning_rate"),
        "optimizer": "adamw_torch",
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.03,
        "bf16": "auto",
        "gradient_checkpointing": True,
        "logging_steps": 10,
        "saves_per_epoch": 1,
        "seed": settings.seed,
    }
    if template == "tool_chat":
        config["chat_template"] = "jinja"
        config["chat_template_jinja"] = "./chat_template.jinja"
    else:
        config["chat_template"] = template
    return config


def _trl_config(settings: TrainSettings, data_file: str) -> dict[str, Any]:
    template = _chat_template_mode(settings)
    config: dict[str, Any] = {
        "model_name_or_path": settings.value("base_model"),
        "datasets": [{"path": "json", "data_files": f"data/{data_file}", "split": "train"}],
        "output_dir": f"outputs/{settings.run}",
        "use_peft": True,
        "lora_r": settings.lora_rank,
        "lora_alpha": settings.lora_alpha,
        "lora_dropout": settings.lora_dropout,
        "lora_target_modules": "all-linear",  # a string, as PEFT expects it (a list would name a module)
        "max_length": settings.max_length,
        "assistant_only_loss": template == "tool_chat",
        "per_device_train_batch_size": settings.value("batch_size"),
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "num_train_epochs": float(settings.value("epochs")),
        "learning_rate": settings.value("learning_rate"),
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.03,
        "bf16": True,
        "gradient_checkpointing": True,
        "logging_steps": 10,
        "save_strategy": "epoch",
        "report_to": "none",
        "seed": settings.seed,
    }
    if template == "tool_chat":
        config["chat_template_path"] = "chat_template.jinja"
    elif template != "tokenizer_default":
        config["chat_template_path"] = template  # a tokenizer (Hub id or folder) whose template to use
    return config


def _commands(settings: TrainSettings, folder: Path) -> dict[str, str]:
    run, base = settings.run, settings.value("base_model")
    template = _chat_template_mode(settings)
    url = f"http://localhost:{SERVE_PORT}/v1"
    evaluate = (f"toolqual evaluate TEST.jsonl --model {run} --base-url {url} --run {run} "
                f"--out runs/{run}.csv")
    if settings.engine == "llamafactory":
        return {
            "train": f"cd {folder} && llamafactory-cli train train.yaml",
            "serve": f"cd {folder} && API_PORT={SERVE_PORT} API_MODEL_NAME={run} llamafactory-cli api serve.yaml",
            "evaluate": evaluate,
        }
    chat_template = " --chat-template chat_template.jinja" if template == "tool_chat" else ""
    tool_choice = " --tool-choice none" if template == "tool_chat" else ""
    if settings.engine == "axolotl":
        return {
            "train": f"cd {folder} && axolotl train axolotl.yaml && axolotl merge-lora axolotl.yaml",
            "serve": f"cd {folder} && vllm serve outputs/{run}/merged --served-model-name {run} "
                     f"--port {SERVE_PORT}{chat_template}",
            "evaluate": evaluate + tool_choice,
        }
    return {
        "train": f"cd {folder} && trl sft --config trl_sft.yaml",
        "serve": f"cd {folder} && vllm serve {base} --enable-lora --lora-modules {run}=outputs/{run} "
                 f"--max-lora-rank {max(settings.lora_rank, 16)} --port {SERVE_PORT}{chat_template}",
        "evaluate": evaluate + tool_choice,
    }


def _readme(settings: TrainSettings, commands: Mapping[str, str], manifest: Mapping[str, Any]) -> str:
    preset = PRESETS[settings.preset]
    lines = [
        f"# Fine-tune `{settings.run}` with {settings.engine}",
        "",
        f"Written by `toolqual train-config` {__version__} on {manifest['created_at']}. toolqual does not train;",
        "these files are for the engine named above (checked for format only, not trained here).",
        "",
        f"- data: `{manifest['data_file']}` ({manifest['n_written']} records; {manifest['n_skipped']} instances "
        f"skipped, listed in `{MANIFEST_NAME}`)",
        f"- base model: `{settings.value('base_model')}`; preset `{preset.name}` ({preset.about})",
        f"- LoRA rank {settings.lora_rank}, alpha {settings.lora_alpha}, dropout {settings.lora_dropout}; "
        f"learning rate {settings.value('learning_rate')}, batch {settings.value('batch_size')} x "
        f"{settings.gradient_accumulation_steps}, {settings.value('epochs')} epochs, max length {settings.max_length}",
        "",
        "## Train (needs a GPU)",
        "",
        "```bash", commands["train"], "```",
        "",
        f"## Serve on port {SERVE_PORT} (OpenAI-compatible)",
        "",
        "```bash", commands["serve"], "```",
        "",
        "## Evaluate (one outcome row per test item; notebook 06 compares runs)",
        "",
        "```bash", commands["evaluate"], "```",
        "",
    ]
    return "\n".join(lines)


def _write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def _write_yaml(path: Path, value: Any, header: str) -> None:
    text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)
    atomic_write_text(path, f"# {header}\n" + text)


def write_train_config(instances: Sequence[Instance], folder: str | os.PathLike[str], settings: TrainSettings, *,
                       source_files: Sequence[str | os.PathLike[str]] = ()) -> dict[str, Any]:
    """Write the engine's data, config, commands and a manifest into ``folder``; return the manifest.

    Raises:
        InputError: no instance can be trained on (every one skipped), naming why.
    """
    folder = Path(folder)
    kept, skipped = trainable(instances)
    rows: list[dict[str, Any]] = []
    written_ids: list[str] = []
    convert = llamafactory_record if settings.engine == "llamafactory" else messages_record
    for instance in kept:
        record = to_openai_record(instance)
        row = convert(record) if record is not None else "no training target"
        if isinstance(row, str):
            skipped.append({"id": instance.id, "reason": row})
            continue
        rows.append(row)
        written_ids.append(instance.id)
    if not rows:
        reasons = sorted({s["reason"] for s in skipped})
        raise InputError(f"no instance can be trained on ({len(skipped)} skipped: {'; '.join(reasons)[:300]})",
                         file=", ".join(map(str, source_files)) or None)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    data_file = f"{settings.dataset_name}.jsonl"
    with atomic_open(folder / "data" / data_file) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    header = f"toolqual train-config {__version__}: {settings.engine}, run {settings.run}, preset {settings.preset}"
    files = [f"data/{data_file}"]
    if settings.engine == "llamafactory":
        for name, content in _llamafactory_files(settings, data_file).items():
            if name.endswith(".json"):
                _write_json(folder / name, content)
            else:
                _write_yaml(folder / name, content, header)
            files.append(name)
    else:
        name = "axolotl.yaml" if settings.engine == "axolotl" else "trl_sft.yaml"
        config = (_axolotl_config if settings.engine == "axolotl" else _trl_config)(settings, data_file)
        _write_yaml(folder / name, config, header)
        files.append(name)
        if _chat_template_mode(settings) == "tool_chat":
            shutil.copyfile(CHAT_TEMPLATE, folder / "chat_template.jinja")
            files.append("chat_template.jinja")
    commands = _commands(settings, folder)
    manifest: dict[str, Any] = {
        "toolqual_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "engine": settings.engine,
        "settings": asdict(settings) | {k: settings.value(k) for k in ("base_model", "learning_rate", "batch_size",
                                                                         "epochs")},
        "chat_template": _chat_template_mode(settings),
        "data_file": f"data/{data_file}",
        "files": files + ["README.md", MANIFEST_NAME],
        "n_instances": len(instances),
        "n_written": len(rows),
        "n_skipped": len(skipped),
        "skipped": skipped,
        "ids": written_ids,
        "commands": commands,
        "trained_here": False,
        "source_files": [str(p) for p in source_files],
    }
    atomic_write_text(folder / "README.md", _readme(settings, commands, manifest))
    _write_json(folder / MANIFEST_NAME, manifest)
    return manifest
