#!/usr/bin/env python3
"""Trains a tiny Qwen2-style byte-level BPE tokenizer and records the ids transformers produces.

    .venv/bin/python tools/make_qwen2_tokenizer_fixture.py   # writes tests/fixtures/tokenizer/qwen2/

Needs `tools/setup.sh --fixtures` (transformers, tokenizers, pillow). Outputs (committed, small):
  tokenizer.json         a BPE of ~800 tokens trained with the `tokenizers` library on a generated
                         corpus (English, grounding JSON, digits, mixed scripts, emoji, whitespace),
                         with Qwen2's own normalizer (NFC), pre-tokenizer (Split on Qwen2's regex,
                         then ByteLevel without regex), post-processor and decoder, and
                         Qwen2.5-VL's 22 added tokens (<|endoftext|>, <|im_start|>, ...) right
                         after the vocabulary, with the flags Qwen2.5-VL's file gives them.
  tokenizer_config.json  Qwen2.5-VL's: added_tokens_decoder, eos <|im_end|>, pad <|endoftext|>,
                         no BOS, its chat template.
  vocab_merges/          the same model as vocab.json + merges.txt + tokenizer_config.json (the
                         slow Qwen2Tokenizer's files), for the loader's second path.
  expected.json          ids from transformers' Qwen2TokenizerFast for a corpus of test strings;
                         decodes (with and without special tokens) of those ids and of id lists
                         holding invalid UTF-8; ChatML prompts built by Qwen2.5-VL's
                         apply_chat_template and expanded by Qwen2_5_VLProcessor for real images;
                         and a variant with extra added tokens that use lstrip / rstrip /
                         single_word / normalized, encoded by the `tokenizers` library.
The script also checks that the slow Qwen2Tokenizer (vocab.json + merges.txt) gives the same ids.
"""
import json
import os
import random
import shutil
import sys
import tempfile
import unicodedata

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "qwen2")
VOCAB_SIZE = 800

# Qwen2's pre-tokenizer regex, as Qwen/Qwen2.5-VL-7B-Instruct's tokenizer.json has it.
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Qwen2.5-VL's added tokens in id order (151643 ...), with their `special` flag; every one has
# lstrip / rstrip / single_word / normalized false.
QWEN25VL_ADDED = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False),
    ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False),
    ("<|file_sep|>", False),
]

# Qwen2.5-VL's chat_template (chat_template.json of Qwen/Qwen2.5-VL-7B-Instruct).
QWEN25VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

GROUNDING_Q = ("Locate the {} in the image and output its bbox coordinates in JSON format.")
OCR_Q = "Read the text in this image."
WORDS = ("man woman dog cat red blue green left right top bottom car tree glass behind burger "
         "person holding umbrella sign street building window white black small large second "
         "from near table chair plate cup bike shirt hat the a of on in with is it").split()
SCRIPTS = ["我喜欢猫和狗。", "这是一个测试句子，包含中文标点！", "图片中的红色汽车在左边",
           "Привет, мир! Это тест.", "Съешь же ещё этих мягких французских булок",
           "مرحبا بالعالم، هذا اختبار", "שלום עולם", "नमस्ते दुनिया", "こんにちは世界、テストです",
           "안녕하세요 세계", "Ελληνικά γράμματα", "สวัสดีชาวโลก"]
ACCENTED = ["café", "résumé", "naïve", "Ångström", "Zürich", "São Paulo", "façade", "jalapeño"]
EMOJI = ["😀", "👍🏽", "❤️", "🇫🇷", "👨‍👩‍👧‍👦", "🚗", "🐶", "✅", "🔥"]


def bbox_json(rng):
  x1, y1 = rng.randint(0, 600), rng.randint(0, 600)
  box = [x1, y1, x1 + rng.randint(1, 400), y1 + rng.randint(1, 400)]
  return json.dumps([{"bbox_2d": box, "label": rng.choice(WORDS)}])


