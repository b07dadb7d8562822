#!/usr/bin/python3
"""`serve` with API keys and a model that has no chat template.

- /v1/chat/completions is refused with a 400 that says why and what to do;
  /v1/completions works.
- The same keys guard the gRPC Inference API: a call without the
  `authorization` metadata is UNAUTHENTICATED, with it it succeeds (a raw
  gRPC call: no stubs needed for the check).
- With one sequence slot and no queue, a second request is 429.
- An unsupported architecture is refused in one line before any worker
  is asked; `inspect` says whether a model runs.
- A request body that is not JSON, an unknown path, and a key file with no
  key are each a clear error, never a crash.
Usage: http_serve_test.py LAYERPOOL SHARED_DIR"""
import http.client, json, os, subprocess, sys, tempfile

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from checks import Checker, stop  # noqa: E402

lp, shared = sys.argv[1], os.environ.get("LAYERPOOL_SHARED") or sys.argv[2]
model = os.path.join(shared, "models/synth-12L/synth-12L-Q4_K_M.gguf")
if not os.path.isfile(model):
    sys.exit(f"FAIL: shared data not found at {shared}")
procs = []
checks = Checker()
check = checks.check
KEY = "sk-serve-test"




def start(args, lines=1):
    p = subprocess.Popen([lp, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    return p, [p.stdout.readline().strip().split("listening on ")[-1] for _ in range(lines)]


try:
    scratch = tempfile.mkdtemp(prefix="lp_serve_")
    keys = os.path.join(scratch, "keys")
    with open(keys, "w") as f:
        f.write(KEY + "\n")
    empty = os.path.join(scratch, "empty")
    open(empty, "w").close()

    bad = subprocess.run([lp, "serve", "--model", model, "--workers", "127.0.0.1:1",
                          "--api-key-file", empty], capture_output=True, text=True, timeout=30)
    check("a key file with no key is refused", bad.returncode == 1 and "no API key" in bad.stderr,
          bad.stderr)

    falcon = os.path.join(shared, "models/vocab/ggml-vocab-falcon.gguf")
    bad = subprocess.run([lp, "serve", "--model", falcon, "--workers", "127.0.0.1:1", "--http", "off"],
                         capture_output=True, text=True, timeout=30)
    check("an unsupported architecture is one line before any worker is asked",
          bad.returncode == 1 and bad.stderr.count("\n") == 1
          and "architecture 'falcon' is not supported yet" in bad.stderr, bad.stderr)
    inspect = subprocess.run([lp, "inspect", "--no-tensors", falcon], capture_output=True, text=True)
    check("inspect says whether a model runs", inspect.returncode == 0
          and "runs on layerpool: no: architecture 'falcon'" in inspect.stdout, inspect.stdout)

    workers = [start(["worker", "--listen", "127.0.0.1:0", "--threads", "1"])[1][0] for _ in range(2)]
    serve, (grpc_addr, http_addr) = start(
        ["serve", "--model", model, "--workers", ",".join(workers), "--ctx", "256",
         "--max-sequences", "1", "--max-queue", "0",
         "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--api-key-file", keys], lines=2)
    host, port = http_addr.rsplit(":", 1)

    def post(path, body, key=KEY):
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.request("POST", path, body=body if isinstance(body, str) else json.dumps(body),
                     headers={"Authorization": f"Bearer {key}"})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, json.loads(data) if data else None

    status, body = post("/v1/chat/completions",
                        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    msg = body["error"]["message"] if body and "error" in body else ""
    check("chat without a chat template: 400 saying why", status == 400
          and "no chat template" in msg and "--chat-template" in msg, f"{status} {body}")
    status, body = post("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 4,
                                            "temperature": 0})
    check("completions still work", status == 200 and body["usage"]["completion_tokens"] == 4,
          f"{status} {body}")
    status, body = post("/v1/completions", "{not json")
    check("a body that is not JSON is 400", status == 400 and body["error"]["param"] == "body",
          f"{status} {body}")
    status, body = post("/v1/nothing", {})
    check("an unknown path is 404 in OpenAI's error shape", status == 404 and "error" in body,
          f"{status} {body}")

    # One sequence slot and no queue: a second request while one streams is
    # 429, and the slot is free again once the first is done.
    first = http.client.HTTPConnection(host, int(port), timeout=60)
    first.request("POST", "/v1/completions", headers={"Authorization": f"Bearer {KEY}"},
                  body=json.dumps({"prompt": "Once upon a time", "max_tokens": 200, "stream": True}))
    stream = first.getresponse()
    stream.readline()  # the first event: the request holds the slot
    status, body = post("/v1/completions", {"prompt": "x", "max_tokens": 2})
    check("a full admission queue is 429", status == 429
          and body["error"]["type"] == "rate_limit_error", f"{status} {body}")
    stream.read()
    first.close()
    status, body = post("/v1/completions", {"prompt": "x", "max_tokens": 2})
    check("and the slot serves again after", status == 200, f"{status} {body}")

    channel = grpc.insecure_channel(grpc_addr)
    describe = channel.unary_unary("/layerpool.v1.Inference/DescribeCluster",
                                   request_serializer=lambda _: b"",
                                   response_deserializer=lambda b: b)
    try:
        describe(None, timeout=10)
        check("gRPC without a key is UNAUTHENTICATED", False, "it answered")
    except grpc.RpcError as e:
        check("gRPC without a key is UNAUTHENTICATED", e.code() == grpc.StatusCode.UNAUTHENTICATED,
              e)
    try:
        reply = describe(None, timeout=10, metadata=[("authorization", f"Bearer {KEY}")])
        check("gRPC with the key answers", b"synth-12L-Q4_K_M" in reply, reply[:80])
    except grpc.RpcError as e:
        check("gRPC with the key answers", False, e)
finally:
    stop(procs)

checks.finish()
