#!/usr/bin/python3
"""The HTTP front door end to end: two workers and `layerpool serve` on
loopback, driven by the official `openai` npm client (tests/http), by raw
HTTP for the SSE framing, disconnects and embeddings, and scraped by a real
Prometheus.

Checks: everything in tests/http/openai_client_test.mjs; the SSE framing
byte for byte (data: lines, one finish_reason, [DONE] last); that a client
that disconnects mid-stream frees its sequence on every stage (read back
through /metrics); embeddings through the pipeline equal to the in-process
`layerpool embed`'s to the float; 64 concurrent streaming chats each equal to its own solo
run at temperature 0; /health without a key, /metrics with one; Prometheus
(Debian's) scraping /metrics every second and answering queries with our
series; and a killed worker turning requests into 503 naming the stage.

Usage: http_api_test.py LAYERPOOL SHARED_DIR NODE_WORK_DIR"""
import concurrent.futures
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from checks import Checker, npm_ci, stop  # noqa: E402

lp, shared, node_dir = sys.argv[1], os.environ.get("LAYERPOOL_SHARED") or sys.argv[2], sys.argv[3]
here = os.path.dirname(os.path.abspath(__file__))
model = os.path.join(shared, "models/tinystories-656K/TinyStories-656K-Q8_0.gguf")
if not os.path.isfile(model):
    sys.exit(f"FAIL: shared data not found at {shared}")
model_id = "TinyStories-656K-Q8_0"
KEY = "sk-layerpool-test-key"
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

scratch = tempfile.mkdtemp(prefix="lp_http_")
procs = []
checks = Checker()
check = checks.check




def start(args, lines=1):
    p = subprocess.Popen([lp, *args], stdout=subprocess.PIPE, text=True)
    procs.append(p)
    out = [p.stdout.readline().strip() for _ in range(lines)]
    for line in out:
        if "listening on " not in line:
            raise SystemExit(f"FAIL: {args[0]} did not start: {out!r}")
    return p, [line.split("listening on ")[1] for line in out]