def corpus(rng):
  lines = []
  for _ in range(1500):
    kind = rng.randrange(8)
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))
    if kind == 0:
      lines.append(GROUNDING_Q.format(words))
    elif kind == 1:
      lines.append(bbox_json(rng))
    elif kind == 2:
      lines.append(rng.choice(SCRIPTS) + " " + rng.choice(SCRIPTS))
    elif kind == 3:
      word = rng.choice(ACCENTED)
      form = rng.choice(["NFC", "NFD"])
      lines.append(f"{words} {unicodedata.normalize(form, word)} {rng.choice(EMOJI)}")
    elif kind == 4:
      lines.append(f"{rng.randint(0, 99999)}\t{rng.random():.4f}  {words}\n\n")
    elif kind == 5:
      lines.append(" " * rng.randint(1, 8) + words + "\t" * rng.randint(1, 3) + words)
    elif kind == 6:
      lines.append(f"{words.capitalize()}. It's {rng.choice(WORDS)}'s, isn't it? They'll see.")
    else:
      lines.append(f"def f_{rng.randint(0, 9)}(x):\n    return x * {rng.randint(0, 99)}  # {words}")
  return lines


# Encode cases: mixed scripts, emoji, numbers, whitespace runs, typed special tokens.
ENCODE_CASES = [
    "Hello world",
    "",
    " ",
    "a",
    "Locate the red car in the image and output its bbox coordinates in JSON format.",
    '{"bbox_2d": [12, 345, 67, 890], "label": "dog"}',
    '[{"bbox_2d": [0, 0, 1023, 767]}, {"bbox_2d": [5, 6, 7, 8]}]',
    "1234567890 3.14159 -42 +7e10 0x1F",
    "Numbers: １２３ (fullwidth), ½ ¾, Ⅻ, ٣٤٥ (Arabic-Indic), ²³",
    "我喜欢猫和狗。这是一个测试",
    "图片中有3辆车和12个人。",
    "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "مرحبا بالعالم، هذا اختبار ١٢٣",
    "שלום עולם",
    "नमस्ते दुनिया (Devanagari marks)",
    "こんにちは世界 カタカナ ﾊﾝｶｸ",
    "안녕하세요 세계",
    "สวัสดีชาวโลก",
    unicodedata.normalize("NFD", "café résumé naïve Ångström"),
    unicodedata.normalize("NFC", "café résumé naïve Ångström"),
    "Angstrom sign \u212b, Ohm sign \u2126, ligature \ufb01ne, Kelvin \u212a",
    "\u1112\u1161\u11ab\u1100\u1173\u11af (conjoining jamo)",
    "e\u0301\u0302 stacked marks \u0301 alone",
    "Emoji: 😀 👍🏽 ❤️ 🇫🇷 👨‍👩‍👧‍👦 🚗🐶✅🔥",
    "I ❤️ NY",
    "I'm sure they'll say it's John's, WE'RE SURE, She'S here, don't 'll 'ſ",
    "  leading spaces",
    "trailing spaces   ",
    "multiple     spaces   between    words",
    "tabs\tand\t\ttabs \t mixed",
    "line1\nline2\n\n\nline3\n",
    "windows\r\nline\r\n\r\nends",
    " " * 40 + "x",
    "\n" * 20,
    "   \n   \n\t ",
    "a\u00a0b\u3000c\u2003d\u2028e\u0085f",
    "U+180E is no space to Oniguruma: a\u180eb \u180e's \u200b \ufeff \x1c",
    "def f(x):\n    return x**2  # square\n\n\tpass",
    "!!!??? ... --- *** ((a)) [b] {c} <d>",
    "$100.00 & 50% off! email@example.com http://x.y/z?q=1",
    "supercalifragilisticexpialidocious" * 3,
    "<|im_start|>user\nhi<|im_end|>",
    "x<|endoftext|>y",
    "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>What is this?",
    "<|IM_START|> and <|im_start| are plain text",
    "<|im_start|><|im_start|><|im_end|>",
    "<tool_call>{\"name\": \"f\"}</tool_call>",
    "<|object_ref_start|>the dog<|object_ref_end|><|box_start|>(10,20),(30,40)<|box_end|>",
    " <|im_end|> spaces around <|im_end|> ",
    "Mixed: The 猫 sat on the мат with 3 🐶s and a café.",
]

