"""Shared by the Python cluster tests: the public Inference API's stubs,
generated with protoc from the .proto files alone (nothing of layerpool is
imported), and `layerpool` processes started on loopback and stopped at the
end."""
import os
import signal
import socket
import subprocess
import sys
import tempfile


def stubs(proto_dir):
    """(grpc, inference_pb2, inference_pb2_grpc, common_pb2)."""
    gen = tempfile.mkdtemp(prefix="lp_client_")
    subprocess.run(["protoc", f"-I{proto_dir}", f"--python_out={gen}", f"--grpc_python_out={gen}",
                    "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                    "layerpool/v1/common.proto", "layerpool/v1/inference.proto"], check=True)
    sys.path.insert(0, gen)
    import grpc
    from layerpool.v1 import common_pb2, inference_pb2, inference_pb2_grpc
    return grpc, inference_pb2, inference_pb2_grpc, common_pb2


def cluster_test_args(argv, model="models/synth-12L/synth-12L-Q4_K_M.gguf"):
    """(layerpool, the model's path, proto dir) from LAYERPOOL SHARED_DIR
    PROTO_DIR; LAYERPOOL_SHARED overrides SHARED_DIR. Exits when the model
    is missing."""
    shared = os.environ.get("LAYERPOOL_SHARED") or argv[2]
    path = os.path.join(shared, model)
    if not os.path.isfile(path):
        sys.exit(f"FAIL: shared data not found at {shared}")
    return argv[1], path, argv[3]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """`layerpool` processes; each one's stderr goes to a log file of its own."""

    def __init__(self, lp):
        self.lp, self.all = lp, []
        self.logs = tempfile.mkdtemp(prefix="lp_logs_")

    def start(self, args, prefix=()):
        """(process, address) once it printed 'listening on ADDRESS'; `prefix`
        runs it through another command (e.g. ip netns exec NS)."""
        log = open(os.path.join(self.logs, f"{len(self.all)}-{args[0]}.log"), "w")
        p = subprocess.Popen([*prefix, self.lp, *args], stdout=subprocess.PIPE, stderr=log,
                             text=True)
        p.log_path = log.name
        self.all.append(p)
        line = p.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise SystemExit(f"FAIL: {args[0]} did not start: {line!r}; see {log.name}")
        return p, line[len("listening on "):]

    def stop(self):
        """SIGTERM to every live one; the names of those that did not exit in 10 s."""
        late = []
        for p in self.all:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        for p in self.all:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                late.append(" ".join(p.args[1:3]))
                p.kill()
        return late
