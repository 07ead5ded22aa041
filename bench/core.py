#!/usr/bin/env python3
"""prun's own benchmark: `cat` of a 26,530-byte file on N hosts at -p P against local sshd.

Starts K OpenSSH servers on 127.0.0.1 (generated keys, N host names spread over them), runs
the prun binary R times, and reports per run: wall time, prun's CPU (user+sys, from wait4),
CPU per host, peak RSS, the servers' CPU (sshd masters' reaped children), hosts verified
byte-exact, and the floor ((client CPU + server CPU) / cores); on the events engine also how
many stack pages prun's fibers touched (PRUN_FIBER_PAGES). Servers are stopped by PID.

    bench/core.py                      # N=1000, P=100, K=4, R=3, target/release/prun
    bench/core.py -n 100 -p 100 -r 5
    bench/core.py --shell 5            # one `prun shell` running the command 5 times: the
                                       # first logs in, the others reuse the held logins
    bench/core.py --persist 5m         # every run with --persist: the first starts the
                                       # holder and logs in, the later ones reuse its logins
    bench/core.py --engines threads,events        # both engines, alternating rounds
    bench/core.py --delay 25ms -n 300 -p 300 --engines threads,events
                                       # through bench/latency-proxy.py (50 ms round trips),
                                       # plus one host alone, relayed and direct: the
                                       # difference in round trips
    bench/core.py --held -r 3          # alternating rounds of: a fresh prun run, a later
                                       # --persist run, and a later pssh run over OpenSSH
                                       # ControlPersist masters (after one warm-up run each);
                                       # counts the holder's and the masters' CPU and memory
    bench/core.py --prun-args='--batch 25%'   # any more options for every prun run
                                       # (split like a shell; note the =): batches, --local
    PRUN_BIN=path/to/prun bench/core.py

Performance is measured here, never asserted in a test.
"""

import argparse
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SSHD = "/usr/sbin/sshd"
TIME = "/usr/bin/time"  # GNU time (Debian package `time`)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_cpu(pid):
    """cutime + cstime of a process (CPU of its reaped children), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / TICK


def reaped_cpu():
    """user+sys CPU of this process's reaped children (and theirs), to the microsecond: the
    difference around waiting for GNU time is prun's CPU (plus GNU time's own, ~1 ms), where
    GNU time's %U and %S are rounded to 10 ms."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def payload():
    lines, i = [], 0
    text = ""
    while len(text) < 26530:
        text += f"{i:05} prun benchmark payload line, the same on every host ........\n"
        i += 1
    return text[:26529] + "\n"


USE_AGENT = False  # --agent: the key is in an ssh-agent, not in the inventory


def write_inventory(state, ports, n, name="inventory.yaml"):
    """The inventory: n host names h00001… spread round-robin over `ports` on 127.0.0.1."""
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    key = "" if USE_AGENT else f"    identity_file: {state}/id_ed25519\n"
    with open(os.path.join(state, name), "w") as f:
        f.write(f"all:\n  vars:\n    address: 127.0.0.1\n    user: {user}\n{key}  hosts:\n")
        for h in range(n):
            f.write(f"    h{h + 1:05}:\n      port: {ports[h % len(ports)]}\n")


def start_fleet(state, k, n):
    for name in ("host_ed25519", "id_ed25519"):
        p = os.path.join(state, name)
        if not os.path.exists(p):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", p], check=True)
    shutil.copy(os.path.join(state, "id_ed25519.pub"), os.path.join(state, "authorized_keys"))
    host_key = " ".join(open(os.path.join(state, "host_ed25519.pub")).read().split()[:2])
    servers, kh = [], []
    for i in range(k):
        port = free_port()
        conf = os.path.join(state, f"sshd-{i}.conf")
        with open(conf, "w") as f:
            f.write(
                f"Port {port}\nListenAddress 127.0.0.1\nHostKey {state}/host_ed25519\n"
                f"AuthorizedKeysFile {state}/authorized_keys\nPidFile none\nStrictModes no\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                "MaxStartups 1000:30:1000\nMaxSessions 1000\nSetEnv SHLVL=1\nLogLevel ERROR\n"
            )
        proc = subprocess.Popen([SSHD, "-D", "-f", conf, "-E", os.path.join(state, f"sshd-{i}.log")])
        servers.append((proc, port))
        kh.append(f"[127.0.0.1]:{port} {host_key}\n")
    for proc, port in servers:
        deadline = time.time() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    if s.recv(4) == b"SSH-":
                        break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit(f"sshd on {port} did not start")
            time.sleep(0.05)
    with open(os.path.join(state, "known_hosts"), "w") as f:
        f.writelines(kh)
    write_inventory(state, [port for _, port in servers], n)
    write_inventory(state, [port for _, port in servers], 1, "direct.yaml")
    with open(os.path.join(state, "LICENSE"), "w") as f:
        f.write(payload())
    return servers


