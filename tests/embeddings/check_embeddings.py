#!/usr/bin/python3
"""`layerpool embed` against llama.cpp's llama-embedding on the same files
(golden.json, made by make_golden.sh; its commit and command are in it).

llama-embedding prints 7 decimals (5e-8 of rounding), computes the mean as
a matrix product with 1/n weights (another summation order than ours), and
on some models its hidden states are not bit-identical to ours (see the
golden logit tolerances): each element must agree within 1e-5, and the
vectors' cosine similarity must be at least 0.99999. Most cases agree to
1e-7; the report prints each case's worst difference. The HTTP API's /v1/embeddings
equals `layerpool embed` to the float (tests/http_api_test.py), so this holds
it to llama.cpp too.
Usage: check_embeddings.py LAYERPOOL SHARED_DIR"""
import json, math, os, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from checks import Checker  # noqa: E402

lp, shared = sys.argv[1], os.environ.get("LAYERPOOL_SHARED") or sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
golden = json.load(open(os.path.join(here, "golden.json")))
checks = Checker()
check = checks.check
for model, cases in golden["models"].items():
    path = os.path.join(shared, "models", model)
    if not os.path.isfile(path):
        sys.exit(f"FAIL: {path} not found (LAYERPOOL_SHARED)")
    run = subprocess.run([lp, "embed", "--model", path, "--pooling", "mean", "--threads", "2"],
                         input="".join(json.dumps(c["text"]) + "\n" for c in cases),
                         capture_output=True, text=True, timeout=120)
    ours = [json.loads(line) for line in run.stdout.splitlines()]
    for i, case in enumerate(cases):
        want = case["embedding"]
        got = ours[i] if i < len(ours) else []
        ok = len(got) == len(want)
        worst = max((abs(a - b) for a, b in zip(got, want)), default=math.inf) if ok else math.inf
        cos = sum(a * b for a, b in zip(got, want)) / (
            math.sqrt(sum(a * a for a in got)) * math.sqrt(sum(b * b for b in want))) if ok else 0
        ok = ok and worst <= 1e-5 and cos >= 0.99999
        check(f"{model} text {i}: max |diff| {worst:.2e}, cosine {cos:.9f}", ok,
              run.stderr[-300:])
checks.finish()
