"""toolqual train-config: the written files against each engine's documented field names and formats.

Nothing is trained here (no GPU, no engine installed): these tests check format only. The documented
names below were read from the engines' own documentation and example configs:

- LLaMA-Factory: ``data/README.md`` (dataset_info.json keys, ShareGPT ``conversations`` with
  ``human``/``function_call``/``observation``/``gpt``, odd/even positions, ``tools`` column) and
  ``examples/train_lora/*_lora_sft.yaml`` / ``examples/inference/*.yaml`` (config keys);
- axolotl: ``docs/dataset-formats/conversation.qmd`` (``type: chat_template``, ``field_messages``,
  ``field_tools``, assistant ``tool_calls``, ``tool`` role, arguments as JSON strings) and the config
  reference (top-level keys);
- TRL: ``docs/source/dataset_formats.md`` (tool calling: ``messages`` + ``tools``),
  ``docs/source/clis.md`` (``trl sft --config``) and the ScriptArguments / DatasetMixtureConfig /
  ModelConfig / SFTConfig fields.
"""
from __future__ import annotations

import json

import jinja2
import jinja2.ext
import jinja2.sandbox
import pytest
import yaml

from toolqual_utils.errors import InputError
from toolqual_utils.io import read_instances
from toolqual_utils.schema import Instance
from toolqual_utils.train_config import (CHAT_TEMPLATE, TrainSettings, llamafactory_record, messages_record, trainable,
                                         write_train_config)
from conftest import DATA, run_cli

# --- LLaMA-Factory (data/README.md; examples/train_lora/qwen3_lora_sft.yaml; examples/inference) ---------------
LF_DATASET_KEYS = {"hf_hub_url", "ms_hub_url", "script_url", "cloud_file_name", "file_name", "formatting", "ranking",
                   "subset", "split", "folder", "num_samples", "columns", "tags"}
LF_COLUMNS = {"prompt", "query", "response", "history", "messages", "system", "tools", "images", "videos", "audios",
              "chosen", "rejected", "kto_tag"}
LF_TAGS = {"role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag"}
LF_TRAIN_KEYS = {  # model / method / dataset / output / train sections of the example, and the HF trainer fields used
    "model_name_or_path", "trust_remote_code", "stage", "do_train", "finetuning_type", "lora_rank", "lora_alpha",
    "lora_dropout", "lora_target", "dataset", "dataset_dir", "template", "cutoff_len", "max_samples", "overwrite_cache",
    "preprocessing_num_workers", "dataloader_num_workers", "output_dir", "logging_steps", "save_steps",
    "save_strategy", "plot_loss", "overwrite_output_dir", "save_only_model", "report_to", "per_device_train_batch_size",
    "gradient_accumulation_steps", "learning_rate", "num_train_epochs", "lr_scheduler_type", "warmup_ratio", "bf16",
    "ddp_timeout", "resume_from_checkpoint", "seed", "tool_format",
}
LF_SERVE_KEYS = {"model_name_or_path", "adapter_name_or_path", "template", "infer_backend", "trust_remote_code",
                 "finetuning_type", "vllm_maxlen"}
LF_INFER_BACKENDS = {"huggingface", "vllm", "sglang", "ktransformers"}

# --- axolotl (docs/dataset-formats/conversation.qmd; config reference; examples/llama-2/lora.yml) --------------
AXOLOTL_KEYS = {
    "base_model", "model_type", "tokenizer_type", "load_in_8bit", "load_in_4bit", "datasets", "dataset_prepared_path",
    "val_set_size", "output_dir", "sequence_len", "sample_packing", "adapter", "lora_model_dir", "lora_r", "lora_alpha",
    "lora_dropout", "lora_target_linear", "lora_modules_to_save", "gradient_accumulation_steps", "micro_batch_size",
    "num_epochs", "optimizer", "lr_scheduler", "learning_rate", "bf16", "tf32", "gradient_checkpointing",
    "resume_from_checkpoint", "logging_steps", "warmup_ratio", "evals_per_epoch", "saves_per_epoch", "weight_decay",
    "special_tokens", "chat_template", "chat_template_jinja", "eot_tokens", "seed",
}
AXOLOTL_DATASET_KEYS = {"path", "type", "ds_type", "data_files", "split", "field_messages", "field_tools",
                        "message_property_mappings", "roles_to_train", "train_on_eos", "chat_template",
                        "chat_template_jinja"}
AXOLOTL_CHAT_TEMPLATES = {"alpaca", "chatml", "llama3", "llama4", "qwen_25", "qwen3", "jinja", "tokenizer_default",
                          "mistral_v2v3", "gemma3", "phi_4"}

