#!/usr/bin/env python3
"""Every split gives the single process's tokens.

For stories260K (5 layers), TinyStories-656K (2) and synth-12L Q4_K_M (12),
`layerpool run --local-workers K --split ...` with 1 to 4 stages, even and
uneven, and one stage per layer for stories260K, must print exactly the
greedy tokens of `layerpool run` in one process (f32 on the wire). Sampled
runs with a seed must agree too: sampling happens on the last stage.
Usage: cluster_split_test.py LAYERPOOL SHARED_DIR"""
import json, os, re, subprocess, sys

lp, shared = sys.argv[1], os.environ.get("LAYERPOOL_SHARED") or sys.argv[2]
if not os.path.isdir(os.path.join(shared, "models")):
    sys.exit(f"FAIL: shared data not found at {shared}")
failures = []

MODELS = {
    "stories260K/stories260K-F32.gguf":
        ["5", "1,4", "4,1", "2,3", "1,2,2", "2,2,1", "1,1,1,2", "1,1,1,1,1"],
    "tinystories-656K/TinyStories-656K-Q8_0.gguf": ["2", "1,1"],
    "synth-12L/synth-12L-Q4_K_M.gguf": ["12", "6,6", "3,9", "4,4,4", "1,5,6", "3,3,3,3", "1,2,3,6"],
}
PROMPT = "Once upon a time, there was a little"


def run(model, *extra):
    args = [lp, "run", "--model", model, "--prompt", PROMPT, "--n-predict", "24",
            "--output", "json", "--threads", "1", *extra]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        return None, f"rc={out.returncode}: {out.stderr.strip()[-400:]}"
    return json.loads(out.stdout), None


for rel, splits in MODELS.items():
    model = os.path.join(shared, "models", rel)
    for sampling in (["--temp", "0"], ["--temp", "0.9", "--seed", "11"]):
        alone, err = run(model, *sampling)
        if err:
            failures.append(f"{rel} single process {sampling}: {err}")
            continue
        for split in splits:
            k = len(split.split(","))
            got, err = run(model, "--local-workers", str(k), "--split", split, *sampling)
            label = f"{rel} split {split} {' '.join(sampling)}"
            if err:
                failures.append(f"{label}: {err}")
            elif got["tokens"] != alone["tokens"] or got["prompt_tokens"] != alone["prompt_tokens"]:
                failures.append(f"{label}: tokens {got['tokens']} != {alone['tokens']}")
            elif got["text"] != alone["text"]:
                failures.append(f"{label}: text differs")
            else:
                print(f"ok  {label}")

# RoPE overrides reach every stage: the same tokens as one process with them.
model = os.path.join(shared, "models", "stories260K/stories260K-F32.gguf")
rope = ["--temp", "0", "--rope-freq-base", "1000", "--ntk-alpha", "2"]
alone, err = run(model, *rope)
plain, _ = run(model, "--temp", "0")
got, err2 = run(model, *rope, "--local-workers", "3", "--split", "1,2,2")
if err or err2 or got["tokens"] != alone["tokens"] or alone["tokens"] == plain["tokens"]:
    failures.append(f"rope overrides through workers: {err or err2}")

# Local workers pass hidden states over Unix sockets by default (the log
# says so); --stage-links grpc keeps to gRPC streams with the same tokens.
model = os.path.join(shared, "models", "synth-12L/synth-12L-Q4_K_M.gguf")
alone, _ = run(model, "--temp", "0")
for links, expect in (("auto", "over unix socket"), ("grpc", "over grpc")):
    args = [lp, "run", "--model", model, "--prompt", PROMPT, "--n-predict", "24", "--output",
            "json", "--threads", "1", "--temp", "0", "--local-workers", "3", "--split", "4,4,4",
            "--stage-links", links]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        failures.append(f"--stage-links {links}: rc={out.returncode} {out.stderr[-400:]}")
    elif json.loads(out.stdout)["tokens"] != alone["tokens"]:
        failures.append(f"--stage-links {links}: tokens differ from one process")
    elif out.stderr.count(expect) < 3:  # coordinator -> 0, 0 -> 1, 1 -> 2
        failures.append(f"--stage-links {links}: log lacks 3 x {expect!r}: {out.stderr[-800:]}")
    else:
        print(f"ok  --stage-links {links}")

