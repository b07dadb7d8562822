#!/usr/bin/env python3
"""`layerpool tokenize` contract: one JSON string per line in, one JSON array
of ids per line out, equal to llama.cpp's ids (golden/tokenizer); a bad line
gives 'error: line N' on stderr and a non-zero exit after the earlier lines.
Usage: cli_tokenize_test.py LAYERPOOL SHARED_DIR"""
import json, os, subprocess, sys

lp, shared = sys.argv[1], os.environ.get("LAYERPOOL_SHARED") or sys.argv[2]
if not os.path.isdir(os.path.join(shared, "golden")):
    sys.exit(f"FAIL: shared data not found at {shared}")
failures = 0
cases = {
    "ggml-vocab-gpt-2": "models/vocab/ggml-vocab-gpt-2.gguf",
    "ggml-vocab-llama-spm": "models/vocab/ggml-vocab-llama-spm.gguf",
    "stories260K-F32": "models/stories260K/stories260K-F32.gguf",
}
for stem, model in cases.items():
    entries = json.load(open(os.path.join(shared, "golden/tokenizer", stem + ".json")))
    entries = [e for e in entries if e["ids"] is not None]
    stdin = "".join(json.dumps(e["text"]) + "\n" for e in entries)
    out = subprocess.run([lp, "tokenize", "--model", os.path.join(shared, model)],
                         input=stdin.encode(), capture_output=True, check=True)
    lines = out.stdout.decode().splitlines()
    if len(lines) != len(entries):
        print(f"FAIL {stem}: {len(lines)} lines for {len(entries)} inputs"); failures += 1
        continue
    for e, line in zip(entries, lines):
        if json.loads(line) != e["ids"]:
            print(f"FAIL {stem}: {e['text']!r}: {line} != {e['ids']}"); failures += 1
    print(f"{stem}: {len(entries)} strings checked")

model = os.path.join(shared, cases["stories260K-F32"])
out = subprocess.run([lp, "tokenize", "--model", model, "--add-special"],
                     input=b'"Once upon a time"\nnot json\n"x"\n', capture_output=True)
lines = out.stdout.decode().splitlines()
if out.returncode == 0 or len(lines) != 1 or json.loads(lines[0])[0] != 1 \
        or not out.stderr.decode().startswith("error: line 2"):
    print(f"FAIL bad line: rc={out.returncode} out={lines} err={out.stderr!r}"); failures += 1
sys.exit(1 if failures else 0)