# --- TRL (clis.md; ScriptArguments, DatasetMixtureConfig, ModelConfig, SFTConfig / TrainingArguments) -----------
TRL_KEYS = {
    "dataset_name", "dataset_config", "dataset_train_split", "dataset_test_split", "datasets", "streaming",
    "test_split_size", "model_name_or_path", "model_revision", "dtype", "attn_implementation", "use_peft", "lora_r",
    "lora_alpha", "lora_dropout", "lora_target_modules", "lora_modules_to_save", "lora_task_type",
    "chat_template_path", "dataset_text_field", "max_length", "packing", "assistant_only_loss", "completion_only_loss",
    "eos_token", "output_dir", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
    "learning_rate", "lr_scheduler_type", "warmup_ratio", "bf16", "gradient_checkpointing", "logging_steps",
    "save_strategy", "report_to", "seed",
}
TRL_DATASET_KEYS = {"path", "name", "data_dir", "data_files", "split", "columns", "fraction"}

TRAIN_FILE = DATA / "toolalpaca_train_format.jsonl"  # multi-step calls with observations and final answers
PARALLEL = [i for i in read_instances(DATA / "bfcl.jsonl") if i.meta["bfcl_category"] == "parallel"][:5]


def _write(engine, tmp_path, instances=None, **overrides):
    instances = instances if instances is not None else read_instances(TRAIN_FILE) + PARALLEL
    settings = TrainSettings(engine=engine, run="hiseq", **overrides)
    return write_train_config(instances, tmp_path / engine, settings), tmp_path / engine


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _yaml(path):
    assert path.read_text().startswith("# toolqual train-config")
    return yaml.safe_load(path.read_text())


def _check_openai_messages(row):
    assert set(row) == {"messages", "tools"} and isinstance(row["tools"], str)
    tools = json.loads(row["tools"])
    assert tools and all(t["type"] == "function" and {"name", "description", "parameters"} <= set(t["function"])
                         for t in tools)
    open_ids = []
    assert row["messages"][0]["role"] == "user"
    for message in row["messages"]:
        assert message["role"] in {"system", "user", "assistant", "tool"}
        if message["role"] == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                assert call["type"] == "function" and isinstance(call["function"]["arguments"], str)
                assert isinstance(json.loads(call["function"]["arguments"]), dict)  # axolotl json.loads them
                open_ids.append(call["id"])
        if message["role"] == "tool":
            assert message["tool_call_id"] in open_ids


def test_llamafactory_files_follow_its_documented_sharegpt_format(tmp_path):
    manifest, folder = _write("llamafactory", tmp_path)
    info = json.loads((folder / "data" / "dataset_info.json").read_text())
    [(name, entry)] = info.items()
    assert name == "toolqual_hiseq" and set(entry) <= LF_DATASET_KEYS and entry["formatting"] == "sharegpt"
    assert set(entry["columns"]) <= LF_COLUMNS and set(entry["tags"]) <= LF_TAGS
    assert (folder / "data" / entry["file_name"]).is_file()
    rows = _rows(folder / "data" / entry["file_name"])
    assert len(rows) == manifest["n_written"] == len(manifest["ids"]) > 150
    tags = entry["tags"]
    odd, even = (tags["user_tag"], tags["observation_tag"]), (tags["assistant_tag"], tags["function_tag"])
    n_calls = n_parallel = n_observations = 0
    for row in rows:
        turns = row[entry["columns"]["messages"]]
        assert len(turns) % 2 == 0 and len(turns) >= 2  # LLaMA-Factory drops odd-length conversations
        for index, turn in enumerate(turns):
            assert set(turn) == {tags["role_tag"], tags["content_tag"]}
            assert turn["from"] in (odd if index % 2 == 0 else even), (index, turn)
            if turn["from"] == "function_call":
                value = json.loads(turn["value"])
                calls = value if isinstance(value, list) else [value]
                assert all(set(c) == {"name", "arguments"} and isinstance(c["arguments"], dict) for c in calls)
                n_calls += len(calls)
                n_parallel += isinstance(value, list)
            n_observations += turn["from"] == "observation"
        tools = json.loads(row[entry["columns"]["tools"]])
        assert all({"name", "description", "parameters"} <= set(t) for t in tools)
    assert n_calls > 150 and n_parallel == 5 and n_observations > 100
    train = _yaml(folder / "train.yaml")
    assert set(train) <= LF_TRAIN_KEYS
    assert (train["stage"], train["finetuning_type"], train["dataset"], train["dataset_dir"]) == (
        "sft", "lora", "toolqual_hiseq", "data")
    assert (train["learning_rate"], train["per_device_train_batch_size"], train["num_train_epochs"]) == (5e-5, 2, 2.0)
    assert train["model_name_or_path"] == "huggyllama/llama-7b" and train["template"] == "default"
    serve = _yaml(folder / "serve.yaml")
    assert set(serve) <= LF_SERVE_KEYS and serve["infer_backend"] in LF_INFER_BACKENDS
    assert serve["adapter_name_or_path"] == train["output_dir"] and serve["template"] == train["template"]
    assert manifest["commands"]["train"].endswith("llamafactory-cli train train.yaml")
    assert "llamafactory-cli api serve.yaml" in manifest["commands"]["serve"]
    assert "--base-url http://localhost:8000/v1" in manifest["commands"]["evaluate"]