def start_proxy(state, servers, n, delay):
    """Relay a new loopback port to each server with `delay` one way (bench/latency-proxy.py);
    the inventory and known_hosts then point at the relays. Returns the proxy process."""
    relays = [(free_port(), port) for _, port in servers]
    proxy = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "bench", "latency-proxy.py"), "--delay", delay]
        + [f"127.0.0.1:{a}=127.0.0.1:{b}" for a, b in relays],
        stdout=subprocess.PIPE, stderr=open(os.path.join(state, "proxy.log"), "w"), text=True)
    for _ in relays:
        if not proxy.stdout.readline():
            sys.exit("latency-proxy did not start")
    host_key = " ".join(open(os.path.join(state, "host_ed25519.pub")).read().split()[:2])
    with open(os.path.join(state, "known_hosts"), "a") as f:
        f.writelines(f"[127.0.0.1]:{a} {host_key}\n" for a, _ in relays)
    write_inventory(state, [a for a, _ in relays], n)
    return proxy


def one_host_rtts(prun, state, delay_s, engine):
    """One host alone, 5 times through the relay and 5 times direct: the median totals, and
    the difference in round trips (what the relay adds; the CPU work is the same both ways)."""
    def median_total(inventory):
        totals = []
        for _ in range(5):
            argv = [prun, "-i", f"{state}/{inventory}", "--known-hosts", f"{state}/known_hosts",
                    "-l", "h00001", "--progress", "never"]
            if engine:
                argv += ["--engine", engine]
            res = subprocess.run(argv + [f"cat {state}/LICENSE"], capture_output=True, text=True)
            m = re.search(r"prun: 1 host in (\S+):", res.stderr)
            if m:
                totals.append(parse_elapsed(m.group(1)))
        return statistics.median(totals) if totals else None

    far, near = median_total("inventory.yaml"), median_total("direct.yaml")
    if far is None or near is None:
        return None
    return far, near, (far - near) / (2 * delay_s)


def verify(stdout, expected, n):
    got = {}
    for line in stdout.split(b"\n")[:-1]:
        host, _, rest = line.partition(b" | ")
        got.setdefault(host.strip(), []).append(rest + b"\n")
    return sum(1 for v in got.values() if b"".join(v) == expected), len(got)


FIBER_PAGES = "prun: fiber stack pages: "


def run_once(prun, state, p, n, servers, extra=()):
    time.sleep(0.5)  # let the servers reap the previous run's sessions
    before = sum(children_cpu(proc.pid) for proc, _ in servers)
    argv = [prun, "-i", f"{state}/inventory.yaml", "--known-hosts", f"{state}/known_hosts",
            "-p", str(p), "--progress", "never", *extra, f"cat {state}/LICENSE"]
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    res = os.path.join(state, "time.txt")
    # GNU time forks from a small process, so the peak RSS it reports is prun's own (a fork
    # of this Python process would carry Python's RSS into ru_maxrss).
    t0, cpu0 = time.monotonic(), reaped_cpu()
    # PRUN_FIBER_PAGES: prun says how many stack pages its fibers touched (events engine)
    env = dict(os.environ, PRUN_FIBER_PAGES="1")
    proc = subprocess.Popen([TIME, "-f", "%U %S %M %x", "-o", res] + argv, stdout=out, stderr=err,
                            env=env)
    proc.wait()
    wall, cpu = time.monotonic() - t0, reaped_cpu() - cpu0
    _user, _sys, maxrss_kb, rc = open(res).read().split()[-4:]
    time.sleep(0.5)
    after = sum(children_cpu(proc.pid) for proc, _ in servers)
    out.seek(0)
    ok, seen = verify(out.read(), open(f"{state}/LICENSE", "rb").read(), n)
    err.seek(0)
    stderr = err.read().decode(errors="replace")
    return {
        "rc": int(rc),
        "wall": wall,
        "cpu": cpu,
        "rss_mb": int(maxrss_kb) / 1024,
        "server_cpu": after - before,
        "ok": ok,
        "stderr_tail": failures(stderr),
        "fiber_pages": next((line.removeprefix(FIBER_PAGES) for line in stderr.splitlines()
                             if line.startswith(FIBER_PAGES)), ""),
    }


