#!/usr/bin/python3
"""A cluster on loopback, driven by a client that knows only the public
.proto files (stubs generated here with protoc; nothing of layerpool is
linked or imported).

Starts three `layerpool worker` processes and `layerpool serve` over them,
then checks: DescribeCluster, Tokenize/Detokenize, 8 concurrent Generate
calls each giving exactly the tokens it gives alone, INVALID_ARGUMENT naming
the field for bad requests, and that SIGKILL of a worker mid-generation ends
the stream with UNAVAILABLE naming the stage within 5 s while the
coordinator stays up and reports the stage DOWN; and the same for a worker
that stalls (SIGSTOP).
Usage: grpc_client_test.py LAYERPOOL SHARED_DIR PROTO_DIR"""
import concurrent.futures, os, signal, subprocess, sys, tempfile, time

lp, shared, proto_dir = sys.argv[1], os.environ.get("LAYERPOOL_SHARED") or sys.argv[2], sys.argv[3]
model = os.path.join(shared, "models/synth-12L/synth-12L-Q4_K_M.gguf")
if not os.path.isfile(model):
    sys.exit(f"FAIL: shared data not found at {shared}")

# Stubs from the .proto files alone.
gen = tempfile.mkdtemp(prefix="lp_client_")
subprocess.run(["protoc", f"-I{proto_dir}", f"--python_out={gen}", f"--grpc_python_out={gen}",
                "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                "layerpool/v1/common.proto", "layerpool/v1/inference.proto"], check=True)
sys.path.insert(0, gen)
import grpc  # noqa: E402
from layerpool.v1 import inference_pb2 as pb, inference_pb2_grpc as pb_grpc  # noqa: E402
from layerpool.v1 import common_pb2  # noqa: E402

failures = []
procs = []


def start(args):
    p = subprocess.Popen([lp, *args], stdout=subprocess.PIPE, text=True)
    procs.append(p)
    line = p.stdout.readline().strip()
    if not line.startswith("listening on "):
        raise SystemExit(f"FAIL: {args[0]} did not start: {line!r}")
    return p, line[len("listening on "):]


try:
    workers = [start(["worker", "--listen", "127.0.0.1:0", "--threads", "1"]) for _ in range(3)]
    serve, address = start(["serve", "--http", "127.0.0.1:0", "--model", model, "--workers",
                            ",".join(a for _, a in workers), "--split", "3,4,5",
                            "--ctx", "2048", "--max-sequences", "8", "--listen", "127.0.0.1:0"])
    channel = grpc.insecure_channel(address)
    api = pb_grpc.InferenceStub(channel)

    d = api.DescribeCluster(pb.DescribeClusterRequest(), timeout=10)
    model_id = d.model.id
    if model_id != "synth-12L-Q4_K_M" or len(d.stages) != 3 or d.model.n_layer != 12:
        failures.append(f"describe: {d}")
    if [(s.layers.first, s.layers.last) for s in d.stages] != [(0, 2), (3, 6), (7, 11)]:
        failures.append(f"stage layers: {[(s.layers.first, s.layers.last) for s in d.stages]}")
    if any(s.state != common_pb2.STAGE_STATE_READY for s in d.stages):
        failures.append("a stage is not READY after start")
    # Workers on one host pass hidden states over their Unix sockets.
    if [s.link_to_next for s in d.stages] != ["unix socket", "unix socket", ""]:
        failures.append(f"stage links: {[s.link_to_next for s in d.stages]}")

    t = api.Tokenize(pb.TokenizeRequest(text="Once upon a time"), timeout=10)
    back = api.Detokenize(pb.DetokenizeRequest(tokens=t.tokens, remove_special=True), timeout=10)
    if len(t.tokens) < 2 or back.text.strip() != "Once upon a time":
        failures.append(f"tokenize round trip: {list(t.tokens)} -> {back.text!r}")

    def generate(prompt, n=16, **sampling):
        req = pb.GenerateRequest(model=model_id, prompt=prompt, n_predict=n,
                                 sampling=common_pb2.SamplingParams(temperature=0, **sampling))
        tokens, done = [], None
        for r in api.Generate(req, timeout=60):
            if r.HasField("token"):
                tokens.append(r.token.token)
            else:
                done = r.done
        return tokens, done

    prompts = [f"Story {i}: the {w} went to" for i, w in
               enumerate(["cat", "dog", "bird", "fish", "king", "girl", "tree", "ship"])]
    alone = [generate(p) for p in prompts]
    for tokens, done in alone:
        if len(tokens) == 0 or done is None:
            failures.append("a generation produced no tokens or no done message")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(generate, prompts))
    for p, a, b in zip(prompts, alone, together):
        if a[0] != b[0]:
            failures.append(f"concurrent {p!r}: {b[0]} != alone {a[0]}")
    if alone[0][1].finish_reason not in (pb.FINISH_REASON_LENGTH, pb.FINISH_REASON_EOS):
        failures.append(f"finish reason {alone[0][1].finish_reason}")

    # Bad requests: INVALID_ARGUMENT, and the message names the field.
    bad = [
        (dict(model="", prompt="x"), "model"),
        (dict(model="llama-9000", prompt="x"), "model"),
        (dict(model=model_id, prompt="x", n_predict=-1), "n_predict"),
        (dict(model=model_id, prompt="x", sampling=common_pb2.SamplingParams(top_p=1.5)), "top_p"),
        (dict(model=model_id, prompt="x", sampling=common_pb2.SamplingParams(temperature=float("nan"))),
         "temperature"),
        (dict(model=model_id, prompt_tokens=common_pb2.TokenIds(ids=[1, 10 ** 6])), "prompt_tokens"),
        (dict(model=model_id, prompt_tokens=common_pb2.TokenIds(ids=[1] * 3000)), "context"),
        (dict(model=model_id), "prompt"),
    ]
    for fields, needle in bad:
        try:
            list(api.Generate(pb.GenerateRequest(**fields), timeout=10))
            failures.append(f"bad request {fields} accepted")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.INVALID_ARGUMENT or needle not in e.details():
                failures.append(f"bad request {needle}: {e.code()} {e.details()!r}")

    # Kill stage 1's worker in the middle of a long generation.
    req = pb.GenerateRequest(model=model_id, prompt="A long story", n_predict=1900,
                             sampling=common_pb2.SamplingParams(temperature=0))
    stream = api.Generate(req, timeout=60)
    got = 0
    killed_at = None
    try:
        for r in stream:
            if r.HasField("token"):
                got += 1
                if got == 8:
                    os.kill(workers[1][0].pid, signal.SIGKILL)
                    killed_at = time.monotonic()
            elif killed_at is not None:
                failures.append("the stream ended normally after the worker was killed")
        failures.append(f"no error after the kill ({got} tokens)")
    except grpc.RpcError as e:
        waited = time.monotonic() - (killed_at or time.monotonic())
        if e.code() != grpc.StatusCode.UNAVAILABLE or "stage 1" not in e.details():
            failures.append(f"after kill: {e.code()} {e.details()!r}")
        elif waited > 5:
            failures.append(f"UNAVAILABLE came {waited:.1f} s after the kill")
        else:
            print(f"ok  UNAVAILABLE {waited * 1000:.0f} ms after the kill: {e.details()}")

    # The coordinator is still up, says so, and refuses new work clearly.
    time.sleep(1.5)
    d = api.DescribeCluster(pb.DescribeClusterRequest(), timeout=10)
    if d.stages[1].state != common_pb2.STAGE_STATE_DOWN:
        failures.append(f"stage 1 state {d.stages[1].state}, expected DOWN")
    try:
        generate("again")
        failures.append("generate after the kill succeeded")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAVAILABLE:
            failures.append(f"generate after kill: {e.code()} {e.details()!r}")

    # A worker that stalls (SIGSTOP: its sockets stay open, nothing answers)
    # is caught by the health checks, within 5 s too.
    workers = [start(["worker", "--listen", "127.0.0.1:0", "--threads", "1"]) for _ in range(2)]
    serve, address = start(["serve", "--http", "127.0.0.1:0", "--model", model, "--workers",
                            ",".join(a for _, a in workers), "--ctx", "2048",
                            "--listen", "127.0.0.1:0"])
    api = pb_grpc.InferenceStub(grpc.insecure_channel(address))
    stopped_at = None
    try:
        for r in api.Generate(req, timeout=60):
            if r.HasField("token") and stopped_at is None:
                os.kill(workers[1][0].pid, signal.SIGSTOP)
                stopped_at = time.monotonic()
        failures.append("no error after the worker stalled")
    except grpc.RpcError as e:
        waited = time.monotonic() - (stopped_at or time.monotonic())
        if e.code() != grpc.StatusCode.UNAVAILABLE or "stage 1" not in e.details() or waited > 5:
            failures.append(f"after stall ({waited:.1f} s): {e.code()} {e.details()!r}")
        else:
            print(f"ok  UNAVAILABLE {waited * 1000:.0f} ms after the stall: {e.details()}")
    os.kill(workers[1][0].pid, signal.SIGCONT)
finally:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            failures.append(f"{p.args[1]} did not exit within 10 s of SIGTERM")
            p.kill()

for f in failures:
    print("FAIL", f)
sys.exit(1 if failures else 0)
