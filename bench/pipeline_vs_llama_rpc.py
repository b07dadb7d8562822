#!/usr/bin/python3
"""Decode tokens/s of layerpool's pipeline next to llama.cpp's RPC, on the
same model, split and threads, in one run on one machine.

  bench/pipeline_vs_llama_rpc.py LLAMA_BIN LAYERPOOL MODEL.gguf [options] > table.md

LLAMA_BIN: the bin/ folder of a llama.cpp CPU build made with -DGGML_RPC=ON
(llama-bench, llama-batched-bench, rpc-server). rpc-server runs 4 CPU
threads whatever it is given; to run it with as many as our workers, build
it with a local one-line change that reads RPC_SERVER_THREADS and calls
ggml_backend_cpu_set_n_threads (never committed). The script sets that
variable and says in its output whether the servers took it. It builds
nothing. LAYERPOOL: the layerpool binary.

Each repetition, in this order (so slow drift hits every figure alike):
  1. llama-bench in one process, 1 stream (-t THREADS);
  2. one rpc-server per stage on loopback, then llama-bench (1 stream) and
     llama-batched-bench (4 and 16 sequences) across them, layers split as
     --split says (-ts), everything offloaded (-ngl 99);
  3. layerpool bench-split: one stage, and the split, at 1, 4 and 16
     streams, plus its in-process single stream, and the speed-up the
     split's stages allow by their step costs timed at load (its ceiling).
Every figure is the median of --reps repetitions, with its range. The
ratios asked of the pipeline (issue 15) follow the table. --plot writes a
PNG of decode tokens/s against concurrency. Progress goes to stderr."""
import argparse, json, os, re, socket, statistics, subprocess, sys, time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("llama_bin")
ap.add_argument("layerpool")
ap.add_argument("model")
ap.add_argument("--split", default="8,8", help="layers per stage (default 8,8)")
ap.add_argument("--threads", type=int, default=1, help="threads per stage (default 1)")
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--prompt", type=int, default=64, help="prompt tokens per stream")
ap.add_argument("--gen", type=int, default=64, help="tokens generated per stream")
ap.add_argument("--plot", help="write a PNG of decode tokens/s against concurrency here")
ap.add_argument("--json", help="write every repetition's figures here")
args = ap.parse_args()

counts = [int(c) for c in args.split.split(",")]
n_layers = sum(counts)
CONCURRENCY = [1, 4, 16]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, env=None):
    log("$", " ".join(cmd))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed (rc={out.returncode}):\n{out.stderr[-2000:]}")
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llama_bench(extra):
    rows = json.loads(run([os.path.join(args.llama_bin, "llama-bench"), "-m", args.model,
                           "-p", "0", "-n", str(args.gen), "-r", "1", "-t", str(args.threads),
                           "-o", "json", *extra]).stdout)
    return rows[0]["avg_ts"]


def batched_bench(extra):
    out = run([os.path.join(args.llama_bin, "llama-batched-bench"), "-m", args.model,
               "-c", str(16 * (args.prompt + args.gen) + 64), "-b", "2048", "-ub", "512",
               "-npp", str(args.prompt), "-ntg", str(args.gen), "-npl", "4,16",
               "-t", str(args.threads), *extra])
    speeds = {}
    for line in (out.stdout + out.stderr).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and cells[2].isdigit():
            speeds[int(cells[2])] = float(cells[7])  # B -> S_TG t/s
    return speeds


