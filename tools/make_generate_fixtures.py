#!/usr/bin/env python3
"""Greedy answers of transformers' generate() on the tiny parity models, for perpo's decoder.

    .venv/bin/python tools/make_generate_fixtures.py   # writes tests/fixtures/generate/*.safetensors

For each model folder of tests/fixtures/model/ (made by tools/make_model_fixtures.py), three
prompts of different lengths (text, the image tokens, text) with one image each are decoded by
LlavaForConditionalGeneration.generate(do_sample=False) (eager attention, fp32):
  - each prompt alone, and the three together left-padded with an attention mask: the script
    asserts both give the same tokens (so the batch fixture is the plain greedy answer);
  - without a stop token (MAX_NEW tokens each), and with `eos_token_id` set to a token that ends
    one answer early while the others continue (chosen from the first run).
Each <model>.safetensors holds (about 40 KB):
  prompt_0, prompt_1, prompt_2   int64 (P_r)            prompt ids, image tokens expanded
  pixel_values                   float32 (3, 3, 32, 32) one image per prompt
  greedy                         int64 (3, MAX_NEW)      answers without a stop token
  eos_id                         int64 (1)               the stop token of the second run
  greedy_eos                     int64 (3, MAX_NEW)      answers with it, the stop token included,
                                                         then -1 padding
"""
import os

import torch
from safetensors.torch import save_file
from transformers import LlavaForConditionalGeneration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "tests", "fixtures", "model")
OUT = os.path.join(ROOT, "tests", "fixtures", "generate")
MAX_NEW = 12
TEXT_LENGTHS = ((2, 3), (6, 5), (4, 1))  # tokens before / after the image tokens


def make_prompts(config, generator):
    image_token = config.image_token_index
    image_tokens = config.image_seq_length
    prompts = []
    for before, after in TEXT_LENGTHS:
        text_a = torch.randint(3, image_token, (before,), generator=generator)
        text_b = torch.randint(3, image_token, (after,), generator=generator)
        bos = torch.tensor([1])
        prompts.append(torch.cat([bos, text_a, torch.full((image_tokens,), image_token), text_b]))
    pixel_values = torch.randn((len(prompts), 3, 32, 32), generator=generator)
    return [p.to(torch.int64) for p in prompts], pixel_values


def greedy(model, prompts, pixel_values, eos_id):
    """Answers of generate(do_sample=False): alone and in one left-padded batch; must agree."""
    kwargs = dict(do_sample=False, max_new_tokens=MAX_NEW, min_new_tokens=0, pad_token_id=0,
                  eos_token_id=eos_id, num_beams=1, temperature=None, top_p=None, top_k=None)
    alone = []
    for i, prompt in enumerate(prompts):
        out = model.generate(input_ids=prompt.unsqueeze(0), pixel_values=pixel_values[i:i + 1],
                             attention_mask=torch.ones(1, len(prompt), dtype=torch.int64),
                             **kwargs)
        alone.append(out[0, len(prompt):].tolist())
    longest = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), longest, dtype=torch.int64)
    mask = torch.zeros(len(prompts), longest, dtype=torch.int64)
    for i, prompt in enumerate(prompts):  # left padding, as transformers wants for generation
        ids[i, longest - len(prompt):] = prompt
        mask[i, longest - len(prompt):] = 1
    out = model.generate(input_ids=ids, pixel_values=pixel_values, attention_mask=mask, **kwargs)
    batched = [row[longest:].tolist() for row in out]
    answers = []
    for single, row in zip(alone, batched):
        if eos_id is not None and eos_id in single:
            single = single[:single.index(eos_id) + 1]
            row = row[:len(single)]
        assert single == row[:len(single)], f"batched {row} != alone {single}"
        answers.append(single)
    return answers


def padded(answers):
    table = torch.full((len(answers), MAX_NEW), -1, dtype=torch.int64)
    for i, answer in enumerate(answers):
        table[i, :len(answer)] = torch.tensor(answer)
    return table


def pick_eos(answers):
    """A token that first appears mid-answer in one row and nowhere in the rows' earlier parts
    of the others, so that row stops early and the others run on (or stop elsewhere)."""
    for row, answer in enumerate(answers):
        for pos in range(2, MAX_NEW - 2):
            token = answer[pos]
            if token in answer[:pos]:
                continue
            others_first = [a.index(token) if token in a else MAX_NEW for j, a in
                            enumerate(answers) if j != row]
            if all(p > pos + 2 for p in others_first):
                return token
    raise RuntimeError("no suitable stop token in " + str(answers))


def build(name, seed):
    model = LlavaForConditionalGeneration.from_pretrained(
        os.path.join(MODELS, name), attn_implementation="eager", torch_dtype=torch.float32).eval()
    generator = torch.Generator().manual_seed(seed)
    prompts, pixel_values = make_prompts(model.config, generator)
    with torch.no_grad():
        plain = greedy(model, prompts, pixel_values, eos_id=None)
        eos_id = pick_eos(plain)
        with_eos = greedy(model, prompts, pixel_values, eos_id=eos_id)
    assert any(len(a) < MAX_NEW for a in with_eos)
    tensors = {f"prompt_{i}": p.contiguous() for i, p in enumerate(prompts)}
    tensors.update(pixel_values=pixel_values.contiguous(), greedy=padded(plain),
                   eos_id=torch.tensor([eos_id], dtype=torch.int64), greedy_eos=padded(with_eos))
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, name + ".safetensors"))
    print(f"{name}: prompts {[len(p) for p in prompts]}, eos {eos_id}")
    for a, b in zip(plain, with_eos):
        print("   ", a, "|", b)


def main():
    build("tiny_old_untied_gqa", seed=11)
    build("tiny_new_tied", seed=13)


if __name__ == "__main__":
    main()
