#!/usr/bin/env python3
"""Builds a tiny random LLaVA checkpoint saved by transformers 5 itself and records its logits.

    python3 -m venv /tmp/tf5 && /tmp/tf5/bin/pip install torch 'transformers>=5' safetensors
    /tmp/tf5/bin/python tools/make_model_fixtures_tf5.py   # writes tests/fixtures/model/tiny_tf5_rope/

Needs transformers >= 5 (tools/make_model_fixtures.py, which writes the other fixtures and whose
helpers this script uses, needs transformers 4.x). The folder holds the same four files as the
other fixtures (see tools/make_model_fixtures.py), except that config.json and model.safetensors
are the files model.save_pretrained() writes, untouched:
  config.json         transformers 5's format: text_config.rope_parameters (rope_type, factor,
                      rope_theta) in place of rope_theta / rope_scaling, "dtype", and only the
                      non-default keys of the PreTrainedConfig base
  model.safetensors   the tensor names transformers 5 writes (it maps its module names back on
                      save): language_model.model.*, language_model.lm_head.weight,
                      multi_modal_projector.*, and vision_tower.* without the vision_model. level
                      that transformers 4 wrote (transformers 5's CLIPVisionModel has none)
  inputs.safetensors, padded.safetensors: as in the other fixtures (same generators); the grad.*
                      names are perpo's canonical names (grad.vision_tower.vision_model.*).
save_pretrained also writes generation_config.json, which is not kept (no other fixture has it).
The logits are those of the model reloaded from the saved folder (checked equal to the model's).

Fixture:
  tiny_tf5_rope   untied lm_head, 4 query heads on 2 key/value heads, quick_gelu CLIP,
                  vision_feature_layer -2, "default" strategy (CLS dropped), rope_theta 500000,
                  linear rope scaling (factor 2) given as rope_parameters
"""
import os
import shutil
import sys
import tempfile

import torch
import transformers
from safetensors.torch import save_file
from transformers import (CLIPVisionConfig, LlamaConfig, LlavaConfig,
                          LlavaForConditionalGeneration)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_fixtures import (IMAGE_TOKEN, OUT, VOCAB, answer_gradients,  # noqa: E402
                                 make_inputs, padded_batches, randomize)

NAME = "tiny_tf5_rope"
KEPT = ("config.json", "model.safetensors")  # what the other fixture folders hold of a save


def make_config():
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                              num_attention_heads=2, image_size=32, patch_size=8,
                              projection_dim=16, hidden_act="quick_gelu")
    text = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       rms_norm_eps=1e-6,
                       rope_parameters={"rope_type": "linear", "factor": 2.0,
                                        "rope_theta": 500000.0},
                       tie_word_embeddings=False, pad_token_id=0)
    image_tokens = (32 // 8) ** 2  # "default" strategy: the CLS token is dropped
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=IMAGE_TOKEN,
                         vision_feature_layer=-2, vision_feature_select_strategy="default",
                         tie_word_embeddings=False, image_seq_length=image_tokens)
    return config, image_tokens


def main():
    if int(transformers.__version__.split(".")[0]) < 5:
        print(f"{NAME}: skipped, needs transformers >= 5 (have {transformers.__version__})")
        return
    generator = torch.Generator().manual_seed(3)
    config, image_tokens = make_config()
    model = LlavaForConditionalGeneration(config).eval()
    randomize(model, generator)
    input_ids, pixel_values = make_inputs(image_tokens, generator)

    folder = os.path.join(OUT, NAME)
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as saved:
        model.save_pretrained(saved)
        others = sorted(set(os.listdir(saved)) - set(KEPT))
        for name in KEPT:
            shutil.copyfile(os.path.join(saved, name), os.path.join(folder, name))
        reloaded = LlavaForConditionalGeneration.from_pretrained(
            saved, attn_implementation="eager").eval()
    model.set_attn_implementation("eager")
    with torch.no_grad():
        logits = reloaded(input_ids=input_ids, pixel_values=pixel_values).logits.float()
        direct = model(input_ids=input_ids, pixel_values=pixel_values).logits.float()
    assert torch.equal(logits, direct), "the saved checkpoint does not reload to the same model"
    save_file({"input_ids": input_ids, "pixel_values": pixel_values, "logits": logits},
              os.path.join(folder, "inputs.safetensors"))
    pad_id = config.text_config.pad_token_id
    padded = padded_batches(reloaded, input_ids, pixel_values, pad_id)
    padded.update(answer_gradients(reloaded, input_ids, pixel_values, pad_id, False, generator))
    save_file({k: v.contiguous() for k, v in padded.items()},
              os.path.join(folder, "padded.safetensors"))
    print(f"{NAME}: transformers {transformers.__version__}, logits {tuple(logits.shape)}, "
          f"logit std {logits.std().item():.3f}; not kept from save_pretrained: {others}")


if __name__ == "__main__":
    main()