def with_rpc_servers(fn):
    env = dict(os.environ, RPC_SERVER_THREADS=str(args.threads))
    servers, ports = [], []
    try:
        for _ in counts:
            port = free_port()
            log(f"$ RPC_SERVER_THREADS={args.threads} rpc-server -p {port}")
            servers.append(subprocess.Popen(
                [os.path.join(args.llama_bin, "rpc-server"), "-H", "127.0.0.1", "-p", str(port)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
            ports.append(port)
        for port in ports:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
        rpc = ",".join(f"127.0.0.1:{p}" for p in ports)
        return fn(["--rpc", rpc, "-ngl", "99", "-ts", "/".join(map(str, counts))])
    finally:
        for s in servers:
            s.terminate()
        for s in servers:
            _, err = s.communicate(timeout=30)
            rpc_threads["took"] = rpc_threads["took"] or "local change" in err


def layerpool():
    splits = f"{n_layers};{args.split}"
    out = run([args.layerpool, "bench-split", "--model", args.model, "--splits", splits,
               "--concurrency", ",".join(map(str, CONCURRENCY)), "--threads", str(args.threads),
               "--max-sequences", "16", "--prompt-tokens", str(args.prompt),
               "--n-predict", str(args.gen), "--output", "json"])
    j = json.loads(out.stdout)
    figures = {"in_process": j["in_process_decode_tokens_per_s"]}
    for r in j["runs"]:
        figures[(r["stages"], r["concurrency"])] = r["decode_tokens_per_s"]
        if r["stages"] > 1:
            figures[("hops", r["concurrency"])] = r["hop_us_per_link"]
            figures[("ceiling", r["concurrency"])] = r.get("ceiling_speedup", 0)
            figures["links"] = r["stage_links"]
    return figures


rpc_threads = {"took": False}
reps = []
for rep in range(args.reps):
    log(f"--- repetition {rep + 1} of {args.reps}")
    f = {"llama_one_process": llama_bench([])}
    f["llama_rpc_1"] = with_rpc_servers(llama_bench)
    f.update({f"llama_rpc_{b}": s for b, s in with_rpc_servers(batched_bench).items()})
    ours = layerpool()
    f["ours_in_process"] = ours["in_process"]
    for c in CONCURRENCY:
        f[f"ours_1stage_{c}"] = ours[(1, c)]
        f[f"ours_split_{c}"] = ours[(len(counts), c)]
        f[f"ours_hops_{c}"] = ours[("hops", c)]
        f[f"ours_ceiling_{c}"] = ours[("ceiling", c)]
    f["links"] = ours.get("links", [])
    reps.append(f)


def med(key):
    values = [r[key] for r in reps]
    return statistics.median(values), min(values), max(values)


def cell(key):
    m, lo, hi = med(key)
    return f"{m:.1f} ({lo:.1f}–{hi:.1f})"


def git(folder, *a):
    return subprocess.run(["git", "-C", folder, *a], capture_output=True, text=True).stdout.strip()


commit = git(os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD")
llama_root = os.path.dirname(os.path.dirname(os.path.abspath(args.llama_bin)))
llama_commit = git(llama_root, "rev-parse", "--short", "HEAD") or open(
    os.path.join(llama_root, "COMMIT")).read().strip()[:8] if os.path.exists(
    os.path.join(llama_root, "COMMIT")) else "unknown"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
           "unknown CPU")
S = len(counts)
print(f"# layerpool pipeline vs llama.cpp RPC: {os.path.basename(args.model)}, split {args.split}\n")
print(f"layerpool {commit}, llama.cpp {llama_commit}; {os.cpu_count()} CPUs ({cpu}); "
      f"{args.threads} thread(s) per stage; prompt {args.prompt}, {args.gen} tokens generated per "
      f"stream; median of {args.reps} interleaved repetitions (range in brackets), decode "
      f"tokens/s summed over streams.")
print(f"rpc-server threads: {args.threads if rpc_threads['took'] else '4 (its default: the RPC_SERVER_THREADS change is not in this build)'}. "
      f"layerpool stage links: {', '.join(reps[-1]['links']) or 'none'}.\n")
print("| run | 1 stream | 4 streams | 16 streams |")
print("| --- | ---: | ---: | ---: |")
print(f"| llama.cpp, one process (llama-bench) | {cell('llama_one_process')} | | |")
print(f"| llama.cpp RPC, {S} rpc-servers (llama-bench; llama-batched-bench) | {cell('llama_rpc_1')} "
      f"| {cell('llama_rpc_4')} | {cell('llama_rpc_16')} |")
print(f"| layerpool, one process | {cell('ours_in_process')} | | |")
print("| layerpool, 1 stage | " + " | ".join(cell(f"ours_1stage_{c}") for c in CONCURRENCY) + " |")
print(f"| layerpool, {S} stages ({args.split}) | " +
      " | ".join(cell(f"ours_split_{c}") for c in CONCURRENCY) + " |")
hops = [" / ".join(f"{statistics.median(r[f'ours_hops_{c}'][i] for r in reps):.0f}"
                   for i in range(S)) for c in CONCURRENCY]
print(f"| layerpool mean hop, µs (coordinator→0 / stage links) | " + " | ".join(hops) + " |")
print(f"| layerpool, {S} stages: ceiling of the speed-up over 1 stage (the stages' step costs) | " +
      " | ".join(f"{med(f'ours_ceiling_{c}')[0]:.2f}×" for c in CONCURRENCY) + " |\n")

ratios = [
    (f"{S} stages, 1 stream / llama.cpp RPC 1 stream", "ours_split_1", "llama_rpc_1", 1.3),
    (f"{S} stages, 1 stream / layerpool in one process", "ours_split_1", "ours_in_process", 0.95),
    (f"{S} stages, 4 streams / llama.cpp RPC 4 sequences", "ours_split_4", "llama_rpc_4", 4.0),
    (f"{S} stages, 4 streams / 1 stage, 4 streams", "ours_split_4", "ours_1stage_4", 1.85),
    (f"{S} stages, 16 streams / llama.cpp RPC 16 sequences", "ours_split_16", "llama_rpc_16", None),
    (f"{S} stages, 16 streams / 1 stage, 16 streams", "ours_split_16", "ours_1stage_16", 1.0),
]
print("| ratio (per repetition, then the median) | median | range | asked |")
print("| --- | ---: | ---: | ---: |")
for name, a, b, want in ratios:
    per_rep = [r[a] / r[b] for r in reps]
    m = statistics.median(per_rep)
    verdict = "" if want is None else (f"≥ {want} {'✓' if m >= want else '✗'}")
    print(f"| {name} | {m:.2f}× | {min(per_rep):.2f}–{max(per_rep):.2f} | {verdict} |")
print(f"\nCommand: `bench/pipeline_vs_llama_rpc.py {' '.join(sys.argv[1:])}`")

if args.json:
    with open(args.json, "w") as f:
        json.dump(reps, f, indent=1)
if args.plot:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)

    def line(keys, xs, label, style):
        ax.plot(xs, [med(k)[0] for k in keys], style, label=label)
        ax.vlines(xs, [med(k)[1] for k in keys], [med(k)[2] for k in keys], colors="grey", lw=1)

    line([f"ours_1stage_{c}" for c in CONCURRENCY], CONCURRENCY, "layerpool, 1 stage", "o-")
    line([f"ours_split_{c}" for c in CONCURRENCY], CONCURRENCY, f"layerpool, {args.split}", "s-")
    line([f"llama_rpc_{c}" for c in CONCURRENCY], CONCURRENCY, f"llama.cpp RPC, {args.split}", "^--")
    ax.axhline(med("llama_one_process")[0], color="C3", ls=":", label="llama.cpp, one process, 1 stream")
    ax.set_xscale("log", base=2)
    ax.set_xticks(CONCURRENCY, [str(c) for c in CONCURRENCY])
    ax.set_xlabel("concurrent streams (llama.cpp: sequences)")
    ax.set_ylabel("decode tokens/s, all streams")
    ax.set_title(f"{os.path.basename(args.model)}, {args.threads} thread(s) per stage")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.plot)
    log(f"wrote {args.plot}")
