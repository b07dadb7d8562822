"""Shared by the Python tests: pass/fail bookkeeping with the closing
"N passed, N failed" line, and, for the checks that hold layerpool to
llama.cpp's goldens, the two measurements they compare (perplexity on
shared/golden/text/stories.txt, greedy text) run through the `layerpool`
binary."""
import json
import signal
import subprocess
import sys


class Checker:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)


def perplexity(lp, model, text_file):
    """llama-perplexity's measure with -c 128 -t 1; (ppl, stderr)."""
    out = subprocess.run([lp, "perplexity", "--model", model, "--file", text_file, "--ctx", "128",
                          "--threads", "1", "--output", "json"], capture_output=True, text=True)
    return (json.loads(out.stdout)["ppl"] if out.returncode == 0 else float("nan")), out.stderr


def greedy(lp, model, prompt, n_predict, extra=()):
    """The generated text at temperature 0 (or the error's tail)."""
    r = subprocess.run([lp, "run", "--model", model, "--prompt", prompt, "--n-predict",
                        str(n_predict), "--temp", "0", "--threads", "1", "--output", "json",
                        *extra], capture_output=True, text=True, timeout=120)
    return json.loads(r.stdout)["text"] if r.returncode == 0 else r.stderr[-300:]


# One process, and pipelines of two local workers split each of these ways.
def pipelines(*splits):
    return [("one process", [])] + [(f"2 local workers, split {s}",
                                     ["--local-workers", "2", "--split", s]) for s in splits]


def stop(procs):
    """SIGTERM every process still running, then wait; kill what lingers."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def npm_ci(source_dir, files, node_dir, package):
    """Copies `files` of source_dir (package.json, package-lock.json, the
    test script) into node_dir and installs the lock file's packages there,
    unless `package` is installed already."""
    import os
    import shutil
    os.makedirs(node_dir, exist_ok=True)
    for f in files:
        shutil.copy(os.path.join(source_dir, f), node_dir)
    if not os.path.isdir(os.path.join(node_dir, "node_modules", package)):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=node_dir, check=True)
