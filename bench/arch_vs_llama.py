#!/usr/bin/python3
"""Prefill (pp128) and decode (tg64) tokens/s of the CPU engine next to
llama.cpp's llama-bench, on a 1B-ish random-weight model of each
architecture layerpool runs, in one run on one machine: for each model and
round, engine_bench then llama-bench (1 and 2 threads, 3 repetitions each),
and the ratio per round.

  bench/arch_vs_llama.py /path/to/llama.cpp BUILD_DIR [MODEL_DIR] > table.md
llama.cpp: a CPU build someone made there (build/bin/llama-bench); BUILD_DIR:
layerpool's (cli/layerpool, bench/engine_bench). Models are made by synth
into MODEL_DIR (default /tmp/layerpool-arch-bench) unless already there.
Builds nothing. Progress goes to stderr."""
import json, os, subprocess, sys

llama, build = sys.argv[1], sys.argv[2]
model_dir = sys.argv[3] if len(sys.argv) > 3 else "/tmp/layerpool-arch-bench"
ROUNDS = 2
# name, synth flags (Q4_K_M, a generated 32000-token vocabulary)
SHAPES = [
    ("llama 1B (llama-1b preset)", "--preset llama-1b"),
    ("qwen2 1.5B (Qwen2.5-1.5B's shape, 32k vocab)",
     "--arch qwen2 --dim 1536 --layers 28 --heads 12 --kv-heads 2 --ffn 8960 --vocab 32000"),
    ("phi3 1B (head dim 64, fused QKV and gate/up)",
     "--arch phi3 --dim 2048 --layers 16 --heads 32 --kv-heads 32 --ffn 5632 --vocab 32000"),
    ("gemma2 2B (Gemma-2-2B's shape, 32k vocab)",
     "--arch gemma2 --dim 2304 --layers 26 --heads 8 --kv-heads 4 --head-dim 256 --ffn 9216 "
     "--vocab 32000 --sliding-window 4096"),
    ("Mixtral-style 8x 0.16B (2 of 8 experts per token)",
     "--dim 1024 --layers 16 --heads 16 --kv-heads 4 --ffn 2816 --experts 8 --experts-used 2 "
     "--vocab 32000"),
]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run_json(cmd):
    log("$", " ".join(cmd))
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def ours(model):
    rows = run_json([os.path.join(build, "bench", "engine_bench"), "--model", model,
                     "--threads", "1,2", "--reps", "3", "--output", "json"])
    return {(r["threads"], r["test"]): (r["tokens_per_s"], r["stddev"]) for r in rows}


def theirs(model):
    rows = run_json([os.path.join(llama, "build", "bin", "llama-bench"), "-m", model,
                     "-p", "128", "-n", "64", "-t", "1,2", "-r", "3", "-o", "json"])
    return {(r["n_threads"], f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"):
            (r["avg_ts"], r["stddev_ts"]) for r in rows}


os.makedirs(model_dir, exist_ok=True)
commit = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse",
                         "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
llama_commit = (subprocess.run(["git", "-C", llama, "rev-parse", "--short", "HEAD"],
                               capture_output=True, text=True).stdout.strip()
                or open(os.path.join(llama, "COMMIT")).read().strip()[:7])
print(f"layerpool {commit}, llama.cpp {llama_commit}; Q4_K_M synth models, "
      f"{ROUNDS} rounds (each: engine_bench, then llama-bench), 3 repetitions per figure\n")
print("| model | threads | test | layerpool t/s (rounds) | llama.cpp t/s (rounds) | ratio (rounds) |")
print("| --- | ---: | --- | ---: | ---: | ---: |")
for name, flags in SHAPES:
    path = os.path.join(model_dir, name.split(" ")[0].lower() + ".gguf")
    if not os.path.exists(path):
        log("synth", name)
        subprocess.run([os.path.join(build, "cli", "layerpool"), "synth", *flags.split(),
                        "--type", "Q4_K_M", "-o", path], check=True, capture_output=True)
    results = [(ours(path), theirs(path)) for _ in range(ROUNDS)]
    for key in sorted(results[0][0]):
        a = [r[0][key][0] for r in results]
        b = [r[1][key][0] for r in results]
        print(f"| {name} | {key[0]} | {key[1]} | {' / '.join(f'{x:.1f}' for x in a)} | "
              f"{' / '.join(f'{x:.1f}' for x in b)} | "
              f"{' / '.join(f'{x / y:.2f}' for x, y in zip(a, b))} |", flush=True)