def request(method, path, body=None, headers=AUTH, timeout=60):
    conn = http.client.HTTPConnection(http_host, http_port, timeout=timeout)
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def chat(content, max_tokens=24, stream=False):
    body = {"model": model_id, "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens, "temperature": 0, "stream": stream}
    status, data = request("POST", "/v1/chat/completions", body)
    if status != 200:
        return None, f"{status} {data[:300]!r}"
    if not stream:
        return json.loads(data)["choices"][0]["message"]["content"], None
    text = ""
    for line in data.decode().split("\n"):
        if line.startswith("data: ") and line != "data: [DONE]":
            event = json.loads(line[6:])
            if "error" in event:
                return None, f"error event {event['error']}"
            for c in event["choices"]:
                text += c["delta"].get("content", "")
    return text, None


def metric(name, text):
    """The values of a metric family, {labels: value}."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, value = line.rsplit(" ", 1)
            out[key[len(name):]] = float(value)
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


try:
    key_file = os.path.join(scratch, "keys")
    with open(key_file, "w") as f:
        f.write("# test keys\n\n" + KEY + "\n")
    workers = [start(["worker", "--listen", "127.0.0.1:0", "--threads", "1"]) for _ in range(2)]
    serve, (grpc_address, http_address) = start(
        ["serve", "--model", model, "--workers", ",".join(a[0] for _, a in workers),
         # --batch 64: a long embedding input spans several micro-batches.
         "--split", "1,1", "--ctx", "512", "--batch", "64", "--max-sequences", "8",
         "--listen", "127.0.0.1:0",
         "--http", "127.0.0.1:0", "--api-key-file", key_file,
         "--chat-template", os.path.join(here, "chat_templates/templates/chatml.jinja")], lines=2)
    http_host, http_port = http_address.rsplit(":", 1)
    http_port = int(http_port)
    base = f"http://{http_address}"

    # --- the official client
    npm_ci(os.path.join(here, "http"), ("package.json", "package-lock.json",
                                        "openai_client_test.mjs"), node_dir, "openai")
    node = subprocess.run(["node", "openai_client_test.mjs"], cwd=node_dir, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "LAYERPOOL_BASE_URL": base + "/v1",
                               "LAYERPOOL_API_KEY": KEY, "LAYERPOOL_MODEL": model_id})
    print(node.stdout, end="")
    last = node.stdout.strip().splitlines()[-1] if node.stdout.strip() else ""
    check("openai npm client suite", node.returncode == 0 and last.endswith(" 0 failed"),
          f"rc {node.returncode}: {last} {node.stderr[-2000:]}")

    # --- health and metrics, keys
    status, data = request("GET", "/health", headers={})
    health = json.loads(data)
    check("/health needs no key and is ready", status == 200 and health["status"] == "ready"
          and len(health["stages"]) == 2, f"{status} {data!r}")
    status, _ = request("GET", "/metrics", headers={})
    check("/metrics needs the key", status == 401, status)
    status, data = request("GET", "/v1/models", headers={"Authorization": "Bearer nope"})
    err = json.loads(data).get("error", {})
    check("a wrong key is 401 in OpenAI's error shape", status == 401
          and err.get("type") == "authentication_error", f"{status} {data!r}")

    # --- SSE framing, byte for byte
    conn = http.client.HTTPConnection(http_host, http_port, timeout=60)
    conn.request("POST", "/v1/chat/completions", headers=AUTH, body=json.dumps(
        {"model": model_id, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8,
         "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}))
    r = conn.getresponse()
    raw = r.read().decode()
    conn.close()
    events = raw.split("\n\n")
    problems = []
    if r.getheader("Content-Type", "").split(";")[0] != "text/event-stream":
        problems.append(f"content type {r.getheader('Content-Type')}")
    if not raw.endswith("data: [DONE]\n\n") or events[-1] != "":
        problems.append(f"does not end with [DONE]: {raw[-80:]!r}")
    data_events = [e for e in events[:-1] if not e.startswith(":")]
    if any(not e.startswith("data: ") or "\n" in e for e in data_events):
        problems.append(f"an event is not one data: line: {data_events!r}")
    chunks = [json.loads(e[6:]) for e in data_events[:-1]]
    finishes = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    if len(finishes) != 1 or finishes[0]["choices"][0]["finish_reason"] != "length":
        problems.append(f"finish chunks: {finishes}")
    if not (chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 8):
        problems.append(f"usage chunk: {chunks[-1]}")
    if chunks[0]["choices"][0]["delta"].get("role") != "assistant":
        problems.append(f"first chunk: {chunks[0]}")
    check("SSE framing", not problems, problems)

    # --- a client that leaves mid-stream frees its sequence on every stage
    def sequences():
        _, text = request("GET", "/metrics")
        return metric("layerpool_stage_sequences", text.decode())

    sock = socket.create_connection((http_host, http_port))
    body = json.dumps({"model": model_id, "prompt": "Once upon a time", "max_tokens": 480,
                       "temperature": 0, "stream": True})
    sock.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                  f"{body}").encode())
    got = b""
    while got.count(b"data: ") < 3:
        got += sock.recv(4096)
    during = sequences()
    sock.close()
    t0 = time.time()
    after = sequences()
    while any(v > 0 for v in after.values()) and time.time() - t0 < 5:
        time.sleep(0.02)
        after = sequences()
    freed_in = time.time() - t0
    check("a disconnect frees the sequence on every stage",
          len(during) == 2 and all(v == 1 for v in during.values())
          and len(after) == 2 and all(v == 0 for v in after.values()) and freed_in < 2,
          f"during {during}, after {after} ({freed_in:.2f} s)")
    print(f"     (freed {freed_in * 1000:.0f} ms after the socket closed)")

    # --- embeddings through the pipeline equal the in-process ones
    texts = ["Once upon a time", "The cat sat on the mat.", "word " * 150] + \
            [f"Story {i} about a {w}." for i, w in enumerate(["dog", "bird", "fish", "king",
                                                              "girl", "tree", "ship", "moon"])]
    local = subprocess.run([lp, "embed", "--model", model], input="".join(json.dumps(t) + "\n" for t in texts),
                           capture_output=True, text=True, timeout=120)
    want = [json.loads(line) for line in local.stdout.splitlines()]
    status, data = request("POST", "/v1/embeddings", {"model": model_id, "input": texts})
    got = [d["embedding"] for d in json.loads(data)["data"]] if status == 200 else []
    check("embeddings through 2 stages equal the in-process engine's, to the float",
          local.returncode == 0 and len(want) == len(texts) and got == want,
          f"{status} {data[:200]!r} {local.stderr[-300:]}")
    norms = [sum(x * x for x in v) ** 0.5 for v in got]
    check("embeddings are L2-normalised", norms and all(abs(n - 1) < 1e-5 for n in norms), norms)
    status, data = request("POST", "/v1/embeddings", {"input": texts[1], "encoding_format": "base64"})
    import base64, struct  # noqa: E401,E402
    raw = base64.b64decode(json.loads(data)["data"][0]["embedding"]) if status == 200 else b""
    check("base64 embeddings are the float32 bytes",
          len(raw) == 4 * 128 and list(struct.unpack("<128f", raw)) == [struct.unpack("<f", struct.pack("<f", x))[0] for x in want[1]],
          f"{status} {data[:200]!r}")
    status, data = request("POST", "/v1/embeddings", {"input": ["ok", ""]})
    check("an empty input is 400 naming it", status == 400 and json.loads(data)["error"]["param"] == "input[1]",
          f"{status} {data!r}")

    # --- 64 concurrent streaming chats, each as it is alone
    prompts = [f"Tell me about the {w}." for w in
               ["cat", "dog", "bird", "fish", "king", "girl", "tree", "ship"]]
    alone = {p: chat(p, max_tokens=32) for p in prompts}
    bad = {p: e for p, (t, e) in alone.items() if e}
    check("solo runs", not bad, bad)
    # `run --chat` renders and tokenizes the prompt as the HTTP API does.
    local = subprocess.run([lp, "run", "--model", model, "--prompt", prompts[0], "--chat",
                            "--chat-template", os.path.join(here, "chat_templates/templates/chatml.jinja"),
                            "--n-predict", "32", "--temp", "0", "--output", "json"],
                           capture_output=True, text=True, timeout=60)
    run_text = json.loads(local.stdout)["text"] if local.returncode == 0 else local.stderr
    check("run --chat gives the HTTP chat's text", run_text == alone[prompts[0]][0],
          f"{run_text!r} vs {alone[prompts[0]][0]!r}")
    special = subprocess.run([lp, "run", "--model", model, "--prompt", "<|start_story|>Once",
                              "--parse-special", "--n-predict", "1", "--output", "json"],
                             capture_output=True, text=True, timeout=60)
    ids = json.loads(special.stdout)["prompt_tokens"] if special.returncode == 0 else []
    check("run --parse-special makes special-token text a token", ids[:2] == [1, 1], ids)
    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        futures = [(p, pool.submit(chat, p, 32, True)) for p in prompts * 8]
        results = [(p, f.result()) for p, f in futures]
    mismatches = [(p, t, e) for p, (t, e) in results if e or t != alone[p][0]]
    check("64 concurrent streaming chats equal their solo runs", not mismatches,
          mismatches[:3])

    # --- Prometheus scrapes /metrics
    prom_port = free_port()
    prom_dir = os.path.join(scratch, "prometheus")
    os.makedirs(prom_dir)
    with open(os.path.join(prom_dir, "prometheus.yml"), "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: layerpool
    authorization:
      credentials: {KEY}
    static_configs:
      - targets: ["{http_address}"]
""")
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={prom_dir}/prometheus.yml",
         f"--storage.tsdb.path={prom_dir}/data", f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(prom)

    def query(q):
        url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())["data"]["result"]

    import urllib.parse  # noqa: E402
    series, deadline = {}, time.time() + 30
    wanted = ["layerpool_generated_tokens_total", "layerpool_stage_up",
              "layerpool_http_requests_total", "layerpool_time_to_first_token_seconds_count",
              "layerpool_stage_busy_fraction", "layerpool_stage_kv_cells_total",
              "layerpool_queue_depth", "layerpool_sequences_active"]
    while time.time() < deadline and len(series) < len(wanted):
        time.sleep(1)
        for q in wanted:
            try:
                r = query(q)
                if r:
                    series[q] = r
            except OSError:
                pass
    problems = [q for q in wanted if q not in series]
    if not problems:
        gen = float(series["layerpool_generated_tokens_total"][0]["value"][1])
        ups = [float(s["value"][1]) for s in series["layerpool_stage_up"]]
        busy = [float(s["value"][1]) for s in series["layerpool_stage_busy_fraction"]]
        if gen < 64 * 32:
            problems.append(f"generated tokens {gen}")
        if ups != [1.0, 1.0]:
            problems.append(f"stage_up {ups}")
        if not all(0 <= b <= 1 for b in busy):
            problems.append(f"busy {busy}")
    check("Prometheus scrapes our series with sane values", not problems, problems)

    # --- a worker dies: 503 naming the stage, /health degraded
    workers[1][0].kill()
    t0 = time.time()
    status, data = 0, b""
    while time.time() - t0 < 10:
        status, data = request("POST", "/v1/chat/completions",
                               {"model": model_id, "messages": [{"role": "user", "content": "x"}],
                                "max_tokens": 4}, timeout=15)
        if status == 503:
            break
        time.sleep(0.2)
    check("a dead worker makes requests 503 naming the stage",
          status == 503 and b"stage 1" in data, f"{status} {data[:300]!r}")
    status, data = request("GET", "/health", headers={})
    check("/health says degraded and why", status == 503 and json.loads(data)["status"] == "degraded"
          and "stage 1" in json.loads(data).get("reason", ""), f"{status} {data!r}")
finally:
    stop(procs)
    shutil.rmtree(scratch, ignore_errors=True)

checks.finish()
