#!/usr/bin/python3
"""RoPE scaling held to llama.cpp: Llama 3.1's rope_freqs.weight and YaRN.

TinyStories-656K with the scaling added (add_rope_freqs) is a trained model
whose outputs depend on it: llama.cpp's perplexity on each variant is far
from the plain model's. Our engine must give llama.cpp's perplexity within
0.1% and its greedy text exactly, in one process and through two local
workers (golden.json says which llama.cpp and which commands).
Usage: check_rope_scaling.py LAYERPOOL ADD_ROPE_FREQS SHARED_DIR"""
import hashlib, json, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from checks import Checker, greedy, perplexity, pipelines  # noqa: E402

lp, add, shared = sys.argv[1], sys.argv[2], os.environ.get("LAYERPOOL_SHARED") or sys.argv[3]
here = os.path.dirname(os.path.abspath(__file__))
golden = json.load(open(os.path.join(here, "golden.json")))
base = os.path.join(shared, golden["base"])
if not os.path.isfile(base):
    sys.exit(f"FAIL: {base} not found (LAYERPOOL_SHARED)")
checks = Checker()
check = checks.check
plain = json.load(open(os.path.join(shared, "golden/TinyStories-656K-Q8_0/perplexity.json")))["ppl"]

with tempfile.TemporaryDirectory() as scratch:
    for v in golden["variants"]:
        name = v["name"]
        model = os.path.join(scratch, "scaled.gguf")
        subprocess.run([add, *v["args_before"].split(), base, model, *v["args_after"].split()],
                       check=True)
        sha = hashlib.sha256(open(model, "rb").read()).hexdigest()
        check(f"{name}: the file llama.cpp ran on", sha == v["model_sha256"], sha)
        want = v["ppl"]
        check(f"{name}: the scaling matters (llama.cpp's perplexity moves by more than 10%)",
              abs(want / plain - 1) > 0.1, (want, plain))
        ppl, err = perplexity(lp, model, os.path.join(shared, "golden/text/stories.txt"))
        check(f"{name}: perplexity {ppl:.4f} within 0.1% of llama.cpp's {want}",
              abs(ppl / want - 1) < 1e-3, err[-300:])
        for case in v["greedy"]:
            for label, extra in pipelines("1,1"):
                text = greedy(lp, model, case["prompt"], case["n_predict"], extra)
                check(f"{name}: greedy '{case['prompt']}', {label}: llama.cpp's text",
                      text == case["text"], f"{text!r} != {case['text']!r}")

checks.finish()