# Each stage times its steps when it loads (1, 2 and 4 rows with four
# sequences) and the coordinator chooses micro-batches from them: the log
# shows both, and the tokens stay the same.
args = [lp, "run", "--model", model, "--prompt", PROMPT, "--n-predict", "24", "--output",
        "json", "--threads", "1", "--temp", "0", "--local-workers", "3", "--split", "4,4,4",
        "--max-sequences", "4"]
out = subprocess.run(args, capture_output=True, text=True, timeout=120)
costs = re.search(r"step costs: (.*)", out.stderr)
table = re.search(r"micro-batches by live sequences: 1:1 2:\d 3:\d 4:\d\n", out.stderr)
if out.returncode != 0 or json.loads(out.stdout)["tokens"] != alone["tokens"]:
    failures.append(f"step costs: rc={out.returncode} {out.stderr[-400:]}")
elif not costs or costs.group(1).count("4 rows") != 3 or not table:
    failures.append(f"step costs: the log lacks them or the choice: {out.stderr[-800:]}")
else:
    print("ok  step costs timed at load, micro-batches chosen from them")

# A prompt in chunks of 3 rows: the chunks follow each other down the
# pipe without waiting for one another, and the tokens stay the same.
for split in ("4,4,4", "1,5,6"):
    got, err = run(model, "--temp", "0", "--local-workers", "3", "--split", split, "--batch", "3")
    if err or got["tokens"] != alone["tokens"]:
        failures.append(f"prompt chunks of 3 rows, split {split}: {err or got['tokens']}")
    else:
        print(f"ok  prompt chunks of 3 rows, split {split}")

# Rounding wire types run (their tokens may differ from f32's: not asserted).
model = os.path.join(shared, "models", "stories260K/stories260K-F32.gguf")
for wire in ("f16", "bf16", "q8_0"):
    got, err = run(model, "--temp", "0", "--local-workers", "2", "--activation-type", wire)
    if err or len(got["tokens"]) == 0:
        failures.append(f"{wire} activations: {err}")
    else:
        print(f"ok  {wire} activations")

# `perplexity --split` scores the model as that pipeline computes it: with
# f32 links exactly the one-stage value; each rounding type moves it, by
# less than 0.1% on TinyStories.
model = os.path.join(shared, "models", "tinystories-656K/TinyStories-656K-F32.gguf")
text = os.path.join(shared, "golden", "text", "stories.txt")


def ppl(*extra):
    out = subprocess.run([lp, "perplexity", "--model", model, "--file", text, "--output", "json",
                          "--threads", "1", *extra], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        failures.append(f"perplexity {extra}: rc={out.returncode} {out.stderr[-300:]}")
        return None
    return json.loads(out.stdout)["ppl"]


whole = ppl()
for wire in ("f32", "f16", "bf16", "q8_0"):
    split = ppl("--split", "1,1", "--activation-type", wire)
    if whole is None or split is None:
        continue
    change = split / whole - 1
    if (wire == "f32" and split != whole) or (wire != "f32" and not 0 < abs(change) < 1e-3):
        failures.append(f"perplexity --split 1,1 {wire}: {split} against {whole}")
    else:
        print(f"ok  perplexity --split 1,1 --activation-type {wire}: {change:+.6%}")

# A split that does not add up is refused before any work, naming the flag.
out = subprocess.run([lp, "run", "--model", model, "--prompt", "x", "--local-workers", "2",
                      "--split", "2,2"], capture_output=True, text=True, timeout=60)
if out.returncode != 1 or "error:" not in out.stderr or "layer" not in out.stderr:
    failures.append(f"bad split: rc={out.returncode} {out.stderr!r}")

for f in failures:
    print("FAIL", f)
sys.exit(1 if failures else 0)
