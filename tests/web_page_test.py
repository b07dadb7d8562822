#!/usr/bin/python3
"""The coordinator's web page in a real browser: Debian's chromium, headless,
driven by playwright-core from the npm registry (tests/web, installed by npm
ci into the build folder), against two workers and `serve` on synth-12L
(slow enough to stop mid-reply) with a chat template. tests/web/page_test.mjs holds the checks.
With LAYERPOOL_SCREENSHOTS=DIR it also writes the README's screenshots
(docs/screenshots was made with LAYERPOOL_WEB_MODEL=stories260K/stories260K-F32.gguf,
a model that writes words; with it, Stop may come after the reply ended).
Usage: web_page_test.py LAYERPOOL SHARED_DIR NODE_DIR"""
import os
import shutil
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "support"))
from checks import Checker, npm_ci  # noqa: E402
from inference_client import Processes  # noqa: E402

lp, node_dir = sys.argv[1], sys.argv[3]
shared = os.environ.get("LAYERPOOL_SHARED") or sys.argv[2]
model = os.path.join(shared, "models",
                     os.environ.get("LAYERPOOL_WEB_MODEL", "synth-12L/synth-12L-Q4_K_M.gguf"))
if not os.path.isfile(model):
    sys.exit(f"FAIL: shared data not found at {shared}")
chromium = shutil.which("chromium")
if chromium is None:
    sys.exit("FAIL: no chromium (deploy/install-deps.sh installs it)")
c = Checker()
procs = Processes(lp)
try:
    workers = [procs.start(["worker", "--listen", "127.0.0.1:0", "--threads", "1"])
               for _ in range(2)]
    serve, _ = procs.start([
        "serve", "--model", model, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
        "--ctx", "2048", "--split", "auto", "--workers", ",".join(a for _, a in workers),
        "--chat-template", os.path.join(here, "chat_templates/templates/chatml.jinja")])
    http = serve.stdout.readline().strip().removeprefix("http listening on ")

    npm_ci(os.path.join(here, "web"), ("package.json", "package-lock.json", "page_test.mjs"),
           node_dir, "playwright-core")
    node = subprocess.run(["node", "page_test.mjs"], cwd=node_dir, capture_output=True, text=True,
                          timeout=300,
                          env={**os.environ, "LAYERPOOL_BASE_URL": f"http://{http}",
                               "LAYERPOOL_KILL_PID": str(workers[1][0].pid),
                               "CHROMIUM": chromium})
    print(node.stdout, end="")
    last = node.stdout.strip().splitlines()[-1] if node.stdout.strip() else ""
    c.check("the page's browser suite", node.returncode == 0 and last.endswith(" 0 failed"),
            f"rc {node.returncode}: {last} {node.stderr[-2000:]}")
finally:
    for name in procs.stop():
        c.check(f"{name} exits within 10 s of SIGTERM", False)
c.finish()
