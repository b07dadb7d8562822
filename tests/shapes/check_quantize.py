#!/usr/bin/python3
"""`synth --type Q8_0` and `--type Q4_K_M` of each architecture against
llama-quantize's files from the same weights in F32 (quantize_golden.json,
made by make_quantize_golden.py; its commit and command are in it): every
tensor of the type llama-quantize picks, with the same bytes.

Usage: check_quantize.py LAYERPOOL SHARED_DIR"""
import json, os, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "support"))
from checks import Checker  # noqa: E402
from gguf_tensors import tensors  # noqa: E402

lp, shared = sys.argv[1], os.environ.get("LAYERPOOL_SHARED") or sys.argv[2]
golden = json.load(open(os.path.join(here, "quantize_golden.json")))
checks = Checker()
with tempfile.TemporaryDirectory() as scratch:
    model = os.path.join(scratch, "model.gguf")
    for name, shape in golden["shapes"].items():
        for ftype in ("Q8_0", "Q4_K_M"):
            subprocess.run([lp, "synth", *shape["synth"].split(), "--type", ftype, "--vocab-from",
                            os.path.join(shared, golden["vocab_from"]), "-o", model],
                           check=True, capture_output=True)
            ours = {t[0]: [t[1], t[2]] for t in tensors(model)}
            want = shape[ftype]
            wrong = sorted(t for t in want if ours.get(t) != want[t])
            checks.check(f"{name} {ftype}: {len(want) - len(wrong)}/{len(want)} tensors as "
                         "llama-quantize writes them", not wrong and set(ours) == set(want),
                         [(t, ours.get(t, ["missing"])[0], want[t][0]) for t in wrong[:4]] +
                         sorted(set(ours) ^ set(want))[:4])
checks.finish()
