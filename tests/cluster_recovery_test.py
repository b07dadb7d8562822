#!/usr/bin/python3
"""A cluster that loses workers mid-generation and carries on.

Workers listen on fixed loopback ports so that one can be restarted where it
was. Through the public gRPC API (stubs from the .proto files alone):

Cluster A (2 stages, no spares, --replay-budget 20):
  - three concurrent greedy streams while stage 1's worker is killed (-9) and
    restarted on its port: each stream's tokens equal its undisturbed run;
  - a seeded stream (temperature 0.9) while stage 0's worker is killed and
    restarted: equal to its undisturbed run;
  - a greedy stream while stage 1's worker stalls (SIGSTOP) for 3 s and
    wakes: equal, and the worker kept its stage (no second load).
Cluster B (2 stages, one spare, the default budget of 2 s):
  - stage 1's worker killed for good: the spare takes the stage, the stream
    equals its undisturbed run, DescribeCluster names the spare;
  - the spare killed too, nothing left: UNAVAILABLE naming stage 1 within
    5 s, new requests refused; a worker restarted on stage 1's first
    address: the cluster serves again, without a restart, within 10 s;
  - a second coordinator on B's workers is refused, naming the lease, and B
    serves on unchanged;
  - the coordinator killed mid-generation: each worker (--coordinator-timeout
    2) ends its lease and frees its sequences within 5 s, and keeps its stage;
    a new coordinator then takes both over without a second load and gives
    the same tokens; stopped with SIGTERM, it releases them, and the next
    coordinator starts at once.
Cluster C (3 stages 4,4,4, no spares, --replan-after 1, --replay-budget 30):
  - stage 1's worker killed for good under two streams: after 1 s the split
    is planned again over the two workers left, both streams equal their
    undisturbed runs, and DescribeCluster shows two stages over all 12
    layers.
Prints each recovery as the coordinator logged it (failure noticed to
chain back).
Usage: cluster_recovery_test.py LAYERPOOL SHARED_DIR PROTO_DIR"""
import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from checks import Checker  # noqa: E402
from inference_client import Processes, cluster_test_args, free_port, stubs  # noqa: E402

lp, model, proto_dir = cluster_test_args(sys.argv)
grpc, pb, pb_grpc, common_pb2 = stubs(proto_dir)
c = Checker()
procs = Processes(lp)
N = 96  # tokens per stream


def worker(port, *extra):
    return procs.start(["worker", "--listen", f"127.0.0.1:{port}", "--threads", "1", *extra])[0]


def serve(ports, *extra, split="6,6"):
    serve_process, address = procs.start(["serve", "--model", model, "--listen", "127.0.0.1:0", "--ctx", "512",
                              "--workers", ",".join(f"127.0.0.1:{p}" for p in ports),
                              "--split", split, *extra])
    return serve_process, pb_grpc.InferenceStub(grpc.insecure_channel(address))


def generate(api, prompt, fault=None, at=10, **sampling):
    """Token ids of one stream; `fault()` runs when `at` tokens have come."""
    sampling.setdefault("temperature", 0)
    req = pb.GenerateRequest(model="synth-12L-Q4_K_M", prompt=prompt, n_predict=N,
                             sampling=common_pb2.SamplingParams(**sampling))
    tokens = []
    for r in api.Generate(req, timeout=120):
        if not r.HasField("token"):
            continue
        tokens.append(r.token.token)
        if fault is not None and len(tokens) == at:
            fault()
    return tokens


def recoveries(serve_process, what):
    """Prints the coordinator's 'pipeline back after N ms' lines."""
    with open(serve_process.log_path) as f:
        for line in f:
            if "pipeline back after" in line:
                print(f"     {what}: {line.strip()}")


def describe(api):
    return api.DescribeCluster(pb.DescribeClusterRequest(), timeout=10)


