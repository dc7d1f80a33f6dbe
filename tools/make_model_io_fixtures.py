#!/usr/bin/env python3
"""Regenerates tests/fixtures/model_io/: small files written by the reference implementations
(Python safetensors, transformers' LlavaConfig) that perpo's checkpoint I/O must read the same way.

    .venv/bin/python tools/make_model_io_fixtures.py

- dtypes.safetensors: one tensor per dtype with values the C++ test recomputes by hand.
- sharded/: a two-shard checkpoint with model.safetensors.index.json, as save_pretrained writes.
- config_*.json: LLaVA config.json files; expected_*.json: the values transformers resolves from
  each (defaults filled in), flattened to perpo's ModelConfig field names.
"""
import json
import pathlib

import torch
from safetensors.torch import save_file
from transformers import LlavaConfig, LlavaForConditionalGeneration

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "model_io"


def write_dtypes():
    tensors = {
        "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5,  # [[0, .5, 1], [1.5, 2, 2.5]]
        "f16": (torch.arange(4, dtype=torch.float32) * 0.25 - 0.5).half(),  # [-.5, -.25, 0, .25]
        "bf16": (torch.arange(3, dtype=torch.float32).reshape(3, 1) * 2 - 1).bfloat16(),  # [[-1], [1], [3]]
        "i64": torch.tensor([-3, 0, 5, 1 << 40], dtype=torch.int64),
        "i32": torch.tensor([[1, 2], [3, 4]], dtype=torch.int32),
        "scalar": torch.tensor(7.0),
    }
    save_file(tensors, OUT / "dtypes.safetensors", metadata={"format": "pt", "written_by": "safetensors-python"})


def write_sharded():
    folder = OUT / "sharded"
    folder.mkdir(exist_ok=True)
    shards = {
        "model-00001-of-00002.safetensors": {"a": torch.ones(2, 2), "b": torch.full((3,), 2.0)},
        "model-00002-of-00002.safetensors": {"c": torch.arange(4, dtype=torch.float32).bfloat16()},
    }
    weight_map, total = {}, 0
    for name, tensors in shards.items():
        save_file(tensors, folder / name, metadata={"format": "pt"})
        for key, value in tensors.items():
            weight_map[key] = name
            total += value.numel() * value.element_size()
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def resolved(raw):
    """The fields transformers derives from a config.json, named as perpo's ModelConfig."""
    config = LlavaConfig.from_dict(json.loads(json.dumps(raw)))
    v, t = config.vision_config, config.get_text_config(decoder=True)
    scaling = t.rope_scaling or {}
    return {
        "vision.hidden_size": v.hidden_size,
        "vision.intermediate_size": v.intermediate_size,
        "vision.num_hidden_layers": v.num_hidden_layers,
        "vision.num_attention_heads": v.num_attention_heads,
        "vision.image_size": v.image_size,
        "vision.patch_size": v.patch_size,
        "vision.layer_norm_eps": v.layer_norm_eps,
        "vision.hidden_act": v.hidden_act,
        "text.vocab_size": t.vocab_size,
        "text.hidden_size": t.hidden_size,
        "text.intermediate_size": t.intermediate_size,
        "text.num_hidden_layers": t.num_hidden_layers,
        "text.num_attention_heads": t.num_attention_heads,
        "text.num_key_value_heads": t.num_key_value_heads,
        "text.head_dim": t.head_dim,
        "text.rms_norm_eps": t.rms_norm_eps,
        "text.rope_theta": t.rope_theta,
        "text.rope_scaling_type": scaling.get("rope_type", scaling.get("type", "")),
        "text.rope_scaling_factor": scaling.get("factor", 1.0),
        "text.max_position_embeddings": t.max_position_embeddings,
        "projector_hidden_act": config.projector_hidden_act,
        "vision_feature_layer": config.vision_feature_layer,
        "vision_feature_select_strategy": config.vision_feature_select_strategy,
        "image_token_index": config.image_token_index,
        "tie_word_embeddings": t.tie_word_embeddings,
        "multimodal_projector_bias": config.multimodal_projector_bias,
        "parameters": parameter_count(config),
    }


def parameter_count(config):
    """Elements of all parameters of LlavaForConditionalGeneration(config), built on the meta
    device (no memory); a tied lm_head counts once."""
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    return sum(p.numel() for p in model.parameters())


CONFIGS = {
    # In the style of llava-hf/llava-1.5-7b-hf: text_config relies on LlamaConfig defaults.
    "llava15": {
        "architectures": ["LlavaForConditionalGeneration"],
        "ignore_index": -100,
        "image_token_index": 32000,
        "model_type": "llava",
        "pad_token_id": 32001,
        "projector_hidden_act": "gelu",
        "text_config": {
            "architectures": ["LlamaForCausalLM"],
            "max_position_embeddings": 4096,
            "model_type": "llama",
            "rms_norm_eps": 1e-05,
            "torch_dtype": "float16",
            "vocab_size": 32064,
        },
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "vision_config": {
            "hidden_size": 1024,
            "image_size": 336,
            "intermediate_size": 4096,
            "model_type": "clip_vision_model",
            "num_attention_heads": 16,
            "num_hidden_layers": 24,
            "patch_size": 14,
            "projection_dim": 768,
            "vocab_size": 32000,
        },
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "vocab_size": 32064,
    },
    # Nothing but the architecture: every value is a default (LlavaConfig's CLIP, LlamaConfig).
    "minimal": {"model_type": "llava"},
    # A tiny GQA model with the newer image_token_id key, tied embeddings, linear rope scaling and a
    # vision_config that leaves most fields to CLIPVisionConfig's defaults.
    "tiny_gqa": {
        "model_type": "llava",
        "image_token_id": 99,
        "vision_feature_layer": -1,
        "vision_feature_select_strategy": "full",
        "projector_hidden_act": "gelu",
        "text_config": {
            "model_type": "llama",
            "vocab_size": 128,
            "hidden_size": 64,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "rope_theta": 500000.0,
            "rope_scaling": {"rope_type": "linear", "factor": 2.0},
            "tie_word_embeddings": True,
        },
        "vision_config": {"model_type": "clip_vision_model", "hidden_size": 32, "num_hidden_layers": 2,
                          "num_attention_heads": 2, "intermediate_size": 64, "image_size": 32,
                          "patch_size": 8, "hidden_act": "gelu"},
    },
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    write_dtypes()
    write_sharded()
    for name, raw in CONFIGS.items():
        (OUT / f"config_{name}.json").write_text(json.dumps(raw, indent=2) + "\n")
        (OUT / f"expected_{name}.json").write_text(json.dumps(resolved(raw), indent=2) + "\n")
    print("wrote", sorted(p.name for p in OUT.rglob("*") if p.is_file()))


if __name__ == "__main__":
    main()
