#!/usr/bin/python3
"""A worker holds its share of the model, not the whole file, and refuses
a stage that does not fit its memory limit.

Writes a small 8-layer model with `layerpool synth`, serves it from four
workers (2 layers each), generates a few tokens so that every stage has
touched its weights, then reads each worker's resident pages of the model
file from /proc/PID/smaps. Then a worker with --mem-limit too small for its
stage: `serve` must fail with one error line naming that worker and the
shortfall.
Usage: cluster_memory_test.py LAYERPOOL PROTO_DIR"""
import os, signal, subprocess, sys, tempfile

lp, proto_dir = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="lp_mem_")
model = os.path.join(tmp, "mem8.gguf")
subprocess.run([lp, "synth", "--dim", "512", "--layers", "8", "--heads", "8", "--kv-heads", "4",
                "--ffn", "2048", "--vocab", "1024", "--type", "Q8_0", "-o", model],
               check=True, capture_output=True)
size = os.path.getsize(model)

gen = os.path.join(tmp, "gen")
os.mkdir(gen)
subprocess.run(["protoc", f"-I{proto_dir}", f"--python_out={gen}", f"--grpc_python_out={gen}",
                "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                "layerpool/v1/common.proto", "layerpool/v1/inference.proto"], check=True)
sys.path.insert(0, gen)
import grpc  # noqa: E402
from layerpool.v1 import inference_pb2 as pb, inference_pb2_grpc as pb_grpc  # noqa: E402
from layerpool.v1 import common_pb2  # noqa: E402

failures, procs = [], []


def start(args):
    p = subprocess.Popen([lp, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    line = p.stdout.readline().strip()
    return p, line[len("listening on "):] if line.startswith("listening on ") else None


def resident_bytes(pid, path):
    total, inside = 0, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                inside = fields[-1] == path
            elif inside and fields[0] == "Rss:":
                total += int(fields[1]) * 1024
    return total


try:
    workers = [start(["worker", "--listen", "127.0.0.1:0", "--threads", "1"]) for _ in range(4)]
    serve, address = start(["serve", "--http", "127.0.0.1:0", "--model", model, "--workers",
                            ",".join(a for _, a in workers), "--split", "2,2,2,2",
                            "--ctx", "256", "--listen", "127.0.0.1:0"])
    if address is None:
        failures.append(f"serve did not start: {serve.stderr.read()}")
    else:
        api = pb_grpc.InferenceStub(grpc.insecure_channel(address))
        n = sum(1 for r in api.Generate(pb.GenerateRequest(
            model="mem8", prompt="hello", n_predict=8,
            sampling=common_pb2.SamplingParams(temperature=0)), timeout=60) if r.HasField("token"))
        if n == 0:
            failures.append("no tokens generated")
        shares = [resident_bytes(p.pid, model) for p, _ in workers]
        print("resident bytes of the model file per worker:", shares, "of", size)
        # Each stage holds 2 of 8 layers (the first also the embedding, the
        # last the output head): about a quarter of the file, well under half.
        for i, rss in enumerate(shares):
            if rss > 0.4 * size:
                failures.append(f"worker {i} holds {rss} bytes of a {size}-byte file")
            if rss < 0.1 * size:
                failures.append(f"worker {i} holds only {rss} bytes: are its weights mapped?")
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=10)
    procs.clear()

    # A limit smaller than the stage: refused, naming the worker and the gap.
    small, small_addr = start(["worker", "--listen", "127.0.0.1:0", "--mem-limit", "4MiB"])
    big, big_addr = start(["worker", "--listen", "127.0.0.1:0"])
    out = subprocess.run([lp, "serve", "--http", "127.0.0.1:0", "--model", model, "--workers", f"{big_addr},{small_addr}",
                          "--split", "4,4", "--ctx", "256", "--listen", "127.0.0.1:0"],
                         capture_output=True, text=True, timeout=60)
    errors = [l for l in out.stderr.splitlines() if l.startswith("error:")]
    if out.returncode != 1 or len(errors) != 1 or small_addr not in errors[0] \
            or "short by" not in errors[0]:
        failures.append(f"mem-limit refusal: rc={out.returncode} {out.stderr!r}")
    else:
        print("ok ", errors[0])
finally:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)

for f in failures:
    print("FAIL", f)
sys.exit(1 if failures else 0)
