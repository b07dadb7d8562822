#!/usr/bin/python3
"""`layerpool plan` against the KV formula worked by hand, and against the
split `serve` itself chooses on real workers.

1. The 70B shape (80 layers, 8 KV heads, head dim 128) costs 320 KiB of KV
   cache per token at f16 (2 x 80 x 8 x 128 x 2 bytes), and 170 KiB at q8_0
   (34 bytes per 32 elements); weights, split and headroom add up.
2. On the shared synth-12L model, two workers with --mem-limit: `plan
   --workers` and `plan --devices` with the same sizes give exactly the layer
   ranges `serve` loads (read back from its /health).
3. A plan that does not fit exits 3 and says by how much and what would fit;
   bad input is one error line.
Usage: cli_plan_test.py LAYERPOOL SHARED_DIR"""
import json, os, subprocess, sys, time, urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from checks import Checker, stop  # noqa: E402

lp, shared = sys.argv[1], os.environ.get("LAYERPOOL_SHARED") or sys.argv[2]
model = os.path.join(shared, "models/synth-12L/synth-12L-Q4_K_M.gguf")
if not os.path.isfile(model):
    sys.exit(f"FAIL: shared data not found at {shared}")
procs = []
checks = Checker()
check = checks.check




def plan(*args):
    r = subprocess.run([lp, "plan", *args, "--output", "json"], capture_output=True, text=True)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr


try:
    rc, p, err = plan("--shape", "llama-70b", "--devices", "24GiB,24GiB", "--max-sequences", "1")
    check("70B: 320 KiB of KV per token at f16", rc == 0 and p["kv_bytes_per_token"] == 2 * 80 * 8 * 128 * 2
          and p["kv_bytes_per_token"] == 320 * 1024, (rc, p and p["kv_bytes_per_token"], err))
    stages = p["stages"] if p else []
    check("70B on two 24 GiB cards: two stages covering 80 layers, sums add up",
          len(stages) == 2 and stages[0]["layers"][0] == 0 and stages[1]["layers"][1] == 79
          and stages[0]["layers"][1] + 1 == stages[1]["layers"][0]
          and all(s["total_bytes"] == s["weights_bytes"] + s["kv_bytes"] + s["scratch_bytes"]
                  and s["headroom_bytes"] == s["free_bytes"] - s["total_bytes"] for s in stages)
          and sum(s["kv_bytes"] for s in stages) == 320 * 1024 * 4096, stages)
    check("the largest context that fits leaves the plan fitting, 256 more does not",
          p and plan("--shape", "llama-70b", "--devices", "24GiB,24GiB", "--max-sequences", "1",
                     "--ctx", str(p["largest_context"]))[0] == 0
          and plan("--shape", "llama-70b", "--devices", "24GiB,24GiB", "--max-sequences", "1",
                   "--ctx", str(p["largest_context"] + 256))[0] == 3, p and p["largest_context"])
    rc, q, _ = plan("--shape", "llama-70b", "--devices", "24GiB,24GiB", "--kv-type", "q8_0",
                    "--max-sequences", "1")
    check("70B: 170 KiB per token at q8_0", q and q["kv_bytes_per_token"] == 2 * 80 * 8 * 128 * 34 / 32,
          q and q["kv_bytes_per_token"])

    rc, big, _ = plan("--shape", "llama-70b", "--devices", "24GiB,24GiB", "--ctx", "131072",
                      "--max-sequences", "1")
    check("a plan that does not fit: exit 3, the shortfall, what would fit",
          rc == 3 and big["fits"] is False and big["shortfall_bytes"] > 30 * 2**30
          and any(s.startswith("--ctx ") for s in big["suggestions"])
          and any("more 24.0 GiB device" in s for s in big["suggestions"]), (rc, big))
    text = subprocess.run([lp, "plan", "--shape", "llama-70b", "--devices", "24GiB,24GiB",
                           "--ctx", "131072"], capture_output=True, text=True)
    check("the text form says it", text.returncode == 3 and "does not fit" in text.stdout
          and "short by" in text.stdout and "would fit with" in text.stdout, text.stdout)
    bad = subprocess.run([lp, "plan", "--shape", "llama-70b", "--devices", "lots"],
                         capture_output=True, text=True)
    check("a bad size is one error line", bad.returncode == 1 and bad.stderr.startswith("error: --devices")
          and bad.stderr.count("\n") == 1, bad.stderr)

    # plan against serve on real workers.
    limits = ["60MiB", "90MiB"]
    workers = []
    for limit in limits:
        w = subprocess.Popen([lp, "worker", "--listen", "127.0.0.1:0", "--threads", "1",
                              "--mem-limit", limit], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        procs.append(w)
        workers.append(w.stdout.readline().strip().split("listening on ")[1])
    common = ["--model", model, "--ctx", "512", "--max-sequences", "4"]
    rc, live, err = plan(*common, "--workers", ",".join(workers))
    rc2, sized, _ = plan(*common, "--devices", ",".join(limits))
    serve = subprocess.Popen([lp, "serve", *common, "--workers", ",".join(workers),
                              "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs.append(serve)
    serve.stdout.readline()
    http = serve.stdout.readline().strip().split("listening on ")[1]
    with urllib.request.urlopen(f"http://{http}/health", timeout=10) as r:
        served = [s["layers"] for s in json.loads(r.read())["stages"]]
    planned = [s["layers"] for s in live["stages"]] if live else None
    check("plan --workers gives serve's split", rc == 0 and planned == served, (planned, served, err))
    check("plan --devices with the workers' limits gives the same",
          rc2 == 0 and [s["layers"] for s in sized["stages"]] == served, (sized, served))
    check("the split follows memory (the bigger worker holds more layers)",
          served[1][1] - served[1][0] > served[0][1] - served[0][0], served)
finally:
    stop(procs)

checks.finish()
