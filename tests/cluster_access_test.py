#!/usr/bin/python3
"""Who may use a worker, end to end on loopback. The shared secret
(--token-file): a worker started with a token refuses a coordinator without
it or with another one, naming the fix; with the same file, `plan --workers`
and `serve` work, and a completion flows through both stages (the
stage-to-stage link carries the token too); a token under 16 characters is
refused at startup. --model-dir: a model outside the directory is refused,
one inside it (through a link) is served. --tls-dir (certificates from
deploy/make-certs.sh): a coordinator without TLS, or with a certificate from
another CA, gets no connection and is told to check --tls-dir; with the lab's
CA a completion flows through both stages over mutual TLS. --api-tls-dir:
the same serve answers HTTPS and TLS gRPC to clients that trust the lab's
CA, and nothing in plain text.
Usage: cluster_access_test.py LAYERPOOL SHARED_DIR"""
import json, os, select, shutil, ssl, subprocess, sys, tempfile, urllib.error, urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from checks import Checker, stop  # noqa: E402
import inference_client  # noqa: E402

proto_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")

lp, shared = sys.argv[1], os.environ.get("LAYERPOOL_SHARED") or sys.argv[2]
model = os.path.join(shared, "models/tinystories-656K/TinyStories-656K-Q8_0.gguf")
checks = Checker()
check = checks.check


def first_lines(proc, n, timeout=20):
    """The first n lines of proc's stdout, read a byte at a time from the
    descriptor (a buffered readline would hide later lines from select)."""
    lines, line, fd = [], b"", proc.stdout.fileno()
    while len(lines) < n and select.select([fd], [], [], timeout)[0]:
        c = os.read(fd, 1)
        if not c:
            break
        if c == b"\n":
            lines.append(line.decode())
            line = b""
        else:
            line += c
    return lines


