#!/usr/bin/python3
"""Model shapes beyond the plain llama one, held to llama.cpp (golden.json,
made by make_golden.sh; its commit and commands are in it).

Each shape is rebuilt with `layerpool synth` (same flags, same bytes: the
sha256 must match the file llama.cpp ran on), then: perplexity within 0.1%
of llama.cpp's, and greedy text equal to llama.cpp's, in one process and
through two local workers split in halves and 1 + the rest.
Usage: check_shapes.py LAYERPOOL SHARED_DIR"""
import hashlib, json, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from checks import Checker, greedy, perplexity, pipelines  # noqa: E402

lp, shared = sys.argv[1], os.environ.get("LAYERPOOL_SHARED") or sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
golden = json.load(open(os.path.join(here, "golden.json")))
vocab = os.path.join(shared, golden["vocab_from"])
if not os.path.isfile(vocab):
    sys.exit(f"FAIL: {vocab} not found (LAYERPOOL_SHARED)")
checks = Checker()
check = checks.check

with tempfile.TemporaryDirectory() as scratch:
    for shape in golden["shapes"]:
        model = os.path.join(scratch, "shape.gguf")
        subprocess.run([lp, "synth", *shape["synth"].split(), "--vocab-from", vocab, "-o", model],
                       check=True, capture_output=True)
        name = shape["name"]
        sha = hashlib.sha256(open(model, "rb").read()).hexdigest()
        check(f"{name}: the file llama.cpp ran on", sha == shape["model_sha256"], sha)
        ppl, err = perplexity(lp, model, os.path.join(shared, "golden/text/stories.txt"))
        check(f"{name}: perplexity {ppl:.4f} within 0.1% of llama.cpp's {shape['ppl']}",
              abs(ppl / shape["ppl"] - 1) < 1e-3, err[-300:])
        flags = shape["synth"].split()
        layers = int(flags[flags.index("--layers") + 1])
        splits = (f"{layers // 2},{layers - layers // 2}", f"1,{layers - 1}")
        for case in shape["greedy"]:
            for label, extra in pipelines(*splits):
                text = greedy(lp, model, case["prompt"], case["n_predict"], extra)
                check(f"{name}: greedy '{case['prompt']}', {label}", text == case["text"],
                      f"{text!r} != {case['text']!r}")

checks.finish()
