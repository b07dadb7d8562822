#!/usr/bin/python3
"""layerpool's pipeline over home-lab links: each worker and the coordinator
in a Linux network namespace of its own (a "host"), joined by veth pairs to
a bridge, every host's outgoing traffic shaped by `tc netem` (rate, half the
round trip as delay, loss). For each link profile and wire type, runs
`layerpool bench-split --workers ...` from the coordinator's namespace and
reports prefill and decode tokens/s, each link's hop, and the bytes each
worker sent per token (from its interface's counters).

  sudo bench/netns_links.py LAYERPOOL MODEL.gguf [--split 8,8] [--profiles lan,slow]
                            [--wire f32,f16,bf16,q8_0] [--concurrency 1,4] > table.md

Profiles: lan (1 Gbit/s, 0.3 ms round trip), slow (100 Mbit/s, 2 ms), wifi
(50 Mbit/s, 5 ms, 1% loss). A kernel without netem gets the rate alone
(tbf), and the table says so. Needs root (ip netns, tc); everything it makes
is named lp-* and removed at the end, also on failure. Progress goes to
stderr."""
import argparse, json, os, subprocess, sys, tempfile, time

PROFILES = {  # rate, round trip (ms), loss (%)
    "lan": ("1gbit", 0.3, 0),
    "slow": ("100mbit", 2.0, 0),
    "wifi": ("50mbit", 5.0, 1),
}
BRIDGE = "lp-br0"

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("layerpool")
ap.add_argument("model")
ap.add_argument("--split", default="8,8")
ap.add_argument("--profiles", default="lan,slow")
ap.add_argument("--wire", default="f32,f16,bf16,q8_0")
ap.add_argument("--concurrency", default="1,4")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--prompt", type=int, default=64)
ap.add_argument("--gen", type=int, default=64)
args = ap.parse_args()
n_workers = len(args.split.split(","))
hosts = ["lp-c"] + [f"lp-w{i}" for i in range(n_workers)]
address = {h: f"10.77.0.{10 + i}" for i, h in enumerate(hosts)}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(*cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def teardown():
    for h in hosts:
        sh("ip", "netns", "del", h, check=False)
    sh("ip", "link", "del", BRIDGE, check=False)


def setup(profile):
    rate, rtt, loss = PROFILES[profile]
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "link", "set", BRIDGE, "up")
    for h in hosts:
        sh("ip", "netns", "add", h)
        sh("ip", "link", "add", f"v-{h}", "type", "veth", "peer", "name", "eth0", "netns", h)
        sh("ip", "link", "set", f"v-{h}", "master", BRIDGE, "up")
        sh("ip", "-n", h, "addr", "add", f"{address[h]}/24", "dev", "eth0")
        sh("ip", "-n", h, "link", "set", "eth0", "up")
        sh("ip", "-n", h, "link", "set", "lo", "up")
        netem = ["delay", f"{rtt / 2}ms", "rate", rate] + (["loss", f"{loss}%"] if loss else [])
        tc = ["ip", "netns", "exec", h, "tc", "qdisc", "add", "dev", "eth0", "root"]
        if sh(*tc, "netem", *netem, check=False).returncode != 0:
            # A kernel without sch_netem (some VMs): the rate alone, with a
            # token bucket holding 10 ms of traffic.
            bps = int(rate[:-4]) * (1000 if rate.endswith("gbit") else 1) * 1000000
            sh(*tc, "tbf", "rate", rate, "burst", str(max(16384, bps // 8 // 100)),
               "latency", "100ms")
            shaping[profile] = f"{rate} (tbf: this kernel has no netem, so no delay or loss)"
        else:
            shaping[profile] = f"{rate}, {rtt} ms round trip" + (f", {loss}% loss" if loss else "")


def tx_bytes(h):
    return int(sh("ip", "netns", "exec", h, "cat", "/sys/class/net/eth0/statistics/tx_bytes").stdout)


def start_worker(h, token_file):
    cmd = ["ip", "netns", "exec", h, args.layerpool, "worker", "--listen", f"{address[h]}:7000",
           "--threads", str(args.threads), "--model-dir", os.path.dirname(os.path.abspath(args.model)),
           "--token-file", token_file]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = p.stdout.readline()
    if "listening on" not in line:
        raise SystemExit(f"worker in {h} did not start: {line!r}")
    return p


levels = [int(c) for c in args.concurrency.split(",")]
shaping = {}  # profile -> what was applied
rows = []
token_file = tempfile.NamedTemporaryFile("w", prefix="lp-token-", delete=False)
token_file.write(os.urandom(16).hex() + "\n")
token_file.close()
os.chmod(token_file.name, 0o600)
teardown()
try:
    for profile in args.profiles.split(","):
        log(f"--- profile {profile}: {PROFILES[profile]}")
        setup(profile)
        workers = [start_worker(h, token_file.name) for h in hosts[1:]]
        try:
            for wire in args.wire.split(","):
                before = {h: tx_bytes(h) for h in hosts}
                cmd = ["ip", "netns", "exec", "lp-c", args.layerpool, "bench-split", "--model",
                       os.path.abspath(args.model), "--splits", args.split, "--workers",
                       ",".join(f"{address[h]}:7000" for h in hosts[1:]), "--token-file",
                       token_file.name, "--activation-type", wire, "--threads", str(args.threads),
                       "--concurrency", args.concurrency, "--max-sequences", str(max(levels)),
                       "--prompt-tokens", str(args.prompt), "--n-predict", str(args.gen),
                       "--output", "json"]
                log("$", " ".join(cmd[4:]))
                t0 = time.time()
                out = sh(*cmd)
                sent = {h: tx_bytes(h) - before[h] for h in hosts}
                j = json.loads(out.stdout)
                # Rows each link carried in the split's runs: every prompt and
                # generated token but the last of each stream.
                tokens = sum(c * (args.prompt + args.gen - 1) for c in levels)
                for r in j["runs"]:
                    rows.append({"profile": profile, "wire": wire, "stages": r["stages"],
                                 "concurrency": r["concurrency"],
                                 "prefill": r["prefill_tokens_per_s"],
                                 "decode": r["decode_tokens_per_s"], "hops": r["hop_us_per_link"],
                                 "links": r["stage_links"],
                                 "bytes_per_token": [sent[h] / tokens for h in hosts[1:-1]]})
                log(f"    {time.time() - t0:.0f} s")
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(timeout=30)
            teardown()
finally:
    teardown()
    os.unlink(token_file.name)

print(f"# layerpool over shaped links: {os.path.basename(args.model)}, split {args.split}\n")
print(f"Each worker and the coordinator in its own network namespace; every host's egress "
      f"shaped with tc (the profile column says how). {args.threads} thread(s) "
      f"per stage, prompt {args.prompt}, {args.gen} tokens per stream. Bytes per token: what "
      f"each worker but the last sent (its activations, plus its acks and, in the one-stage runs, "
      f"its results), over the tokens its link carried in the split's runs.\n")
print("| profile | wire | stages | streams | prefill t/s | decode t/s | hops µs | bytes/token |")
print("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
for r in rows:
    hops = " / ".join(f"{h:.0f}" for h in r["hops"])
    sent = " / ".join(f"{b:.0f}" for b in r["bytes_per_token"]) if r["stages"] > 1 else ""
    print(f"| {r['profile']}: {shaping[r['profile']]} | {r['wire']} | {r['stages']} | "
          f"{r['concurrency']} | {r['prefill']:.1f} | {r['decode']:.1f} | {hops} | {sent} |")
print(f"\nCommand: `sudo bench/netns_links.py {' '.join(sys.argv[1:])}`")
