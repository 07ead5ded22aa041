#!/usr/bin/env python3
"""Time loading and selecting a large inventory: `prun --list-hosts` on a generated
10,000-host YAML inventory (groups, ranges, vars), best and median of R runs.

    bench/inventory.py            # 10,000 hosts, 20 runs, target/release/prun
    bench/inventory.py -n 50000
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("-n", "--hosts", type=int, default=10000)
ap.add_argument("-r", "--runs", type=int, default=20)
args = ap.parse_args()
prun = os.environ.get("PRUN_BIN") or os.path.join(ROOT, "target/release/prun")
if not os.path.exists(prun):
    subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)

with tempfile.TemporaryDirectory() as d:
    inv = os.path.join(d, "big.yaml")
    groups = 20
    per = args.hosts // groups
    with open(inv, "w") as f:
        f.write("all:\n  vars:\n    user: deploy\n  children:\n")
        for g in range(groups):
            f.write(f"    g{g:02}:\n      vars:\n        port: {2200 + g}\n      hosts:\n")
            for h in range(per):
                f.write(f"        host-{g:02}-{h:05}.example.com:\n          address: 10.{g}.{h // 256}.{h % 256}\n")
    for label, extra in [("all hosts", []), ("-l 'g0*:!g01'", ["-l", "g0*:!g01"])]:
        times = []
        for _ in range(args.runs):
            t0 = time.monotonic()
            r = subprocess.run([prun, "-i", inv, "--list-hosts"] + extra, stdout=subprocess.PIPE)
            times.append(time.monotonic() - t0)
            if r.returncode != 0:
                sys.exit(f"prun failed: {r.returncode}")
        n = r.stdout.count(b"\n")
        print(f"{args.hosts} hosts, {label}: {n} selected; whole process best {1000 * min(times):.1f} ms, "
              f"median {1000 * statistics.median(times):.1f} ms")
