#!/usr/bin/env python3
"""Trains the tiny SentencePiece model of perpo's tests and records the ids Python produces.

    .venv/bin/python tools/make_tokenizer_fixture.py   # writes tests/fixtures/tokenizer/

Outputs (committed, a few tens of KB):
  tiny.model     BPE SentencePiece model with LLaMA's settings (byte fallback, split digits,
                 dummy prefix, whitespace kept), trained on a generated grounding/OCR corpus.
  expected.json  ids from transformers' LlamaTokenizer (legacy mode, as LLaVA-1.5 uses it) with
                 `<image>` (id = sp vocab) and `<pad>` (id = sp vocab + 1) added like llava-hf does;
                 chat-template cases (vicuna_v1, plain) with prompt/answer splits; and image-token
                 expansion as transformers' LlavaProcessor does it.

The vicuna_v1 cases come from LLaVA's own code (pip llava-torch==1.2.2.post1, installed with
--no-deps by `tools/setup.sh --fixtures`): the prompt text from `conv_templates["vicuna_v1"]`
(the template the PerPO authors trained with, `--version v1`), the prompt ids from
`llava.mm_utils.tokenizer_image_token`, and the answer mask from LLaVA's training
`preprocess_v1` (run from its source; llava.train cannot be imported beside a current
transformers), so perpo's template is checked against LLaVA-1.5's, not against itself.
"""
import ast
import io
import json
import os
import random
import re
import sys

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

from llava.conversation import conv_templates  # noqa: E402  (LLaVA's own templates)
from llava import mm_utils as llava_mm_utils  # noqa: E402

SYSTEM = conv_templates["vicuna_v1"].system  # LLaVA-1.5's conv_vicuna_v1
OTHER_SYSTEM = conv_templates["llava_v1"].system  # a user's tokenizer.system_prompt, for a case
GROUNDING_Q = ("Please provide the bounding box coordinate of the region this sentence "
               "describes: ")
OCR_Q = "Please read the text in this image."
WORDS = ("man woman dog cat red blue green left right top bottom car tree glass behind burger "
         "person holding umbrella sign street building window white black small large second "
         "from near table chair plate cup bike shirt hat the a of on in with").split()
OCR_WORDS = ("invoice total amount date page chapter section report figure table summary "
             "price quantity name address phone email number account balance due paid").split()
VOCAB_SIZE = 400


def box(rng):
  x1, y1 = rng.random() * 0.6, rng.random() * 0.6
  x2, y2 = x1 + rng.random() * 0.4, y1 + rng.random() * 0.4
  return "[" + ", ".join(f"{v:.2f}".rstrip("0").rstrip(".") if v != 0 else "0.0"
                         for v in (x1, y1, x2, y2)) + "]"


def corpus(rng):
  lines = [SYSTEM] * 20
  for _ in range(1500):
    expr = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
    lines.append(f"{SYSTEM} USER: <image>\n{GROUNDING_Q}{expr} ASSISTANT: {box(rng)}")
  for _ in range(600):
    text = " ".join(rng.choice(OCR_WORDS).capitalize() if rng.random() < 0.3 else
                    rng.choice(OCR_WORDS) for _ in range(rng.randint(3, 9)))
    num = rng.randint(0, 99999)
    lines.append(f"USER: {OCR_Q} ASSISTANT: {text}: {num}\n{rng.choice(OCR_WORDS)} #{num % 97}")
  return "\n".join(lines)


def train_model():
  rng = random.Random(0)
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(corpus(rng).split("\n")), model_writer=model,
      model_type="bpe", vocab_size=VOCAB_SIZE, byte_fallback=True, split_digits=True,
      add_dummy_prefix=True, remove_extra_whitespaces=False, normalization_rule_name="identity",
      allow_whitespace_only_pieces=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2,
      pad_id=-1, max_sentence_length=4096, num_threads=1, minloglevel=2)
  return model.getvalue()


def vicuna_conversation(prompt, answer, has_image, system=SYSTEM):
  """LLaVA's conv_vicuna_v1 prompt (answer None: the open assistant turn, as at inference)."""
  conv = conv_templates["vicuna_v1"].copy()
  conv.system = system
  conv.append_message(conv.roles[0], ("<image>\n" if has_image else "") + prompt)
  conv.append_message(conv.roles[1], answer)
  return conv.get_prompt()


def vicuna_prompt(prompt, has_image, system=SYSTEM):
  return vicuna_conversation(prompt, None, has_image, system)