# Invalid UTF-8 in decoding: lists of raw bytes, each byte as its byte-level token; None = an added
# token (<|im_end|>) in between.
DECODE_BYTE_CASES = [
    [0xE4],
    [0xE4, 0xB8],
    [0xE4, 0xB8, 0x41],
    [0x80],
    [0xC0, 0xAF],
    [0xFF, 0xFE],
    [0xF0, 0x9F, 0x98],
    [0xF0, 0x9F, 0x98, 0x80],
    [0xED, 0xA0, 0x80],
    [0xE0, 0x80, 0xAF],
    [0xF4, 0x90, 0x80, 0x80],
    [0x61, 0xE4, None, 0xB8, 0xAD],
    [0xE4, 0xB8, 0xAD, 0xE6, 0x96],
]

CHAT_CASES = [  # (question, answer, image size (w, h) or None, system prompt or None)
    ("Locate the red car in the image and output its bbox coordinates in JSON format.",
     '```json\n[\n\t{"bbox_2d": [12, 345, 67, 890], "label": "red car"}\n]\n```', (56, 84), None),
    ("Read the text in this image.", "Café 123", (112, 56), None),
    ("Where is the 猫? <|im_start|>", "[1, 2, 3, 4]", (84, 84), "You are a grounding model."),
    ("What is 2+2?", "4", None, None),
]


def bytes_to_unicode():
  bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) +
        list(range(ord("®"), ord("ÿ") + 1)))
  cs = bs[:]
  n = 0
  for b in range(256):
    if b not in bs:
      bs.append(b)
      cs.append(256 + n)
      n += 1
  return dict(zip(bs, map(chr, cs)))