def test_llamafactory_parity_rule_on_records():
    sequential_without_answer = {"messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "a", "type": "function",
                                                              "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "r1"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{\"x\": 1}"}},
            {"id": "c", "type": "function", "function": {"name": "g", "arguments": "{\"x\": 2}"}}]},
        {"role": "tool", "tool_call_id": "b", "content": "r2"}, {"role": "tool", "tool_call_id": "c", "content": "r3"},
    ], "tools": []}
    row = llamafactory_record(sequential_without_answer)
    assert [t["from"] for t in row["conversations"]] == ["human", "function_call", "observation", "function_call"]
    assert json.loads(row["conversations"][3]["value"]) == [{"name": "g", "arguments": {"x": 1}},
                                                            {"name": "g", "arguments": {"x": 2}}]
    broken = {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                           {"role": "assistant", "content": "c"}]}
    assert "alternate" in llamafactory_record(broken)


@pytest.mark.parametrize("engine", ["axolotl", "trl"])
def test_messages_engines_write_documented_configs_and_data(tmp_path, engine):
    manifest, folder = _write(engine, tmp_path, preset="toolalpaca")
    rows = _rows(folder / manifest["data_file"])
    assert len(rows) == manifest["n_written"] > 150
    for row in rows:
        _check_openai_messages(row)
    if engine == "axolotl":
        config = _yaml(folder / "axolotl.yaml")
        assert set(config) <= AXOLOTL_KEYS
        [dataset] = config["datasets"]
        assert set(dataset) <= AXOLOTL_DATASET_KEYS and dataset["type"] == "chat_template"
        assert (folder / dataset["path"]).is_file() and dataset["field_messages"] == "messages"
        assert dataset["field_tools"] == "tools" and config["chat_template"] in AXOLOTL_CHAT_TEMPLATES
        assert config["chat_template"] == "jinja" and (folder / config["chat_template_jinja"]).is_file()
        assert (config["adapter"], config["learning_rate"], config["micro_batch_size"], config["num_epochs"]) == (
            "lora", 2e-5, 2, 3)
        assert config["base_model"] == "lmsys/vicuna-7b-v1.3"
        assert "axolotl merge-lora axolotl.yaml" in manifest["commands"]["train"]
        assert "vllm serve outputs/hiseq/merged" in manifest["commands"]["serve"]
    else:
        config = _yaml(folder / "trl_sft.yaml")
        assert set(config) <= TRL_KEYS
        [dataset] = config["datasets"]
        assert set(dataset) <= TRL_DATASET_KEYS and dataset["path"] == "json"
        assert (folder / dataset["data_files"]).is_file()
        assert config["use_peft"] is True and config["lora_target_modules"] == "all-linear"
        assert (config["learning_rate"], config["per_device_train_batch_size"], config["num_train_epochs"]) == (
            2e-5, 2, 3.0)
        assert (folder / config["chat_template_path"]).is_file() and config["assistant_only_loss"] is True
        assert manifest["commands"]["train"].endswith("trl sft --config trl_sft.yaml")
        assert "--enable-lora --lora-modules hiseq=outputs/hiseq" in manifest["commands"]["serve"]
    assert "--chat-template chat_template.jinja" in manifest["commands"]["serve"]
    assert "--tool-choice none" in manifest["commands"]["evaluate"]
    assert "not trained here" in (folder / "README.md").read_text()


class _Generation(jinja2.ext.Extension):
    """Transformers' ``{% generation %}`` tag (it marks the tokens trained on); rendered as its body here."""

    tags = {"generation"}

    def parse(self, parser):
        next(parser.stream)
        return parser.parse_statements(["name:endgeneration"], drop_needle=True)


