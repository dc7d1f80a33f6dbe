#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ and its libFuzzer
dictionary (words the mutations splice in) into fuzz/<target>.dict; small, committed.

    python3 tools/make_fuzz_seeds.py

Every fuzz input starts with one control byte (see the comment at the top of fuzz/<target>.cpp),
except safetensors_header's, which is a whole file. Re-running rewrites the same files.
"""
import json
import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def control(byte, text):
    return bytes([byte]) + text.encode()


def box_parser():
    write("box_parser", "bracket", control(0, "The glass is at [0.61, 0.10 ,0.77, 0.54].\n[0.61, 0.1, 0.77, 0.54]"))
    write("box_parser", "pixels", control(1, "[243, 40, 308, 216]\n[0.38, 0.08, 0.48, 0.45]"))
    write("box_parser", "qwen", control(2, "<|box_start|>(610,100),(770,540)<|box_end|>\n<box>(600,90),(770,540)</box>"))
    write("box_parser", "corners", control(5, "(0.61,0.10),(0.77,0.54) or (0.1, 0.2, 0.3, 0.4)\n[0.1 0.2 0.3 0.4]"))
    write("box_parser", "bad_values", control(4, "[nan, 1e400, -inf, 0.5] [0.1, 0.2, 0.3] [0.5, 0.5, 0.5, 0.9]\n[2, 2, 3, 3]"))
    write("box_parser", "ocr", control(24, "Hello  Wörld ünïcödé\nhello wörld unicode"))
    write("box_parser", "numeric", control(0, "about 42.5 apples, maybe 7\n42.5"))


def jsonl_reader():
    record = {"id": "refcoco-val-17", "task": "grounding", "image": "images/17.jpg",
              "prompt": "Please provide the bounding box of: glass behind burger",
              "ground_truth": "[0.61, 0.1, 0.77, 0.54]"}
    lst = dict(record, answers=["[0.61, 0.17, 0.77, 0.53]", "[0.1, 0.2, 0.3, 0.4]"],
               rewards=[0.8, 0.0], ref_logps=[-3.21, -9.7], reward_notes=["ok", "ok"])
    lines = lambda *items: "".join(json.dumps(i) + "\n" for i in items)
    write("jsonl_reader", "lists", control(0, lines(lst, dict(lst, id=18, ref_logps=None))))
    write("jsonl_reader", "dataset", control(1, lines(record, dict(record, id="b", task="ocr")) + "\n"))
    bad = lines(dict(lst, rewards=[0.8]), dict(lst, answers=["x"]), {"image": 3}) + "[1, 2]\n{not json\n"
    write("jsonl_reader", "lists_skip", control(2, bad + lines(lst)))
    write("jsonl_reader", "lists_no_rewards", control(4, lines(dict(lst, rewards=None, ref_logps=None))))
    write("jsonl_reader", "dataset_skip", control(3, lines({"prompt": "p"}, record) + '{"image": "a", "prompt": 1}'))


def authors_json():
    item = {"image_id": 581857, "image_path": "coco/train2014/COCO_train2014_000000581857.jpg",
            "question": "<image>\nPlease provide the bounding box coordinate of the region: the lady",
            "answer": "[0.1, 0.2, 0.5, 0.9]",
            "answers_gen": ["[0.1, 0.2, 0.5, 0.9]", "[0.0, 0.1, 0.4, 0.8]", "no box"],
            "iou_scores": [1.0, 0.55, 0.0]}
    write("authors_json", "two_items", control(0, json.dumps([item, dict(item, image_id="x")], indent=1)))
    write("authors_json", "skip_bad", control(1, json.dumps([item, {"image_path": 1}, 3, dict(item, iou_scores=[1])])))
    write("authors_json", "no_scores", control(2, "\n  " + json.dumps([dict(item, iou_scores=None, extra={"k": [1, "a"]})])))


def safetensors_file(tensors, metadata=None, pad=True):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_header():
    f32 = struct.pack("<4f", 1, 2, 3, 4)
    write("safetensors_header", "two_tensors", safetensors_file(
        {"w": ("F32", [2, 2], f32), "b": ("BF16", [3], b"\x80\x3f" * 3)}, {"format": "pt"}))
    write("safetensors_header", "all_dtypes", safetensors_file(
        {t: (t, [1], b"\0" * n) for t, n in [("F64", 8), ("F16", 2), ("I64", 8), ("I32", 4),
                                             ("I16", 2), ("I8", 1), ("U8", 1), ("BOOL", 1)]}))
    write("safetensors_header", "scalar_and_empty", safetensors_file(
        {"s": ("F32", [], f32[:4]), "e": ("F32", [0, 5], b"")}, pad=False))
    write("safetensors_header", "bad_dtype", safetensors_file({"x": ("F8_E4M3", [2], b"\0\0")}))


def yaml_config():
    write("yaml_config", "demo", b"\0" + (ROOT / "configs" / "demo.yaml").read_bytes())
    write("yaml_config", "grounding", b"\0" + (ROOT / "configs" / "llava-1.5-7b-grounding.yaml").read_bytes())
    write("yaml_config", "overrides", control(1, "optim.lr=1e-5\nloss.name=dpo\nrun.dir=\"out dir\"\ndata.on_bad_record=skip\n"))
    write("yaml_config", "flow", control(0, "{optim: {lr: 2.0e-6, weight_decay: 0}, loss: {beta: 0.1}}\n"))


JSON_WORDS = ['{', '}', '[', ']', ':', ',', '"', 'null', 'true', 'false', '-0', '1e400', '0.5',
              '18446744073709551615', '-9223372036854775808', '"\\u0000"', '"\\ud800"', '\ufeff']


def write_dict(target, words):
    """libFuzzer's dictionary format: one quoted word a line; backslash escapes (\\xNN)."""
    def escape(word):
        out = ""
        for byte in word.encode():
            char = chr(byte)
            if char in '\\"':
                out += "\\" + char
            elif 32 <= byte < 127:
                out += char
            else:
                out += "\\x%02X" % byte
        return '"%s"' % out
    (ROOT / "fuzz" / (target + ".dict")).write_text("".join(escape(w) + "\n" for w in words))