def serve_and_complete(addresses, flags, how, api_ca=None):
    """serve over two workers with `flags`; one completion through both.
    With `api_ca`, the public APIs must speak TLS with a certificate that
    CA signed, and only TLS."""
    serve = subprocess.Popen([lp, "serve", "--model", model, "--workers", addresses,
                              "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
                              "--split", "1,1", *flags],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        lines = first_lines(serve, 2, timeout=60)
        http = next((l.removeprefix("http listening on ") for l in lines
                     if l.startswith("http listening on ")), None)
        check(f"serve {how} loads both stages", http is not None, lines)
        if http:
            scheme = "https" if api_ca else "http"
            request = urllib.request.Request(
                f"{scheme}://{http}/v1/completions", method="POST",
                headers={"Content-Type": "application/json"},
                data=json.dumps({"prompt": "Once upon a time", "max_tokens": 8,
                                 "temperature": 0}).encode())
            context = ssl.create_default_context(cafile=api_ca) if api_ca else None
            body = json.load(urllib.request.urlopen(request, timeout=60, context=context))
            check(f"{how}: a completion flows through both stages",
                  body["usage"]["completion_tokens"] == 8 and body["choices"][0]["text"], body)
        if http and api_ca:
            try:
                urllib.request.urlopen(f"http://{http}/health", timeout=10)
                check("--api-tls-dir: plain HTTP is not answered", False, "it was")
            except (urllib.error.URLError, ConnectionError, OSError):
                check("--api-tls-dir: plain HTTP is not answered", True)
            grpc_address = lines[0].removeprefix("listening on ")
            grpc, pb, pb_grpc, _ = inference_client.stubs(proto_dir)
            with open(api_ca, "rb") as f:
                credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
            api = pb_grpc.InferenceStub(grpc.secure_channel(grpc_address, credentials))
            d = api.DescribeCluster(pb.DescribeClusterRequest(), timeout=10)
            check("--api-tls-dir: the gRPC Inference API answers over TLS", len(d.stages) == 2, d)
            plain = pb_grpc.InferenceStub(grpc.insecure_channel(grpc_address))
            try:
                plain.DescribeCluster(pb.DescribeClusterRequest(), timeout=5)
                check("--api-tls-dir: plain-text gRPC is refused", False, "it answered")
            except grpc.RpcError as e:
                check("--api-tls-dir: plain-text gRPC is refused",
                      e.code() == grpc.StatusCode.UNAVAILABLE, e.code())
    finally:
        stop([serve])


def start_workers(n, flags):
    workers = [subprocess.Popen([lp, "worker", "--listen", "127.0.0.1:0", *flags],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
               for _ in range(n)]
    return workers, ",".join(first_lines(w, 1)[0].removeprefix("listening on ")
                             for w in workers)


with tempfile.TemporaryDirectory() as scratch:
    token, other, short = (os.path.join(scratch, n) for n in ("token", "other", "short"))
    open(token, "w").write("# the lab's secret\n0123456789abcdef0123456789abcdef\n")
    open(other, "w").write("fedcba9876543210fedcba9876543210\n")
    open(short, "w").write("tooshort\n")

    r = subprocess.run([lp, "worker", "--listen", "127.0.0.1:0", "--token-file", short],
                       capture_output=True, text=True, timeout=20)
    check("a short token is refused at startup", r.returncode == 1 and "at least 16" in r.stderr,
          (r.returncode, r.stderr[-200:]))

    workers, addresses = start_workers(2, ["--token-file", token])
    try:
        plan = [lp, "plan", "--model", model, "--workers", addresses]
        r = subprocess.run(plan, capture_output=True, text=True, timeout=30)
        check("no token: refused, naming --token-file",
              r.returncode == 1 and "requires a token" in r.stderr and "--token-file" in r.stderr,
              r.stderr[-300:])
        r = subprocess.run(plan + ["--token-file", other], capture_output=True, text=True,
                           timeout=30)
        check("another token: refused", r.returncode == 1 and "wrong token" in r.stderr,
              r.stderr[-300:])
        r = subprocess.run(plan + ["--token-file", token], capture_output=True, text=True,
                           timeout=30)
        check("the same token: plan asks both workers", r.returncode == 0 and "fits" in r.stdout,
              r.stdout[-300:] + r.stderr[-300:])

        serve_and_complete(addresses, ["--token-file", token], "with the token")
    finally:
        stop(workers)

    # --model-dir: a copy inside the directory, reached through a link in
    # it, is served; the original outside it is refused, by its own path and
    # through a link in the directory that escapes to it.
    models = os.path.join(scratch, "models")
    os.mkdir(models)
    shutil.copy(model, os.path.join(models, "tiny.gguf"))
    inside = os.path.join(models, "link.gguf")
    os.symlink("tiny.gguf", inside)
    escape = os.path.join(models, "escape.gguf")
    os.symlink(model, escape)
    worker = subprocess.Popen([lp, "worker", "--listen", "127.0.0.1:0", "--model-dir", models],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    address = first_lines(worker, 1)[0].removeprefix("listening on ")
    try:
        for path, served in ((model, False), (escape, False), (inside, True)):
            r = subprocess.run([lp, "serve", "--model", path, "--workers", address,
                                "--listen", "127.0.0.1:0", "--http", "off"],
                               capture_output=True, text=True, timeout=10)
            # serve runs until a signal once loaded: a timeout means it loaded.
            if served:
                check("--model-dir: a model inside it is served", False, r.stderr[-300:])
            else:
                check(f"--model-dir: {os.path.basename(path)} (outside it) is refused, naming it",
                      r.returncode == 1 and "outside this worker's --model-dir" in r.stderr,
                      r.stderr[-300:])
    except subprocess.TimeoutExpired as e:
        check("--model-dir: a model inside it is served", path == inside,
              f"{path}: {(e.stderr or b'')[-300:]!r}")
    finally:
        stop([worker])

    # --tls-dir: the lab's CA on both sides, or no connection.
    make_certs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy",
                              "make-certs.sh")
    lab, other_lab = os.path.join(scratch, "lab"), os.path.join(scratch, "other-lab")
    subprocess.run(["bash", make_certs, lab, "worker", "coordinator"], check=True,
                   capture_output=True)
    subprocess.run(["bash", make_certs, other_lab, "stranger"], check=True, capture_output=True)
    workers, addresses = start_workers(2, ["--tls-dir", os.path.join(lab, "worker")])
    try:
        plan = [lp, "plan", "--model", model, "--workers", addresses]
        for how, flags in (("plain text", []),
                           ("another CA's certificate", ["--tls-dir",
                                                         os.path.join(other_lab, "stranger")])):
            r = subprocess.run(plan + flags, capture_output=True, text=True, timeout=60)
            check(f"TLS workers, {how}: no connection, pointing at --tls-dir",
                  r.returncode == 1 and "--tls-dir" in r.stderr, r.stderr[-300:])
        coordinator = os.path.join(lab, "coordinator")
        serve_and_complete(addresses, ["--tls-dir", coordinator, "--api-tls-dir", coordinator],
                           "over mutual TLS, public APIs over TLS",
                           api_ca=os.path.join(lab, "ca.pem"))
    finally:
        stop(workers)

checks.finish()
