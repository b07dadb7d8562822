#!/usr/bin/python3
"""Llama 3.1 RoPE scaling (rope_freqs.weight) held to llama.cpp.

TinyStories-656K with Llama 3.1 factors added (add_rope_freqs, factor 8,
original context 32) is a trained model whose outputs depend on the factors:
llama.cpp's perplexity on it is far from the plain model's. Our engine must
give llama.cpp's perplexity within 0.1% and its greedy text exactly, in one
process and through two local workers (golden.json says which llama.cpp and
which commands).
Usage: check_rope_scaling.py LAYERPOOL ADD_ROPE_FREQS SHARED_DIR"""
import hashlib, json, os, subprocess, sys, tempfile

lp, add, shared = sys.argv[1], sys.argv[2], os.environ.get("LAYERPOOL_SHARED") or sys.argv[3]
here = os.path.dirname(os.path.abspath(__file__))
golden = json.load(open(os.path.join(here, "golden.json")))
base = os.path.join(shared, golden["base"])
if not os.path.isfile(base):
    sys.exit(f"FAIL: {base} not found (LAYERPOOL_SHARED)")
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    passed, failed = passed + bool(ok), failed + (not ok)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))


with tempfile.TemporaryDirectory() as scratch:
    model = os.path.join(scratch, "tinystories-llama31-rope.gguf")
    subprocess.run([add, base, model, "8", "32"], check=True)
    sha = hashlib.sha256(open(model, "rb").read()).hexdigest()
    check("the file is the one llama.cpp was run on", sha == golden["model_sha256"], sha)

    plain = json.load(open(os.path.join(shared, "golden/TinyStories-656K-Q8_0/perplexity.json")))["ppl"]
    want = golden["perplexity"]["ppl"]
    check("the factors matter: llama.cpp's perplexity moves by more than 10%",
          abs(want / plain - 1) > 0.1, (want, plain))
    out = subprocess.run([lp, "perplexity", "--model", model, "--file",
                          os.path.join(shared, "golden/text/stories.txt"), "--ctx", "128",
                          "--threads", "1", "--output", "json"], capture_output=True, text=True)
    ppl = json.loads(out.stdout)["ppl"] if out.returncode == 0 else float("nan")
    check(f"perplexity {ppl:.4f} within 0.1% of llama.cpp's {want}", abs(ppl / want - 1) < 1e-3,
          out.stderr[-300:])

    for case in golden["greedy"]:
        for label, extra in [("one process", []),
                             ("2 local workers", ["--local-workers", "2", "--split", "1,1"])]:
            r = subprocess.run([lp, "run", "--model", model, "--prompt", case["prompt"],
                                "--n-predict", str(case["n_predict"]), "--temp", "0",
                                "--threads", "1", "--output", "json", *extra],
                               capture_output=True, text=True, timeout=120)
            text = json.loads(r.stdout)["text"] if r.returncode == 0 else r.stderr[-300:]
            check(f"greedy '{case['prompt']}', {label}: llama.cpp's text", text == case["text"],
                  f"{text!r} != {case['text']!r}")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