def failures(stderr):
    """prun's first summary line, and the first few lines about hosts that failed."""
    lines = stderr.splitlines()
    failed = [line for line in lines if re.search(r"\s(error|timeout|failed)\s", line)]
    return lines[:1] + failed[:5]


def proc_stat(pid):
    """(ppid, utime+stime+cutime+cstime in seconds) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), sum(int(x) for x in fields[11:15]) / TICK


def tree_cpu(roots):
    """CPU of the processes under `roots` (themselves included): the live ones' own and their
    reaped children's. Reaped descendants are counted in a live ancestor's cutime."""
    table = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st:
                table[int(d)] = st
    roots = set(roots)

    def under(pid):
        while pid > 1:
            if pid in roots:
                return True
            pid = table.get(pid, (0, 0))[0]
        return False

    return sum(c for pid, (_, c) in table.items() if under(pid))


def pids_matching(prefix):
    """PIDs whose command line starts with `prefix`."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith(prefix):
                out.append(int(d))
    return out


def mem_mb(pids):
    """Summed (RSS, PSS) in MB of live processes."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return rss / 1024, pss / 1024


def write_pssh_fleet(state, servers, n):
    """hosts.txt and an OpenSSH client config with ControlMaster/ControlPersist, one master
    per host name (as the issue measured: ControlPath DIR/%n, ControlPersist 300)."""
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    cm = os.path.join(state, "cm")
    os.makedirs(cm, exist_ok=True)
    with open(os.path.join(state, "hosts.txt"), "w") as f:
        f.writelines(f"h{h + 1:05}\n" for h in range(n))
    with open(os.path.join(state, "ssh_config"), "w") as f:
        for h in range(n):
            f.write(f"Host h{h + 1:05}\n  Port {servers[h % len(servers)][1]}\n")
        f.write(f"Host *\n  HostName 127.0.0.1\n  User {user}\n  IdentityFile {state}/id_ed25519\n"
                f"  IdentitiesOnly yes\n  UserKnownHostsFile {state}/known_hosts\n"
                "  StrictHostKeyChecking yes\n  BatchMode yes\n  ControlMaster auto\n"
                f"  ControlPath {cm}/%n\n  ControlPersist 300\n")
    return cm


def timed(argv, state, env=None):
    """Run argv under GNU time: (wall s, user+sys s of it and its reaped children, max RSS MB,
    exit status, stdout bytes)."""
    res = os.path.join(state, "time.txt")
    out = tempfile.TemporaryFile()
    t0, cpu0 = time.monotonic(), reaped_cpu()
    proc = subprocess.Popen([TIME, "-f", "%U %S %M %x", "-o", res] + argv, stdout=out,
                            stderr=subprocess.DEVNULL, env=env)
    proc.wait()
    wall, cpu = time.monotonic() - t0, reaped_cpu() - cpu0
    _user, _sys, maxrss_kb, rc = open(res).read().split()[-4:]
    out.seek(0)
    return wall, cpu, int(maxrss_kb) / 1024, int(rc), out.read()


def held_compare(prun, state, p, n, servers, rounds):
    """Fresh prun runs, later --persist runs and later pssh + ControlPersist runs, alternating."""
    masters = [proc.pid for proc, _ in servers]
    expected = open(f"{state}/LICENSE", "rb").read()
    cm = write_pssh_fleet(state, servers, n)
    pssh = shutil.which("parallel-ssh")
    if not pssh:
        sys.exit("parallel-ssh missing: apt-get install pssh (or bench/peers/setup.sh)")
    prun_argv = [prun, "-i", f"{state}/inventory.yaml", "--known-hosts", f"{state}/known_hosts",
                 "-p", str(p), "--progress", "never"]
    cmd = f"cat {state}/LICENSE"

    def pssh_ok():
        out = os.path.join(state, "pssh-out")
        return sum(1 for h in range(n)
                   if open(os.path.join(out, f"h{h + 1:05}"), "rb").read() == expected)

    def one(kind):
        time.sleep(0.5)  # let the servers reap the previous run's sessions
        holder = pids_matching(f"{prun} __hold")
        mux = pids_matching(f"ssh: {cm}/")
        side = holder if kind == "persist" else mux if kind == "pssh" else []
        before_side = tree_cpu(side) if side else 0.0
        before = tree_cpu(masters)
        if kind == "pssh":
            out = os.path.join(state, "pssh-out")
            shutil.rmtree(out, ignore_errors=True)
            argv = [pssh, "-p", str(p), "-h", f"{state}/hosts.txt", "-t", "0", "-o", out,
                    "-x", f"-F {state}/ssh_config", cmd]
        else:
            argv = prun_argv + (["--persist", "5m"] if kind == "persist" else []) + [cmd]
        wall, cpu, rss, rc, stdout = timed(argv, state)
        time.sleep(0.5)
        after = tree_cpu(masters)
        holder = pids_matching(f"{prun} __hold")
        mux = pids_matching(f"ssh: {cm}/")
        side_now = holder if kind == "persist" else mux if kind == "pssh" else []
        side_cpu = (tree_cpu(side_now) - before_side) if side_now else 0.0
        side_rss, side_pss = mem_mb(side_now)
        ok = pssh_ok() if kind == "pssh" else verify(stdout, expected, n)[0]
        return {"kind": kind, "rc": rc, "wall": wall, "cpu": cpu + side_cpu, "rss": rss,
                "side_rss": side_rss, "side_pss": side_pss, "kept": len(side_now),
                "server": after - before, "ok": ok}

    def show(label, m):
        print(f"| {label} | {m['kind']} | {m['rc']} | {m['ok']}/{n} | {m['wall']:.2f} | {m['cpu']:.2f} | "
              f"{1000 * m['server'] / n:.2f} | {m['rss']:.1f} | {m['kept']} | {m['side_rss']:.1f} | "
              f"{m['side_pss']:.1f} |", flush=True)

    print("| run | kind | exit | hosts ok | wall s | client CPU s | server CPU ms/host | "
          "client peak RSS MB | held by | holder/masters RSS MB | PSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    show("warm-up", one("persist"))
    show("warm-up", one("pssh"))
    kinds = ["fresh", "persist", "pssh"]
    rows = []
    for r in range(rounds):
        order = kinds[r % 3:] + kinds[:r % 3]
        for k in order:
            m = one(k)
            rows.append(m)
            show(str(r + 1), m)
    med = {k: statistics.median(x["wall"] for x in rows if x["kind"] == k) for k in kinds}
    srv = {k: statistics.median(1000 * x["server"] / n for x in rows if x["kind"] == k) for k in kinds}
    print(f"\nmedian wall: fresh {med['fresh']:.2f} s, --persist {med['persist']:.2f} s "
          f"({med['persist'] / med['fresh']:.2f}x fresh, {med['persist'] / med['pssh']:.2f}x pssh+ControlPersist), "
          f"pssh+ControlPersist {med['pssh']:.2f} s")
    print(f"median server CPU per host: fresh {srv['fresh']:.2f} ms, --persist {srv['persist']:.2f} ms, "
          f"pssh+ControlPersist {srv['pssh']:.2f} ms")
    subprocess.run([pssh, "-p", str(p), "-h", f"{state}/hosts.txt", "-t", "0",
                    "-x", f"-F {state}/ssh_config -O exit", "true"], capture_output=True)


def parse_elapsed(text):
    """Seconds from prun's duration style: 0.42ms, 12.3ms, 1.25s, 2m05s."""
    m = re.fullmatch(r"(\d+)m(\d+)s", text)
    if m:
        return int(m.group(1)) * 60 + int(m.group(2))
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    return float(text[:-1])