try:
    # ------------------------------------------------------------ cluster A
    ports = [free_port(), free_port()]
    workers = [worker(p) for p in ports]
    serve_a, api = serve(ports, "--replay-budget", "20")
    prompts = ["The old ship sailed", "A small bird sang", "In the dark forest"]
    alone = [generate(api, p) for p in prompts]
    seeded_alone = generate(api, prompts[0], temperature=0.9, seed=42)
    c.check("undisturbed streams run", all(len(t) == N for t in alone + [seeded_alone]),
            [len(t) for t in alone])

    def restart(i, sig=signal.SIGKILL):
        def go():
            os.kill(workers[i].pid, sig)
            workers[i].wait()
            workers[i] = worker(ports[i])
        return go

    # Three streams; the first one's fault kills stage 1 under all of them.
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        runs = [pool.submit(generate, api, prompts[0], restart(1), 10)]
        runs += [pool.submit(generate, api, p) for p in prompts[1:]]
        together = [r.result() for r in runs]
    for p, a, t in zip(prompts, alone, together):
        c.check(f"stage 1 killed and restarted: {p!r} equals its undisturbed run", t == a,
                f"{len(t)} tokens, first difference at "
                f"{next((i for i, (x, y) in enumerate(zip(t, a)) if x != y), min(len(t), len(a)))}")
    seeded = generate(api, prompts[0], restart(0), temperature=0.9, seed=42)
    c.check("stage 0 killed and restarted: the seeded stream equals its undisturbed run",
            seeded == seeded_alone, f"{seeded[:16]} vs {seeded_alone[:16]}")

    def stall():
        os.kill(workers[1].pid, signal.SIGSTOP)
        threading.Timer(3.0, lambda: os.kill(workers[1].pid, signal.SIGCONT)).start()

    def worker_log(i):
        with open(workers[i].log_path) as f:
            return f.read()

    kept_before = worker_log(1).count("kept layers")
    stalled = generate(api, prompts[1], stall)
    c.check("stage 1 stalled 3 s and woke: the stream equals its undisturbed run",
            stalled == alone[1], f"{len(stalled)} tokens")
    log = worker_log(1)
    c.check("the woken worker kept its stage (no second load)",
            log.count("kept layers") > kept_before and log.count("loaded layers") == 1, log[-500:])
    recoveries(serve_a, "A (kill stage 1, kill stage 0, stall stage 1 for 3 s)")
    d = describe(api)
    c.check("cluster A is READY again", all(s.state == common_pb2.STAGE_STATE_READY for s in d.stages),
            str(d.stages))

    # ------------------------------------------------------------ cluster B
    ports = [free_port(), free_port()]
    spare_port = free_port()
    quick = ("--coordinator-timeout", "2")
    workers = [worker(p, *quick) for p in ports]
    spare = worker(spare_port, *quick)
    serve_b, api = serve(ports, "--spares", f"127.0.0.1:{spare_port}")
    before = generate(api, prompts[2])

    def kill1():
        os.kill(workers[1].pid, signal.SIGKILL)

    moved = generate(api, prompts[2], kill1)
    c.check("stage 1 killed for good: the spare takes over and the stream is unchanged",
            moved == before, f"{len(moved)} tokens")
    d = describe(api)
    c.check("DescribeCluster names the spare for stage 1",
            d.stages[1].worker_address == f"127.0.0.1:{spare_port}", d.stages[1].worker_address)

    def kill_spare():
        os.kill(spare.pid, signal.SIGKILL)

    killed_at, error = None, None
    try:
        req = pb.GenerateRequest(model="synth-12L-Q4_K_M", prompt=prompts[2], n_predict=N,
                                 sampling=common_pb2.SamplingParams(temperature=0))
        for i, r in enumerate(api.Generate(req, timeout=60)):
            if i == 10:
                kill_spare()
                killed_at = time.monotonic()
    except grpc.RpcError as e:
        error = e
    waited = time.monotonic() - (killed_at or 0)
    c.check("nothing left: UNAVAILABLE naming stage 1 within 5 s",
            error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
            and "stage 1" in error.details() and waited <= 5,
            f"{waited:.1f} s: {error and error.code()} {error and error.details()}")
    print(f"     UNAVAILABLE {waited:.2f} s after the last worker of stage 1 died")
    try:
        generate(api, "again")
        c.check("a new request is refused while nothing holds stage 1", False, "it ran")
    except grpc.RpcError as e:
        c.check("a new request is refused while nothing holds stage 1",
                e.code() == grpc.StatusCode.UNAVAILABLE, f"{e.code()} {e.details()}")

    workers[1] = worker(ports[1], *quick)  # stage 1's first worker comes back
    back_at, served = time.monotonic(), None
    while time.monotonic() - back_at < 10 and served is None:
        try:
            served = generate(api, prompts[2])
        except grpc.RpcError:
            time.sleep(0.2)
    c.check("stage 1's worker back on its address: the cluster serves again within 10 s",
            served == before, f"{served and len(served)} tokens")
    print(f"     serving again {time.monotonic() - back_at:.2f} s after the worker came back")
    recoveries(serve_b, "B (spare takes stage 1, then stage 1's worker is back)")
    d = describe(api)
    c.check("DescribeCluster names stage 1's first worker again",
            d.stages[1].worker_address == f"127.0.0.1:{ports[1]}", d.stages[1].worker_address)

    refused = subprocess.run(
        [lp, "serve", "--model", model, "--listen", "127.0.0.1:0", "--ctx", "512",
         "--workers", ",".join(f"127.0.0.1:{p}" for p in ports), "--split", "6,6"],
        capture_output=True, text=True, timeout=60)
    c.check("a second coordinator on the same workers is refused, naming the lease",
            refused.returncode != 0 and "serves another coordinator" in refused.stderr,
            refused.stderr[-400:])
    c.check("... and the first serves on unchanged", generate(api, prompts[2]) == before)

    def kill_coordinator():
        os.kill(serve_b.pid, signal.SIGKILL)

    try:
        generate(api, prompts[0], kill_coordinator)
    except grpc.RpcError:
        pass
    killed_at = time.monotonic()

    def freed(w):
        with open(w.log_path) as f:
            return "its lease ended; freed 1 sequences" in f.read()

    while time.monotonic() - killed_at < 5 and not all(freed(w) for w in workers):
        time.sleep(0.1)
    c.check("the coordinator killed: every worker ends its lease and frees its sequences "
            "within 5 s", all(freed(w) for w in workers),
            [open(w.log_path).read()[-300:] for w in workers])

    kept_before = [worker_log(i).count("kept layers") for i in range(2)]
    serve_c, api = serve(ports)
    c.check("a new coordinator takes the workers over: its stream equals the first one's",
            generate(api, prompts[2]) == before)
    c.check("... and both workers kept their stages (no second load)",
            all(worker_log(i).count("kept layers") > kept_before[i] for i in range(2)))
    serve_c.send_signal(signal.SIGTERM)
    serve_c.wait(timeout=10)
    started = time.monotonic()
    serve_d, api = serve(ports)
    c.check("stopped with SIGTERM, it released them: the next coordinator serves at once",
            generate(api, prompts[2]) == before and time.monotonic() - started < 5,
            f"{time.monotonic() - started:.1f} s")

    # ------------------------------------------------------------ cluster C
    ports = [free_port(), free_port(), free_port()]
    workers = [worker(p) for p in ports]
    serve_c3, api = serve(ports, "--replay-budget", "30", "--replan-after", "1", split="4,4,4")
    alone = [generate(api, p) for p in prompts[:2]]

    def kill_middle():
        os.kill(workers[1].pid, signal.SIGKILL)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(generate, api, prompts[0], kill_middle, 10),
                pool.submit(generate, api, prompts[1])]
        together = [r.result() for r in runs]
    for p, a, t in zip(prompts, alone, together):
        c.check(f"stage 1 gone for good, the split planned again: {p!r} equals its "
                "undisturbed run", t == a, f"{len(t)} tokens")
    d = describe(api)
    left = [f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[2]}"]
    c.check("DescribeCluster: two stages on the two workers left, covering all 12 layers",
            [s.worker_address for s in d.stages] == left
            and d.stages[0].layers.first == 0 and d.stages[-1].layers.last == 11
            and d.stages[0].layers.last + 1 == d.stages[1].layers.first,
            str(d.stages))
    recoveries(serve_c3, "C (stage 1 of 3 gone for good, split planned again)")
    with open(serve_c3.log_path) as f:
        replanned = [line.strip() for line in f if "planned again over 2 workers" in line]
    c.check("the coordinator says it planned the split again", len(replanned) == 1, replanned)
finally:
    for name in procs.stop():
        c.check(f"{name} exits within 10 s of SIGTERM", False)
c.finish()