def train_tokenizer():
  rng = random.Random(1)
  tok = Tokenizer(models.BPE(dropout=None, unk_token=None, fuse_unk=False, byte_fallback=False))
  tok.normalizer = normalizers.NFC()
  tok.pre_tokenizer = pre_tokenizers.Sequence([
      pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
      pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
  ])
  tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                            use_regex=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, show_progress=False,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                special_tokens=[])
  tok.train_from_iterator(corpus(rng), trainer)
  base = tok.get_vocab_size()
  tok.add_tokens([
      AddedToken(text, special=special, normalized=False, lstrip=False, rstrip=False,
                 single_word=False) for text, special in QWEN25VL_ADDED
  ])
  # decoders.ByteLevel() takes no options from Python; write the ones Qwen2's file has.
  data = json.loads(tok.to_str())
  data["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                     "use_regex": False}
  tok = Tokenizer.from_str(json.dumps(data))
  for i, (text, _) in enumerate(QWEN25VL_ADDED):
    assert tok.token_to_id(text) == base + i, text
  return tok, base


def tokenizer_config(base):
  decoder = {}
  for i, (text, special) in enumerate(QWEN25VL_ADDED):
    decoder[str(base + i)] = {"content": text, "lstrip": False, "normalized": False,
                              "rstrip": False, "single_word": False, "special": special}
  return {
      "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": decoder,
      "additional_special_tokens": [t for t, s in QWEN25VL_ADDED[1:14]], "bos_token": None,
      "chat_template": QWEN25VL_CHAT_TEMPLATE, "clean_up_tokenization_spaces": False,
      "eos_token": "<|im_end|>", "errors": "replace", "model_max_length": 131072,
      "pad_token": "<|endoftext|>", "split_special_tokens": False,
      "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
  }


def write_json(path, value, indent=1):
  with open(path, "w", encoding="utf-8") as f:
    json.dump(value, f, ensure_ascii=False, indent=indent)
    f.write("\n")


def write_tokenizer_json(tok, path):
  # One merge per line keeps the file small and diffable (tokenizers' pretty print spends 4).
  data = json.loads(tok.to_str())
  merges = data["model"].pop("merges")
  vocab = data["model"].pop("vocab")
  text = json.dumps(data, ensure_ascii=False, indent=1)
  assert text.endswith("}\n}")
  body = (",\n  \"vocab\": {\n" +
          ",\n".join(f"   {json.dumps(k, ensure_ascii=False)}: {v}" for k, v in vocab.items()) +
          "\n  },\n  \"merges\": [\n" +
          ",\n".join(f"   {json.dumps(m, ensure_ascii=False)}" for m in merges) + "\n  ]\n }\n}")
  with open(path, "w", encoding="utf-8") as f:
    f.write(text[:-len("\n }\n}")] + body + "\n")
  assert Tokenizer.from_file(path).to_str() == tok.to_str()


def chat_cases(fast):
  from PIL import Image
  from transformers import Qwen2VLImageProcessor
  from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
  # Its video processor needs torchvision, which perpo does not install; images never reach it.
  Qwen2_5_VLProcessor.check_argument_for_proper_class = lambda self, name, arg: None
  processor = Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(), tokenizer=fast,
                                  video_processor=None, chat_template=QWEN25VL_CHAT_TEMPLATE)
  merge = processor.image_processor.merge_size
  cases = []
  rng = random.Random(2)
  for question, answer, size, system in CHAT_CASES:
    user = {"role": "user", "content": ([{"type": "image"}] if size else []) +
            [{"type": "text", "text": question}]}
    messages = ([{"role": "system", "content": system}] if system else []) + [user]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = processor.apply_chat_template(
        messages + [{"role": "assistant", "content": answer}], tokenize=False)
    images = None
    image_tokens = 0
    if size:
      pixels = bytes(rng.randrange(256) for _ in range(size[0] * size[1] * 3))
      images = [Image.frombytes("RGB", size, pixels)]
      grid = processor.image_processor(images=images)["image_grid_thw"][0].tolist()
      image_tokens = grid[0] * grid[1] * grid[2] // (merge * merge)
    prompt_ids = processor(text=[prompt], images=images)["input_ids"][0]
    full_ids = processor(text=[full], images=images)["input_ids"][0]
    prompt_ids = [int(i) for i in prompt_ids]
    full_ids = [int(i) for i in full_ids]
    assert full_ids[:len(prompt_ids)] == prompt_ids
    image_pad = fast.convert_tokens_to_ids("<|image_pad|>")
    assert prompt_ids.count(image_pad) == image_tokens
    cases.append({"question": question, "answer": answer, "system": system,
                  "image_tokens": image_tokens, "prompt_text": prompt, "full_text": full,
                  "prompt_ids": prompt_ids, "full_ids": full_ids})
  return cases


def flags_variant(tok):
  """Extra added tokens with the flags Qwen2's files leave false, encoded by `tokenizers`."""
  variant = Tokenizer.from_str(tok.to_str())
  base = variant.get_vocab_size(with_added_tokens=True)
  extra = [
      {"content": "<mark>", "special": True, "lstrip": True, "rstrip": True},
      {"content": "cat", "special": False, "single_word": True},
      {"content": "Café", "special": False, "normalized": True},
      {"content": "<mark>long", "special": True},
  ]
  tokens = []
  for i, item in enumerate(extra):
    full = {"id": base + i, "content": item["content"], "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": False}
    full.update(item)
    tokens.append(full)
    added = AddedToken(full["content"], single_word=full["single_word"], lstrip=full["lstrip"],
                       rstrip=full["rstrip"], normalized=full["normalized"],
                       special=full["special"])
    if full["special"]:
      variant.add_special_tokens([added])
    else:
      variant.add_tokens([added])
    assert variant.token_to_id(full["content"]) == base + i
  texts = ["a <mark> b", "a  <mark>  b<mark>c", "cat concat cats a cat.", "(cat) cat_x",
           unicodedata.normalize("NFD", "Café au lait, Café"), "Café", "<mark>longer <mark>lon",
           "x<mark>long<mark>"]
  cases = [{"text": t, "ids": variant.encode(t).ids} for t in texts]
  return {"added_tokens": tokens, "encode": cases}