def _render(messages, tools, add_generation_prompt=False):
    # the environment transformers renders chat templates with (sandboxed, trim/lstrip blocks, loop controls)
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=[_Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = lambda value, **_: json.dumps(value, ensure_ascii=False)
    template = env.from_string(CHAT_TEMPLATE.read_text(encoding="utf-8"))
    return template.render(messages=messages, tools=tools, bos_token="<s>", eos_token="</s>",
                           add_generation_prompt=add_generation_prompt)


def test_the_chat_template_renders_training_rows_and_the_serving_prompt(tmp_path):
    manifest, folder = _write("trl", tmp_path)
    rows = _rows(folder / manifest["data_file"])
    with_results = next(r for r in rows if any(m["role"] == "tool" for m in r["messages"]))
    text = _render(with_results["messages"], json.loads(with_results["tools"]))
    first_call = next(m for m in with_results["messages"] if m.get("tool_calls"))["tool_calls"][0]["function"]
    arguments = json.loads(first_call["arguments"])
    assert text.startswith("<s>System: You can call the functions below.")
    assert f'<tool_call>{{"name": "{first_call["name"]}", "arguments": {json.dumps(arguments, ensure_ascii=False)}}}</tool_call>' in text
    assert "Tool: <tool_response>" in text and text.count("</s>") == sum(
        m["role"] == "assistant" for m in with_results["messages"])
    parallel = next(r for r in rows if len(next(m for m in r["messages"] if m["role"] == "assistant").get("tool_calls") or []) > 1)
    rendered = _render(parallel["messages"], json.loads(parallel["tools"]))
    assert rendered.count("<tool_call>{") == len(next(m for m in parallel["messages"] if m["role"] == "assistant")["tool_calls"])
    prompt = _render(with_results["messages"][:1], json.loads(with_results["tools"]), add_generation_prompt=True)
    assert prompt.endswith(f"User: {with_results['messages'][0]['content']}\n\nAssistant:\n")
    from toolqual_utils.evaluate.answers import parse_text_calls
    answer = text.split("Assistant:\n", 1)[1].split("</s>")[0]  # what a model trained on it would answer
    assert parse_text_calls(answer).calls[0] == {"name": first_call["name"], "arguments": arguments}


def test_untrainable_instances_are_skipped_and_listed(tmp_path):
    base = {"source": "t", "instruction": "q", "tools": [{"name": "f"}]}
    instances = [Instance.model_validate({**base, "id": "t/none", "calls": None}),
                 Instance.model_validate({**base, "id": "t/raw", "calls": [{"name": "f", "arguments": None,
                                                                            "raw_arguments": "{x"}]}),
                 Instance.model_validate({**base, "id": "t/empty", "calls": []}),
                 Instance.model_validate({**base, "id": "t/ok", "calls": [{"name": "f", "arguments": {"a": 1}}]})]
    kept, skipped = trainable(instances)
    assert [i.id for i in kept] == ["t/ok"] and [s["id"] for s in skipped] == ["t/none", "t/raw", "t/empty"]
    manifest, _ = _write("axolotl", tmp_path, instances)
    assert manifest["ids"] == ["t/ok"] and manifest["n_skipped"] == 3 and manifest["trained_here"] is False
    with pytest.raises(InputError, match="no instance can be trained on"):
        _write("trl", tmp_path, instances[:3])
    assert messages_record({"messages": [{"role": "user", "content": "q"}], "tools": []}) == "no assistant turn to learn"


def test_cli_writes_the_folder_and_prints_the_commands(tmp_path):
    subset = tmp_path / "hiseq.jsonl"
    subset.write_text("".join(TRAIN_FILE.read_text().splitlines(keepends=True)[:20]))
    done = run_cli(["train-config", "--engine", "llamafactory", subset, "--out", tmp_path / "lf", "--preset",
                    "toolalpaca", "--learning-rate", "1e-4", "--base-model", "my/base"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "nothing was trained" in done.stdout and "llamafactory-cli train train.yaml" in done.stdout
    train = yaml.safe_load((tmp_path / "lf" / "train.yaml").read_text())
    assert (train["learning_rate"], train["num_train_epochs"], train["model_name_or_path"], train["template"]) == (
        1e-4, 3.0, "my/base", "vicuna")
    manifest = json.loads((tmp_path / "lf" / "toolqual_train.json").read_text())
    assert manifest["settings"]["run"] == "hiseq" and manifest["n_instances"] == 20
    bad = run_cli(["train-config", "--engine", "trl", subset, "--out", tmp_path / "x", "--run", "a b"], tmp_path)
    assert bad.returncode != 0 and "run name 'a b'" in bad.stderr and "Traceback" not in bad.stderr
