#!/usr/bin/env python3
"""`layerpool run` and `layerpool perplexity` contracts: the JSON shapes
external checks rely on, greedy output equal to llama.cpp's (golden), and
clear errors (non-zero exit, one 'error:' line) on bad input.
Usage: cli_run_test.py LAYERPOOL SHARED_DIR"""
import json, os, subprocess, sys

lp, shared = sys.argv[1], os.environ.get("LAYERPOOL_SHARED") or sys.argv[2]
model = os.path.join(shared, "models/stories260K/stories260K-F32.gguf")
if not os.path.isfile(model):
    sys.exit(f"FAIL: shared data not found at {shared}")
failures = []

def run(*args):
    return subprocess.run([lp, *args], capture_output=True, text=True, timeout=120)

# JSON output: exact keys, and llama.cpp's greedy tokens for the first prompt.
golden = json.load(open(os.path.join(shared, "golden/stories260K-F32/greedy.json")))
g = golden["results"][0]
out = run("run", "--model", model, "--prompt", g["prompt"], "--n-predict", "64",
          "--temp", "0", "--output", "json", "--threads", "2")
if out.returncode != 0:
    failures.append(f"run json: rc={out.returncode} {out.stderr}")
else:
    j = json.loads(out.stdout)
    if list(j) != ["prompt_tokens", "tokens", "text", "timings"]:
        failures.append(f"run json keys {list(j)}")
    if list(j["timings"]) != ["prompt_tokens_per_s", "decode_tokens_per_s"]:
        failures.append(f"run json timings keys {list(j['timings'])}")
    if j["prompt_tokens"] != g["prompt_tokens"] or j["tokens"] != g["tokens"] \
            or j["text"] != g["text"]:
        failures.append("run json: tokens or text differ from llama.cpp's greedy run")

# Streaming text mode prints the same text.
out = run("run", "--model", model, "--prompt", g["prompt"], "--n-predict", "64", "--temp", "0")
if out.returncode != 0 or out.stdout.rstrip("\n") != g["text"]:
    failures.append(f"run text: rc={out.returncode} {out.stdout!r}")

# Empty prompt: BOS only.
out = run("run", "--model", model, "--prompt", "", "--n-predict", "4", "--temp", "0",
          "--output", "json")
if out.returncode != 0 or json.loads(out.stdout)["prompt_tokens"] != [1]:
    failures.append(f"empty prompt: {out.stdout} {out.stderr}")

# Seeded sampling is reproducible.
a = run("run", "--model", model, "--prompt", "Once", "--n-predict", "20", "--seed", "7", "--output", "json")
b = run("run", "--model", model, "--prompt", "Once", "--n-predict", "20", "--seed", "7", "--output", "json")
if a.returncode or json.loads(a.stdout)["tokens"] != json.loads(b.stdout)["tokens"]:
    failures.append("same seed gave different tokens")

# Bad input: one error line, non-zero exit, no crash.
bad = [
    (["--ctx", "16", "--n-predict", "20", "--prompt", "Once upon a time"], "exceeds the context"),
    (["--n-predict", "-1"], "--n-predict"),
    (["--top-p", "1.5"], "top_p"),
    (["--temp", "nan"], "temperature"),
    (["--kv-type", "q4"], "KV cache type"),
    (["--threads", "-2"], "--threads"),
]
for args, needle in bad:
    out = run("run", "--model", model, *args)
    if out.returncode == 0 or needle not in out.stderr or "error:" not in out.stderr:
        failures.append(f"run {args}: rc={out.returncode} stderr={out.stderr!r}")
out = run("run", "--model", "/nonexistent.gguf", "--prompt", "x")
if out.returncode != 1 or not out.stderr.startswith("error: "):
    failures.append(f"missing model: {out.stderr!r}")

# Perplexity JSON on the golden text (stories260K: 62 chunks, 6.0157).
text = os.path.join(shared, "golden/text/stories.txt")
out = run("perplexity", "--model", model, "--file", text, "--ctx", "128", "--output", "json")
if out.returncode != 0:
    failures.append(f"perplexity: {out.stderr}")
else:
    j = json.loads(out.stdout)
    want = json.load(open(os.path.join(shared, "golden/stories260K-F32/perplexity.json")))
    if list(j) != ["ppl", "chunks"] or j["chunks"] != want["chunks"] \
            or abs(j["ppl"] - want["ppl"]) > want["ppl"] * 1e-3:
        failures.append(f"perplexity json {j} vs {want['ppl']}")

for f in failures:
    print("FAIL", f)
print(f"run/perplexity CLI: {len(failures)} failures")
sys.exit(1 if failures else 0)