def main():
  from transformers import AutoTokenizer, Qwen2Tokenizer, Qwen2TokenizerFast

  tok, base = train_tokenizer()
  os.makedirs(OUT, exist_ok=True)
  write_tokenizer_json(tok, os.path.join(OUT, "tokenizer.json"))
  write_json(os.path.join(OUT, "tokenizer_config.json"), tokenizer_config(base), indent=2)

  fast = AutoTokenizer.from_pretrained(OUT)
  assert isinstance(fast, Qwen2TokenizerFast), type(fast)

  # vocab.json + merges.txt, as the slow tokenizer (and older checkpoints) have them.
  slow_dir = os.path.join(OUT, "vocab_merges")
  shutil.rmtree(slow_dir, ignore_errors=True)
  with tempfile.TemporaryDirectory() as tmp:
    fast.save_pretrained(tmp, legacy_format=True)
    os.makedirs(slow_dir)
    for name in ("vocab.json", "merges.txt"):
      shutil.copy(os.path.join(tmp, name), slow_dir)
  write_json(os.path.join(slow_dir, "tokenizer_config.json"), tokenizer_config(base), indent=2)
  slow = Qwen2Tokenizer.from_pretrained(slow_dir)

  byte_char = bytes_to_unicode()
  encode = []
  for text in ENCODE_CASES:
    ids = fast(text)["input_ids"]
    assert slow(text)["input_ids"] == ids, ("slow and fast tokenizers differ", text)
    encode.append({"text": text, "ids": ids,
                   "pieces": fast.convert_ids_to_tokens(ids),
                   "decoded": fast.decode(ids, skip_special_tokens=False),
                   "decoded_skip_special": fast.decode(ids, skip_special_tokens=True)})

  im_end = fast.convert_tokens_to_ids("<|im_end|>")
  decode = []
  for byte_list in DECODE_BYTE_CASES:
    ids = [im_end if b is None else fast.convert_tokens_to_ids(byte_char[b]) for b in byte_list]
    decode.append({"ids": ids, "decoded": fast.decode(ids, skip_special_tokens=False),
                   "decoded_skip_special": fast.decode(ids, skip_special_tokens=True)})

  sample_pieces = {}
  for token, token_id in sorted(fast.get_vocab().items(), key=lambda kv: kv[1])[::37]:
    sample_pieces[token] = token_id

  expected = {
      "vocab_size": len(fast),
      "model_vocab_size": base,
      "added_tokens": [{"content": t, "id": base + i, "special": s}
                       for i, (t, s) in enumerate(QWEN25VL_ADDED)],
      "eos_id": fast.eos_token_id,
      "pad_id": fast.pad_token_id,
      "bos_id": fast.bos_token_id,
      "im_end_id": im_end,
      "endoftext_id": fast.convert_tokens_to_ids("<|endoftext|>"),
      "pieces": sample_pieces,
      "encode": encode,
      "decode": decode,
      "chat": chat_cases(fast),
      "flags": flags_variant(tok),
  }
  write_json(os.path.join(OUT, "expected.json"), expected)
  total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
  print(f"wrote {OUT}: vocab {base} + {len(QWEN25VL_ADDED)} added tokens, "
        f"{len(encode)} encode cases, {len(decode)} decode cases, {total // 1024} KB")


if __name__ == "__main__":
  sys.exit(main())
