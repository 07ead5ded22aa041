#!/usr/bin/env python3
"""Peak memory with huge output: one host writes 20 MiB to stdout and 20 MiB to stderr at
the same time while 100 other hosts `cat` a small file, all in one prun run (stream mode,
output to files). Reports prun's peak RSS and CPU, and checks both streams' byte counts.

    bench/big_output.py            # 20 MiB per stream, 100 other hosts
    bench/big_output.py --mib 100
"""
import argparse, os, shutil, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import core  # noqa: E402  (the fleet helpers)

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--mib", type=int, default=20)
ap.add_argument("--others", type=int, default=100)
args = ap.parse_args()
prun = os.environ.get("PRUN_BIN") or os.path.join(core.ROOT, "target/release/prun")
if not os.path.exists(prun):
    subprocess.run(["cargo", "build", "--release", "--locked"], cwd=core.ROOT, check=True)
os.makedirs("/run/sshd", exist_ok=True)
state = tempfile.mkdtemp(prefix="prun-big-bench-")
servers = core.start_fleet(state, 2, 1)
big_port, small_port = servers[0][1], servers[1][1]
user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
with open(f"{state}/inventory.yaml", "w") as f:
    f.write(f"all:\n  vars:\n    address: 127.0.0.1\n    user: {user}\n"
            f"    identity_file: {state}/id_ed25519\n  hosts:\n    big:\n      port: {big_port}\n")
    for h in range(args.others):
        f.write(f"    small{h + 1:03}:\n      port: {small_port}\n")
size = args.mib * 1024 * 1024
cmd = (f'case "$SSH_CONNECTION" in *" {big_port}") '
       f"(yes ERR-abcdefghijklmnopqrstuvwxyz | head -c {size} >&2) & "
       f"yes OUT-abcdefghijklmnopqrstuvwxyz | head -c {size}; wait;; "
       f"*) cat {state}/LICENSE;; esac")
try:
    out, err = f"{state}/out", f"{state}/err"
    t0 = time.monotonic()
    with open(out, "wb") as o, open(err, "wb") as e:
        subprocess.run([core.TIME, "-f", "%U %S %M %x", "-o", f"{state}/time.txt", prun,
                        "-i", f"{state}/inventory.yaml", "--known-hosts", f"{state}/known_hosts",
                        "-p", str(args.others + 1), "--progress", "never", cmd],
                       stdout=o, stderr=e)
    wall = time.monotonic() - t0
    user_s, sys_s, rss_kb, rc = open(f"{state}/time.txt").read().split()[-4:]

    def stream_bytes(path):
        n = 0
        with open(path, "rb") as f:
            for line in f:
                host, sep, rest = line.partition(b" | ")
                if sep and host.strip() == b"big":
                    n += len(rest)
        return n

    want = size + (0 if size % 31 == 0 else 1)  # prun ends an unterminated last line
    got_out, got_err = stream_bytes(out), stream_bytes(err)
    print(f"exit {rc}; big host: stdout {got_out} bytes, stderr {got_err} bytes "
          f"(expected {want} each: {'OK' if got_out == want == got_err else 'MISMATCH'}); "
          f"{args.others} other hosts; wall {wall:.2f} s; prun CPU {float(user_s) + float(sys_s):.2f} s; "
          f"peak RSS {int(rss_kb) / 1024:.1f} MB")
finally:
    for proc, _ in servers:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    shutil.rmtree(state, ignore_errors=True)