def llava_preprocess_v1():
  """LLaVA's training preprocess_v1, executed from its source file (see the module docstring)."""
  import llava.constants
  import torch
  import transformers
  from llava import conversation as conversation_lib
  path = os.path.join(os.path.dirname(llava_mm_utils.__file__), "train", "train.py")
  tree = ast.parse(open(path, encoding="utf-8").read())
  node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "preprocess_v1")
  namespace = {"conversation_lib": conversation_lib, "torch": torch, "transformers": transformers,
               "tokenizer_image_token": llava_mm_utils.tokenizer_image_token,
               "IGNORE_INDEX": llava.constants.IGNORE_INDEX, "Dict": dict,
               "IS_TOKENIZER_GREATER_THAN_0_14": True}
  exec(compile(ast.Module(body=[node], type_ignores=[]), path, "exec"), namespace)
  assert conversation_lib.default_conversation.system == SYSTEM
  return namespace["preprocess_v1"]


def plain_prompt(prompt, has_image):
  return ("<image>\n" if has_image else "") + prompt


def main():
  os.makedirs(OUT, exist_ok=True)
  model_bytes = train_model()
  model_path = os.path.join(OUT, "tiny.model")
  with open(model_path, "wb") as f:
    f.write(model_bytes)

  from transformers import AddedToken, CLIPImageProcessor, LlamaTokenizer, LlavaProcessor
  from PIL import Image

  sp = spm.SentencePieceProcessor(model_file=model_path)
  tok = LlamaTokenizer(vocab_file=model_path, legacy=True, add_bos_token=True,
                       add_eos_token=False)
  tok.add_tokens([AddedToken("<image>", special=True, normalized=False)])
  tok.add_special_tokens({"pad_token": "<pad>"})
  image_id = tok.convert_tokens_to_ids("<image>")
  pad_id = tok.pad_token_id
  assert image_id == sp.get_piece_size() and pad_id == image_id + 1, (image_id, pad_id)

  def llava_chunks(text):
    """LLaVA's own tokenizer_image_token: each chunk between <image>s encoded on its own."""
    ids = [sp.bos_id()]
    for i, chunk in enumerate(text.split("<image>")):
      if i > 0:
        ids.append(image_id)
      if chunk:
        ids += sp.encode(chunk)
    return ids

  texts = [
      "Hello world",
      "glass behind burger",
      " leading space",
      "two  spaces and trailing ",
      "line one\nline two\n",
      "[0.61, 0.1, 0.77, 0.54]",
      "Total amount: 12345.67",
      "café naïve 中文 ok",
      "USER: <image>\nWhat is this? ASSISTANT:",
      "<image><image> twice",
      "ends with <image>",
      "answer</s> and <s>bos",
      "",
  ]
  encode_cases = []
  for text in texts:
    ids = tok(text, add_special_tokens=False).input_ids
    plain_sp = "<s>" not in text and "</s>" not in text  # HF also splits out <s> and </s>
    if "<image>" not in text and plain_sp:
      assert ids == sp.encode(text), text
    encode_cases.append({"text": text, "ids": ids,
                         "ids_with_bos": tok(text).input_ids,
                         "pieces": tok.convert_ids_to_tokens(ids)})
    if text and plain_sp:
      assert tok(text).input_ids == llava_chunks(text), text

  prompts = [
      ("vicuna_v1", True, GROUNDING_Q + "man in red shirt", "[0.12, 0.3, 0.45, 0.88]"),
      ("vicuna_v1", True, OCR_Q, "Invoice total: 42\nDue date"),
      ("vicuna_v1", False, "What is 2 + 2?", "4"),
      ("plain", True, GROUNDING_Q + "dog left", "[0.0, 0.5, 0.25, 1.0]"),
      ("plain", False, "Say hi", "hi there"),
  ]
  preprocess_v1 = llava_preprocess_v1()

  def llava_image_token_ids(text):
    ids = llava_mm_utils.tokenizer_image_token(text, tok)
    return [image_id if i == llava_mm_utils.IMAGE_TOKEN_INDEX else i for i in ids]

  chat_cases = []
  for template, has_image, prompt, answer in prompts:
    prompt_text = (vicuna_prompt if template == "vicuna_v1" else plain_prompt)(prompt, has_image)
    prompt_ids = tok(prompt_text).input_ids
    full_ids = tok(prompt_text + " " + answer + "</s>").input_ids
    assert full_ids[:len(prompt_ids)] == prompt_ids, prompt_text
    assert prompt_ids == llava_chunks(prompt_text)
    case = {"template": template, "has_image": has_image, "prompt": prompt, "answer": answer,
            "prompt_text": prompt_text, "prompt_ids": prompt_ids,
            "answer_ids": full_ids[len(prompt_ids):]}
    if template == "vicuna_v1":
      # LLaVA-1.5 itself: the ids it feeds at inference, and the targets it trained on.
      assert llava_image_token_ids(prompt_text) == prompt_ids, prompt_text
      conversation = vicuna_conversation(prompt, answer, has_image)
      assert conversation == prompt_text + " " + answer + "</s>", conversation
      sources = [[{"from": "human", "value": ("<image>\n" if has_image else "") + prompt},
                  {"from": "gpt", "value": answer}]]
      out = preprocess_v1(sources, tok, has_image=has_image)
      train_ids = [image_id if i == llava_mm_utils.IMAGE_TOKEN_INDEX else i
                   for i in out["input_ids"][0].tolist()]
      labels = out["labels"][0].tolist()
      assert train_ids == full_ids, (train_ids, full_ids)
      case["llava_train_ids"] = train_ids
      case["llava_answer_mask"] = [int(label != -100) for label in labels]
      assert case["llava_answer_mask"] == [0] * len(prompt_ids) + [1] * len(case["answer_ids"])
    chat_cases.append(case)
  # A user's own system prompt (tokenizer.system_prompt), here LLaVA's llava_v1 text.
  other_text = vicuna_prompt(GROUNDING_Q + "cat on table", True, OTHER_SYSTEM)
  chat_cases.append({"template": "vicuna_v1", "has_image": True, "system_prompt": OTHER_SYSTEM,
                     "prompt": GROUNDING_Q + "cat on table", "answer": "[0.1, 0.2, 0.3, 0.4]",
                     "prompt_text": other_text, "prompt_ids": llava_image_token_ids(other_text),
                     "answer_ids": tok(other_text + " [0.1, 0.2, 0.3, 0.4]</s>").input_ids[
                         len(llava_image_token_ids(other_text)):]})

  # Image-token expansion as transformers' LlavaProcessor does it: 28x28 pixels, 14-pixel patches
  # -> 2 * 2 = 4 image tokens ("default" strategy drops the CLS token).
  processor = LlavaProcessor(
      image_processor=CLIPImageProcessor(size={"shortest_edge": 28},
                                         crop_size={"height": 28, "width": 28}),
      tokenizer=tok, patch_size=14, vision_feature_select_strategy="default",
      num_additional_image_tokens=1)
  image = Image.new("RGB", (40, 30), (120, 60, 200))
  expansion_cases = []
  for template, has_image, prompt, _ in prompts:
    if not has_image:
      continue
    prompt_text = (vicuna_prompt if template == "vicuna_v1" else plain_prompt)(prompt, True)
    ids = processor(text=prompt_text, images=image, return_tensors="np")["input_ids"][0].tolist()
    assert ids.count(image_id) == 4
    expansion_cases.append({"template": template, "prompt": prompt, "image_tokens": 4,
                            "ids": ids})

  # Non-legacy splitting: LlamaTokenizer(legacy=False), as llava-hf's tokenizer config asks for
  # (no "▁" after <image>, like its fast tokenizer).
  modern = LlamaTokenizer(vocab_file=model_path, legacy=False, add_bos_token=True,
                          add_eos_token=False)
  modern.add_tokens([AddedToken("<image>", special=True, normalized=False)])
  modern.add_special_tokens({"pad_token": "<pad>"})
  nonlegacy_texts = [t for t in texts if t] + ["<image>\nleading image", "<s>starts special"]
  nonlegacy_texts += [c["prompt_text"] for c in chat_cases[:len(prompts)]]
  nonlegacy_cases = []
  for text in nonlegacy_texts:
    ids = modern(text, add_special_tokens=False).input_ids
    nonlegacy_cases.append({"text": text, "ids": ids})
  for case in chat_cases[:len(prompts)]:  # the answer split holds in this mode too
    prompt_ids = modern(case["prompt_text"]).input_ids
    full_ids = modern(case["prompt_text"] + " " + case["answer"] + "</s>").input_ids
    assert full_ids[:len(prompt_ids)] == prompt_ids
    assert full_ids[len(prompt_ids):] == case["answer_ids"], case["answer"]

  decode_cases = [{"ids": case["ids"], "text": sp.decode(case["ids"])}
                  for case in encode_cases if "<" not in case["text"]]
  expected = {
      "generated_by": "tools/make_tokenizer_fixture.py",
      "sp_vocab_size": sp.get_piece_size(),
      "bos_id": sp.bos_id(), "eos_id": sp.eos_id(), "unk_id": sp.unk_id(),
      "image_token_id": image_id, "pad_id": pad_id, "system_prompt": SYSTEM,
      "pieces": {p: sp.piece_to_id(p) for p in ["<unk>", "<s>", "</s>", "<0x0A>", "▁", "▁the"]
                 if sp.piece_to_id(p) != sp.unk_id() or p == "<unk>"},
      "encode": encode_cases, "chat": chat_cases, "expansion": expansion_cases,
      "decode": decode_cases, "nonlegacy_encode": nonlegacy_cases,
  }
  with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
    text = json.dumps(expected, ensure_ascii=False, indent=1)
    # One line per list of ids or pieces keeps the file short and diffable.
    text = re.sub(r"\[\n\s*((?:(?:-?\d+|\"[^\"\n]*\"),\n\s*)*(?:-?\d+|\"[^\"\n]*\"))\n\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",\n")) + "]", text)
    f.write(text + "\n")
  print(f"wrote {model_path} ({len(model_bytes)} bytes) and expected.json", file=sys.stderr)


if __name__ == "__main__":
  main()
