#!/usr/bin/python3
"""Soak: many concurrent streams for minutes, through a two-stage cluster.

Starts two workers and `serve` on synth-12L, runs 8 prompts alone for their
greedy tokens, then keeps 64 streams going (8 copies of each prompt, a new
request as soon as one ends) for SECONDS. Checks: no error at all, every
stream's tokens equal to its prompt's solo run, and the resident memory of
every process flat: growth under 5% (plus 8 MiB of slack for small
processes) from the end of the first minute's warm-up (or a third of the run,
when shorter) to the end. Prints streams, tokens/s and each process's RSS,
the figures bench/results records.
Usage: cluster_soak_test.py LAYERPOOL SHARED_DIR PROTO_DIR [SECONDS, default 60]"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from checks import Checker  # noqa: E402
from inference_client import Processes, cluster_test_args, stubs  # noqa: E402

lp, model, proto_dir = cluster_test_args(sys.argv)
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 60
grpc, pb, pb_grpc, common_pb2 = stubs(proto_dir)
c = Checker()
procs = Processes(lp)
STREAMS, N = 64, 24


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


try:
    workers = [procs.start(["worker", "--listen", "127.0.0.1:0", "--threads", "1"])
               for _ in range(2)]
    serve, address = procs.start([
        "serve", "--model", model, "--listen", "127.0.0.1:0", "--ctx", "256",
        "--max-sequences", "32", "--max-queue", "64",
        "--workers", ",".join(a for _, a in workers)])
    api = pb_grpc.InferenceStub(grpc.insecure_channel(address))
    named = [("coordinator", serve.pid)] + [(f"worker {i}", w.pid) for i, (w, _) in enumerate(workers)]

    def generate(prompt):
        req = pb.GenerateRequest(model="synth-12L-Q4_K_M", prompt=prompt, n_predict=N,
                                 sampling=common_pb2.SamplingParams(temperature=0))
        return [r.token.token for r in api.Generate(req, timeout=120) if r.HasField("token")]

    prompts = [f"Tale {i}: once the {w} saw" for i, w in
               enumerate(["fox", "owl", "crow", "wolf", "hare", "bear", "frog", "lynx"])]
    solo = {p: generate(p) for p in prompts}

    stop_at = time.monotonic() + seconds
    lock = threading.Lock()
    done, tokens, errors, mismatches = [0], [0], [], []

    def client(k):
        prompt = prompts[k % len(prompts)]
        while time.monotonic() < stop_at:
            try:
                got = generate(prompt)
            except grpc.RpcError as e:
                with lock:
                    errors.append(f"{e.code()} {e.details()}")
                continue
            with lock:
                done[0] += 1
                tokens[0] += len(got)
                if got != solo[prompt]:
                    mismatches.append(prompt)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(STREAMS)]
    start = time.monotonic()
    for t in threads:
        t.start()
    warm = min(60, seconds / 3)
    time.sleep(warm)
    rss_warm = {name: rss_kib(pid) for name, pid in named}
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    rss_end = {name: rss_kib(pid) for name, pid in named}

    print(f"     {STREAMS} concurrent streams for {elapsed:.0f} s: {done[0]} requests, "
          f"{tokens[0] / elapsed:.1f} tokens/s, {len(errors)} errors")
    for name, _ in named:
        print(f"     {name}: RSS {rss_warm[name] / 1024:.1f} MiB after {warm:.0f} s warm-up, "
              f"{rss_end[name] / 1024:.1f} MiB at the end")
    c.check("every request completed without an error", not errors, errors[:3])
    c.check("every stream equals its prompt's solo run", not mismatches and done[0] >= STREAMS,
            f"{len(mismatches)} differ of {done[0]}: {mismatches[:3]}")
    for name, _ in named:
        grew = rss_end[name] - rss_warm[name]
        c.check(f"{name}'s memory is flat after warm-up", grew <= 0.05 * rss_warm[name] + 8192,
                f"{rss_warm[name]} -> {rss_end[name]} KiB")
finally:
    for name in procs.stop():
        c.check(f"{name} exits within 10 s of SIGTERM", False)
c.finish()
