#!/usr/bin/python3
"""A home lab's network failing under a cluster: the coordinator and two
workers each in a Linux network namespace of its own (a "host"), joined by
veth pairs to a bridge that also gives this test (in the root namespace) an
address on that network. Through the public gRPC API:

  - stage 1's host loses its link for 3 s mid-generation (its veth down, then
    up): the stream completes equal to its undisturbed run (--replay-budget
    20), and the worker kept its stage;
  - stage 1's host loses its link for good, under the default replay budget:
    the stream ends with UNAVAILABLE naming stage 1 within 5 s, new requests
    are refused; the link comes back: the cluster serves again, without a
    restart, within 10 s, and gives the undisturbed tokens.

Needs root (ip netns, ip link): without the right to make network
namespaces it says so and exits 77, which ctest counts as skipped.
Everything it makes is named lpt-* and removed at the end, also on failure.
Usage: cluster_netns_test.py LAYERPOOL SHARED_DIR PROTO_DIR"""
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from checks import Checker  # noqa: E402
from inference_client import Processes, cluster_test_args, stubs  # noqa: E402

lp, model, proto_dir = cluster_test_args(sys.argv)
BRIDGE = "lpt-br0"
HOSTS = ["lpt-c", "lpt-w0", "lpt-w1"]
ADDRESS = {h: f"10.78.0.{10 + i}" for i, h in enumerate(HOSTS)}
N = 64  # tokens per stream


def sh(*cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def teardown():
    for h in HOSTS:
        sh("ip", "netns", "del", h, check=False)
    sh("ip", "link", "del", BRIDGE, check=False)


def setup():
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", "10.78.0.1/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for h in HOSTS:
        sh("ip", "netns", "add", h)
        sh("ip", "link", "add", f"v-{h}", "type", "veth", "peer", "name", "eth0", "netns", h)
        sh("ip", "link", "set", f"v-{h}", "master", BRIDGE, "up")
        sh("ip", "-n", h, "addr", "add", f"{ADDRESS[h]}/24", "dev", "eth0")
        sh("ip", "-n", h, "link", "set", "eth0", "up")
        sh("ip", "-n", h, "link", "set", "lo", "up")


def link(host, up):
    sh("ip", "link", "set", f"v-{host}", "up" if up else "down")


teardown()
try:
    setup()
except (subprocess.CalledProcessError, FileNotFoundError) as e:
    teardown()
    why = e.stderr.strip() if isinstance(e, subprocess.CalledProcessError) else str(e)
    print(f"SKIP: cannot make network namespaces here (needs root and iproute2): {why}")
    sys.exit(77)

grpc, pb, pb_grpc, common_pb2 = stubs(proto_dir)
c = Checker()
procs = Processes(lp)
models = os.path.dirname(os.path.abspath(model))


def in_ns(host):
    return ("ip", "netns", "exec", host)


def serve(*extra):
    p, address = procs.start(
        ["serve", "--model", model, "--listen", f"{ADDRESS['lpt-c']}:0", "--http", "off",
         "--ctx", "512", "--split", "6,6", "--replan-after", "0",
         "--workers", ",".join(f"{ADDRESS[h]}:7000" for h in HOSTS[1:]), *extra],
        prefix=in_ns("lpt-c"))
    return p, pb_grpc.InferenceStub(grpc.insecure_channel(address))


def generate(api, prompt, fault=None, at=10):
    req = pb.GenerateRequest(model="synth-12L-Q4_K_M", prompt=prompt, n_predict=N,
                             sampling=common_pb2.SamplingParams(temperature=0))
    tokens = []
    for r in api.Generate(req, timeout=120):
        if r.HasField("token"):
            tokens.append(r.token.token)
            if fault is not None and len(tokens) == at:
                fault()
    return tokens


try:
    workers = [procs.start(["worker", "--listen", f"{ADDRESS[h]}:7000", "--threads", "1",
                            "--model-dir", models], prefix=in_ns(h))[0] for h in HOSTS[1:]]
    prompt = "The old ship sailed"

    # A cut of 3 s, inside a generous replay budget.
    serve_a, api = serve("--replay-budget", "20")
    before = generate(api, prompt)
    c.check("undisturbed stream across namespaces", len(before) == N, len(before))

    def cut_for_3s():
        link("lpt-w1", False)
        threading.Timer(3.0, lambda: link("lpt-w1", True)).start()

    cut = generate(api, prompt, cut_for_3s)
    c.check("stage 1's link cut for 3 s: the stream equals its undisturbed run", cut == before,
            f"{len(cut)} tokens")
    with open(workers[1].log_path) as f:
        log = f.read()
    c.check("stage 1's worker kept its stage (no second load)",
            log.count("loaded layers") == 1, log[-400:])
    with open(serve_a.log_path) as f:
        for line in f:
            if "pipeline back after" in line:
                print(f"     3-s cut: {line.strip()}")
    serve_a.send_signal(signal.SIGTERM)
    serve_a.wait(timeout=10)

    # A cut for good, under the default replay budget (2 s).
    serve_b, api = serve()
    c.check("a second coordinator takes the released workers", generate(api, prompt) == before)
    cut_at, error = None, None
    try:
        req = pb.GenerateRequest(model="synth-12L-Q4_K_M", prompt=prompt, n_predict=N,
                                 sampling=common_pb2.SamplingParams(temperature=0))
        for i, r in enumerate(api.Generate(req, timeout=60)):
            if i == 10:
                link("lpt-w1", False)
                cut_at = time.monotonic()
    except grpc.RpcError as e:
        error = e
    waited = time.monotonic() - (cut_at or 0)
    c.check("stage 1's link cut for good: UNAVAILABLE naming stage 1 within 5 s",
            error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
            and "stage 1" in error.details() and waited <= 5,
            f"{waited:.1f} s: {error and error.code()} {error and error.details()}")
    print(f"     UNAVAILABLE {waited:.2f} s after the cut")
    try:
        generate(api, prompt)
        c.check("a new request is refused while stage 1 is cut off", False, "it ran")
    except grpc.RpcError as e:
        c.check("a new request is refused while stage 1 is cut off",
                e.code() == grpc.StatusCode.UNAVAILABLE, f"{e.code()} {e.details()}")

    link("lpt-w1", True)
    back_at, served = time.monotonic(), None
    while time.monotonic() - back_at < 10 and served is None:
        try:
            served = generate(api, prompt)
        except grpc.RpcError:
            time.sleep(0.2)
    c.check("the link back: the cluster serves again within 10 s, the same tokens",
            served == before, f"{served and len(served)} tokens")
    print(f"     serving again {time.monotonic() - back_at:.2f} s after the link came back")
finally:
    for name in procs.stop():
        c.check(f"{name} exits within 10 s of SIGTERM", False)
    teardown()
c.finish()