def dictionaries():
    record = ["id", "task", "image", "prompt", "ground_truth", "answers", "rewards", "ref_logps",
              "reward_notes", "grounding", "ocr"]
    write_dict("jsonl_reader", JSON_WORDS + ['"%s":' % k for k in record] + ["\n"])
    authors = ["image_id", "image_path", "question", "answer", "answers_gen", "iou_scores", "<image>\n"]
    write_dict("authors_json", JSON_WORDS + ['"%s":' % k for k in authors + record])
    write_dict("safetensors_header", JSON_WORDS + [
        '"dtype":', '"shape":', '"data_offsets":', '"__metadata__":', '"format":', '"pt"',
        "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3"])
    write_dict("box_parser", ["[", "]", "(", ")", ",", " ", "\n", "<|box_start|>", "<|box_end|>",
                              "<box>", "</box>", "nan", "inf", "infinity", "e", "e-", "1e308",
                              "1e-320", "0.", "-0", "1000", "0.5"])
    config_h = (ROOT / "include" / "perpo" / "config" / "config.h").read_text()
    names = sorted(set(re.findall(r'v\.(?:field|section|choice)\("([a-z_0-9]+)"', config_h)))
    write_dict("yaml_config", names + [": ", "\n  ", "- ", "[", "]", "{", "}", "=", ".", "~", "null",
                                       "true", "no", "1e400", ".nan", ".inf", "0x1F", "&a", "*a",
                                       "!!str", "<<: ", "---\n", "...\n", "'", '"', "#"])


if __name__ == "__main__":
    dictionaries()
    box_parser()
    jsonl_reader()
    authors_json()
    safetensors_header()
    yaml_config()
    for folder in sorted(CORPUS.iterdir()):
        print(folder.relative_to(ROOT), len(list(folder.iterdir())), "files")