def run_shell(prun, state, p, n, servers, commands):
    """One `prun shell` running the command `commands` times; per command: its wall time
    (from its summary line) and how many hosts ran it on a held login."""
    time.sleep(0.5)
    before = sum(children_cpu(proc.pid) for proc, _ in servers)
    argv = [prun, "-i", f"{state}/inventory.yaml", "--known-hosts", f"{state}/known_hosts",
            "-p", str(p), "--progress", "never", "shell"]
    lines = "".join(f"cat {state}/LICENSE\n" for _ in range(commands)) + ":quit\n"
    rusage = os.path.join(state, "time-shell.txt")
    t0, cpu0 = time.monotonic(), reaped_cpu()
    res = subprocess.run([TIME, "-f", "%U %S %M", "-o", rusage] + argv, input=lines.encode(),
                         capture_output=True)
    wall, cpu = time.monotonic() - t0, reaped_cpu() - cpu0
    _user, _sys, maxrss_kb = open(rusage).read().split()[-3:]
    time.sleep(0.5)
    after = sum(children_cpu(proc.pid) for proc, _ in servers)
    rows = []
    for line in res.stderr.decode(errors="replace").splitlines():
        m = re.match(r"prun: (\d+) hosts? in (\S+): (.*)", line)
        if m:
            held = re.search(r"\((\d+) on held logins\)", m.group(3))
            rows.append((parse_elapsed(m.group(2)), int(held.group(1)) if held else 0, m.group(3)))
    payload_bytes = open(f"{state}/LICENSE", "rb").read()
    ok, _ = verify(res.stdout, payload_bytes * commands, n)
    return {"rc": res.returncode, "wall": wall, "rows": rows, "ok": ok,
            "server_cpu": after - before, "cpu": cpu,
            "rss_mb": int(maxrss_kb) / 1024}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--hosts", type=int, default=1000)
    ap.add_argument("-p", "--parallel", type=int, default=100)
    ap.add_argument("-k", "--servers", type=int, default=4)
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("--persist", metavar="DURATION",
                    help="run with --persist DURATION (the holder is stopped at the end)")
    ap.add_argument("--shell", type=int, metavar="COMMANDS", default=0,
                    help="run the command COMMANDS times in one `prun shell` instead")
    ap.add_argument("--delay", metavar="DURATION",
                    help="one-way delay added by bench/latency-proxy.py between prun and the "
                         "servers (e.g. 25ms: 50 ms round trips)")
    ap.add_argument("--agent", action="store_true",
                    help="authenticate through an ssh-agent holding the key (started and "
                         "stopped here) instead of the key file")
    ap.add_argument("--prun-args", default="", metavar="ARGS",
                    help="more options for every prun run, split like a shell "
                         "(give it with =: --prun-args='--batch 25%%')")
    ap.add_argument("--engines", default="",
                    help="comma-separated engines to alternate round by round (threads,events); "
                         "default: prun's default")
    ap.add_argument("--held", action="store_true",
                    help="compare fresh runs, later --persist runs and later pssh + OpenSSH "
                         "ControlPersist runs, R alternating rounds")
    args = ap.parse_args()
    prun = os.environ.get("PRUN_BIN") or os.path.join(ROOT, "target/release/prun")
    if not os.path.exists(prun):
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    if not os.path.exists(TIME):
        sys.exit(f"{TIME} missing: apt-get install time")
    if not os.path.exists(SSHD):
        sys.exit(f"{SSHD} missing: run scripts/deps.sh")
    os.makedirs("/run/sshd", exist_ok=True)
    state = tempfile.mkdtemp(prefix="prun-core-bench-")
    global USE_AGENT
    USE_AGENT = args.agent
    servers = start_fleet(state, args.servers, args.hosts)
    agent = None
    if args.agent:
        sock = os.path.join(state, "agent.sock")
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        os.environ["SSH_AUTH_SOCK"] = sock
        subprocess.run(["ssh-add", "-q", os.path.join(state, "id_ed25519")], check=True)
    cores = os.cpu_count() or 1
    proxy = start_proxy(state, servers, args.hosts, args.delay) if args.delay else None
    try:
        print(f"prun {subprocess.run([prun, '--version'], capture_output=True, text=True).stdout.strip()}"
              f" · N={args.hosts} P={args.parallel} · {args.servers} sshd · {cores} cores"
              f" · load {os.getloadavg()[0]:.2f}")
        if args.held:
            held_compare(prun, state, args.parallel, args.hosts, servers, args.rounds)
            return
        if args.shell:
            m = run_shell(prun, state, args.parallel, args.hosts, servers, args.shell)
            print("| command | wall s | hosts on held logins | summary |")
            print("|---|---|---|---|")
            for i, (w, held, text) in enumerate(m["rows"]):
                print(f"| {i + 1} | {w:.3f} | {held} | {text} |")
            print(f"exit {m['rc']}, {m['ok']}/{args.hosts} hosts byte-exact over all commands, "
                  f"sshd CPU {m['server_cpu']:.2f} s in all, shell wall {m['wall']:.2f} s, "
                  f"prun CPU {m['cpu']:.2f} s, peak RSS {m['rss_mb']:.1f} MB (all logins held)")
            return
        print("| run | exit | hosts ok | wall s | prun CPU s | CPU/host ms | peak RSS MB | sshd CPU s | floor s | wall/floor |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        rows = []
        engines = [e for e in args.engines.split(",") if e] or [None]
        for r in range(args.rounds * len(engines)):
            engine = engines[r % len(engines)]
            extra = ("--persist", args.persist) if args.persist else ()
            extra = extra + tuple(shlex.split(args.prun_args))
            if engine:
                extra = extra + ("--engine", engine)
            m = run_once(prun, state, args.parallel, args.hosts, servers, extra)
            m["engine"] = engine or ""
            floor = (m["cpu"] + m["server_cpu"]) / cores
            m["floor"] = floor
            rows.append(m)
            print(f"| {r + 1}{' ' + engine if engine else ''} | {m['rc']} | {m['ok']}/{args.hosts} | {m['wall']:.2f} | {m['cpu']:.3f} | "
                  f"{1000 * m['cpu'] / args.hosts:.3f} | {m['rss_mb']:.1f} | {m['server_cpu']:.2f} | "
                  f"{floor:.2f} | {m['wall'] / max(floor, 1e-9):.2f} |", flush=True)
            if m["rc"] != 0 or any("attempt" in line for line in m["stderr_tail"]):
                print(f"  (prun said: {m['stderr_tail']})")
            if m["fiber_pages"] and not m["fiber_pages"].startswith("no fibers"):
                print(f"  (fiber stack pages: {m['fiber_pages']})")
        for engine in engines:
            sel = [x for x in rows if x["engine"] == (engine or "")]
            med = lambda k: statistics.median(x[k] for x in sel)
            print(f"| median{' ' + engine if engine else ''} | | | {med('wall'):.2f} | {med('cpu'):.3f} | "
                  f"{1000 * med('cpu') / args.hosts:.3f} | {med('rss_mb'):.1f} | {med('server_cpu'):.2f} | "
                  f"{med('floor'):.2f} | {med('wall') / max(med('floor'), 1e-9):.2f} |")
        if proxy:
            delay_s = parse_elapsed(args.delay)
            for engine in engines:
                one = one_host_rtts(prun, state, delay_s, engine)
                if one:
                    print(f"one host alone{' (' + engine + ')' if engine else ''}: {one[0] * 1000:.0f} ms "
                          f"through the relay, {one[1] * 1000:.0f} ms direct: {one[2]:.1f} round trips "
                          f"of {2 * delay_s * 1000:.0f} ms")
    finally:
        if args.persist or args.held:
            subprocess.run([prun, "sessions", "--stop"], capture_output=True)
        if proxy:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait()
        if agent:
            agent.send_signal(signal.SIGTERM)
            agent.wait()
        for proc, _ in servers:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
