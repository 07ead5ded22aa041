#!/usr/bin/env python3
"""Runs every peer on the same work -- `cat $STATE/LICENSE` (26,530 bytes) on N fake hosts with
parallelism P -- in alternating rounds, measures each run (lib/measure.py), checks that every host
returned exactly the file and exit status 0, and writes runs/<id>/{results.jsonl,summary.md}.

Adding a peer is one function below: decorate it with @peer(name, description) and return
{"argv": [...], "env": {...optional...}, "verify": one of the verify_* helpers (or your own)}.
The function gets a Ctx (ctx.n, ctx.p, ctx.cmd, ctx.ssh_config, ctx.hosts_txt, ctx.hosts_tsv,
ctx.inventory, ctx.key, ctx.known_hosts, ctx.out/err/rc dirs to write into, ctx.work, ...).
Raise Skip("why") when the peer is not installed.
"""
import argparse
import collections
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time

LIB = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(LIB)
sys.path.insert(0, LIB)
import hosts as hostsmod  # noqa: E402
import measure  # noqa: E402

STATE = os.environ.get("PRUN_BENCH_STATE") or os.path.join(os.environ.get("TMPDIR", "/tmp"), "prun-bench")
VENV = os.environ.get("PRUN_BENCH_VENV") or os.path.join(os.environ.get("TMPDIR", "/tmp"), "prun-bench-venv")


class Skip(Exception):
    pass


class Ctx:
    def __init__(self, n, p, fleet_dir, work):
        self.n, self.p = n, p
        self.state = STATE
        self.key = os.path.join(STATE, "id_ed25519")
        self.known_hosts = os.path.join(STATE, "known_hosts")
        self.license_path = os.path.join(STATE, "LICENSE")
        self.license = open(self.license_path, "rb").read()
        self.cmd = f"cat {self.license_path}"
        self.ssh_config = os.path.join(fleet_dir, "ssh_config")
        self.hosts_txt = os.path.join(fleet_dir, "hosts.txt")
        self.hosts_tsv = os.path.join(fleet_dir, "hosts.tsv")
        self.inventory = os.path.join(fleet_dir, "inventory.yml")
        self.hosts = [line.strip() for line in open(self.hosts_txt) if line.strip()]
        self.work = work
        self.out, self.err, self.rc = (os.path.join(work, d) for d in ("out", "err", "rc"))
        self.stdout = os.path.join(work, "stdout")
        self.stderr = os.path.join(work, "stderr")

    def venv_bin(self, name):
        path = os.path.join(VENV, "bin", name)
        if not os.path.exists(path):
            raise Skip(f"{path} missing (run bench/setup.sh)")
        return path


PEERS = collections.OrderedDict()


def peer(name, desc, default=True):
    def deco(fn):
        PEERS[name] = {"fn": fn, "desc": desc, "default": default}
        return fn
    return deco


def need(exe):
    path = shutil.which(exe)
    if not path:
        raise Skip(f"{exe} not installed")
    return path


# ---------------------------------------------------------------- verification helpers
# Each returns (contents: {host: bytes}, status: {host: "0" | reason}).

def _read_dir(d):
    got = {}
    if os.path.isdir(d):
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                got[name] = f.read()
    return got


def verify_rc_files(ctx):
    """The peer wrote out/<host> (stdout) and rc/<host> (exit code or an error line), or
    results.jsonl with {"host", "stdout", "rc"} records."""
    rcs = {h: v.decode(errors="replace").strip() for h, v in _read_dir(ctx.rc).items()}
    contents = _read_dir(ctx.out)
    jl = os.path.join(ctx.work, "results.jsonl")
    if os.path.exists(jl):
        for line in open(jl):
            r = json.loads(line)
            rcs[r["host"]] = str(r["rc"]).strip()
            if r["stdout"] is not None:
                contents[r["host"]] = r["stdout"].encode()
    return contents, rcs


def verify_pssh_cli(ctx):
    rcs = {}
    for line in open(ctx.stdout, errors="replace"):
        m = re.match(r"\[\d+\] \S+ \[(SUCCESS|FAILURE)\] (\S+)\s*(.*)", line)
        if m:
            rcs[m.group(2)] = "0" if m.group(1) == "SUCCESS" else (m.group(3) or "FAILURE")
    return _read_dir(ctx.out), rcs


def _prefixed(path):
    """'host: line' output (pdsh, clush without --outdir) back into per-host bytes."""
    got = collections.defaultdict(list)
    with open(path, "rb") as f:
        for line in f:
            host, sep, rest = line.partition(b": ")
            if sep:
                got[host.decode()].append(rest if rest.endswith(b"\n") else rest + b"\n")
    return {h: b"".join(v) for h, v in got.items()}


def verify_pdsh(ctx):
    contents = _prefixed(ctx.stdout)
    rcs = {h: "0" for h in contents}
    for line in open(ctx.stderr, errors="replace"):
        m = re.match(r"pdsh@[^:]*: (h\d+): (.*)", line)
        if m:
            rcs[m.group(1)] = m.group(2).strip()
    return contents, rcs


def verify_clush(ctx):
    contents = _read_dir(ctx.out)
    rcs = {h: "0" for h in contents}
    for line in open(ctx.stderr, errors="replace"):
        m = re.match(r"clush: (h\d+): (.*)", line)
        if m:
            rcs[m.group(1)] = m.group(2).strip()
    return contents, rcs


def verify_ansible_tree(ctx):
    """`ansible --tree OUT`: one JSON result file per host."""
    contents, rcs = {}, {}
    for h, raw in _read_dir(ctx.out).items():
        try:
            r = json.loads(raw)
        except ValueError as e:
            rcs[h] = f"unparsable tree file: {e}"
            continue
        contents[h] = r.get("stdout", "").encode()
        if r.get("unreachable"):
            rcs[h] = "unreachable: " + str(r.get("msg", ""))[:200]
        elif r.get("failed") or r.get("rc") != 0:
            rcs[h] = f"rc={r.get('rc')} {str(r.get('msg', ''))[:200]}"
        else:
            rcs[h] = "0"
    return contents, rcs


# ---------------------------------------------------------------- peers

@peer("pssh-lib", "parallel-ssh 2.x Python library, native client (libssh2 via ssh2-python, gevent)")
def _pssh_lib(ctx):
    return {"argv": [ctx.venv_bin("python"), os.path.join(LIB, "peer_pssh_lib.py"), "--client", "native",
                     "--hosts", ctx.hosts_tsv, "--key", ctx.key, "--cmd", ctx.cmd,
                     "--pool", str(ctx.p), "--out", ctx.work],
            "verify": verify_rc_files}


@peer("pssh-lib-libssh", "parallel-ssh 2.x Python library, pssh.clients.ssh (libssh via ssh-python)")
def _pssh_lib_ssh(ctx):
    return {"argv": [ctx.venv_bin("python"), os.path.join(LIB, "peer_pssh_lib.py"), "--client", "ssh",
                     "--hosts", ctx.hosts_tsv, "--key", ctx.key, "--cmd", ctx.cmd,
                     "--pool", str(ctx.p), "--out", ctx.work],
            "verify": verify_rc_files}


@peer("pssh-cli", "Debian pssh 2.3.4 CLI (parallel-ssh), one OpenSSH client process per host")
def _pssh_cli(ctx):
    return {"argv": [need("parallel-ssh"), "-p", str(ctx.p), "-h", ctx.hosts_txt, "-l", "root",
                     "-t", "0", "-o", ctx.out, "-e", ctx.err, "-X", "-F", "-X", ctx.ssh_config, ctx.cmd],
            "verify": verify_pssh_cli}


@peer("pdsh", "pdsh -R ssh, one OpenSSH client process per host")
def _pdsh(ctx):
    return {"argv": [need("pdsh"), "-R", "ssh", "-b", "-S", "-f", str(ctx.p), "-l", "root",
                     "-w", "^" + ctx.hosts_txt, ctx.cmd],
            "env": {"PDSH_SSH_ARGS_APPEND": f"-F {ctx.ssh_config}"},
            "verify": verify_pdsh}


@peer("clush", "ClusterShell clush, one OpenSSH client process per host")
def _clush(ctx):
    return {"argv": [need("clush"), "-f", str(ctx.p), "-l", "root", "-o", f"-F {ctx.ssh_config}",
                     "-w", f"h[0001-{ctx.n:04d}]", "--outdir", ctx.out, "--errdir", ctx.err, "-S", ctx.cmd],
            "verify": verify_clush}


@peer("xargs-ssh", "xargs -P P -n1 + OpenSSH ssh (plus one sh per host to keep outputs apart)")
def _xargs(ctx):
    script = 'ssh -F "$1" "$4" "$2" >"$3/out/$4" 2>"$3/err/$4"; echo $? >"$3/rc/$4"'
    return {"argv": [need("xargs"), "-a", ctx.hosts_txt, "-P", str(ctx.p), "-n", "1",
                     "sh", "-c", script, "sh", ctx.ssh_config, ctx.cmd, ctx.work],
            "verify": verify_rc_files}


@peer("asyncssh", "asyncssh (asyncio, Python), Semaphore(P), one connection per host")
def _asyncssh(ctx):
    return {"argv": [ctx.venv_bin("python"), os.path.join(LIB, "peer_asyncssh.py"),
                     "--hosts", ctx.hosts_tsv, "--key", ctx.key, "--known-hosts", ctx.known_hosts,
                     "--cmd", ctx.cmd, "--pool", str(ctx.p), "--out", ctx.work],
            "verify": verify_rc_files}


@peer("paramiko", "paramiko SSHClient in a ThreadPoolExecutor(P)")
def _paramiko(ctx):
    return {"argv": [ctx.venv_bin("python"), os.path.join(LIB, "peer_paramiko.py"),
                     "--hosts", ctx.hosts_tsv, "--key", ctx.key, "--known-hosts", ctx.known_hosts,
                     "--cmd", ctx.cmd, "--pool", str(ctx.p), "--out", ctx.work],
            "verify": verify_rc_files}


@peer("ansible-raw", "ansible-core ad-hoc, -m raw, forks=P, ssh connection (OpenSSH), no ControlPersist")
def _ansible(ctx):
    home = os.path.join(ctx.work, "ansible-home")
    return {"argv": [ctx.venv_bin("ansible"), "all", "-i", ctx.inventory, "-f", str(ctx.p),
                     "-m", "raw", "-a", ctx.cmd, "--tree", ctx.out],
            "env": {
                "ANSIBLE_SSH_ARGS": f"-F {ctx.ssh_config} -o ControlMaster=no -o ControlPath=none",
                "ANSIBLE_SSH_USETTY": "False",         # raw defaults to -tt (pty: CRLF output)
                "ANSIBLE_HOST_KEY_CHECKING": "True",
                "ANSIBLE_TIMEOUT": "60",
                "ANSIBLE_HOME": home, "ANSIBLE_LOCAL_TEMP": os.path.join(home, "tmp"),
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "False",
            },
            "verify": verify_ansible_tree}


@peer("bssh", "lablup/bssh 2.2.3 (Rust, russh on tokio); set BSSH_BIN or put bssh on PATH "
      "(cargo install bssh@2.2.3 --locked)")
def _bssh(ctx):
    exe = os.environ.get("BSSH_BIN") or shutil.which("bssh")
    if not exe:
        raise Skip("no bssh binary (set BSSH_BIN; cargo install bssh@2.2.3 --locked)")
    # bssh's ssh_config parser refuses `GlobalKnownHostsFile /dev/null`: give it a copy without it.
    cfg = os.path.join(ctx.work, "bssh_ssh_config")
    with open(ctx.ssh_config) as src, open(cfg, "w") as dst:
        dst.writelines(l for l in src if "GlobalKnownHostsFile" not in l)
    # bssh ignores UserKnownHostsFile and, when ~/.ssh/known_hosts is missing, silently turns
    # host key verification off even with --strict-host-key-checking yes: give it a HOME with one.
    home = os.path.join(ctx.work, "bssh-home")
    os.makedirs(os.path.join(home, ".ssh"), mode=0o700, exist_ok=True)
    shutil.copy(ctx.known_hosts, os.path.join(home, ".ssh", "known_hosts"))
    return {"argv": [exe, "-F", cfg, "-H", f"h[0001-{ctx.n:04d}]", "--parallel", str(ctx.p),
                     "-l", "root", "-i", ctx.key, "--strict-host-key-checking", "yes",
                     "--stream", ctx.cmd],
            "env": {"HOME": home},
            "verify": verify_bssh}


def verify_bssh(ctx):
    """bssh --stream prefixes each line with the host's *resolved address* ([127.0.0.1]), so
    output cannot be attributed to host names here. Verified in aggregate instead: the
    prefixed lines, taken together, must be exactly N copies of the expected output (as a
    multiset of lines). bssh 2.2.3 also reports every host as failed in --stream mode while
    printing its output (its exit code is not used here)."""
    lines = collections.Counter()
    with open(ctx.stdout, "rb") as f:
        for line in f:
            if line.startswith(b"[") and b"] " in line:
                lines[line.split(b"] ", 1)[1].rstrip(b"\n")] += 1
    exp = ctx.license
    want = collections.Counter(l for l in exp.split(b"\n")[:-1])
    ok = all(lines[k] == v * len(ctx.hosts) for k, v in want.items()) and \
        sum(lines.values()) == sum(want.values()) * len(ctx.hosts)
    if ok:
        return {h: exp for h in ctx.hosts}, {h: "0" for h in ctx.hosts}
    return {}, {h: "aggregate output mismatch" for h in ctx.hosts}


@peer("prun", "prun (this project), its default engine (events), output streamed as `HOST | line` "
      "like bssh and pdsh: target/release/prun, or PRUN_BIN")
def _prun(ctx, engine=None, out_dir=False):
    repo_bin = os.path.join(os.path.dirname(os.path.dirname(BENCH)), "target", "release", "prun")
    exe = os.environ.get("PRUN_BIN") or (repo_bin if os.path.exists(repo_bin) else shutil.which("prun"))
    if not exe:
        raise Skip("no prun binary (cargo build --release, or set PRUN_BIN)")
    # known_hosts and key given explicitly (HOME may not have them); hosts that did not succeed
    # listed in the --failed-hosts file; -F none: the harness's hosts are described by the
    # inventory, not by the machine's ssh_config. Output: prefixed lines on stdout (prun's
    # default, the same work bssh --stream and pdsh do), or with out_dir each host's stdout in
    # OUT-DIR/<host>.out and -q (the work pssh -o does: two files created per host).
    out = ["-q", "--out-dir", os.path.join(ctx.work, "prun-out")] if out_dir else []
    return {"argv": [exe, "-F", "none", "--inventory", ctx.inventory, "--parallel", str(ctx.p),
                     "--known-hosts", ctx.known_hosts, "--identity", ctx.key]
                    + out + ["--failed-hosts", os.path.join(ctx.work, "prun-failed")]
                    + (["--engine", engine] if engine else []) + [ctx.cmd],
            "verify": verify_prun_outdir if out_dir else verify_prun}


@peer("prun-threads", "prun with --engine threads (one thread per running host), the study's first setup")
def _prun_threads(ctx):
    return _prun(ctx, "threads")


@peer("prun-outdir", "prun writing each host's output to --out-dir files (-q), like pssh -o",
      default=False)
def _prun_outdir(ctx):
    return _prun(ctx, out_dir=True)


def prun_failed(ctx):
    failed = set()
    fp = os.path.join(ctx.work, "prun-failed")
    if os.path.exists(fp):
        failed = {line.split()[0] for line in open(fp, errors="replace") if line.strip()}
    return failed


def verify_prun(ctx):
    """prun's stream output: `NAME | line` (the name padded to the widest), each host's lines
    in order; the lines of one host, joined, are its stdout. The --failed-hosts file lists the
    hosts that did not succeed (absent or empty when all did)."""
    contents = collections.defaultdict(bytearray)
    with open(ctx.stdout, "rb") as f:
        for line in f:
            name, sep, rest = line.partition(b" | ")
            if sep:
                contents[name.strip().decode(errors="replace")] += rest
    failed = prun_failed(ctx)
    return ({h: bytes(v) for h, v in contents.items()},
            {h: ("listed in --failed-hosts" if h in failed else "0") for h in contents})


def verify_prun_outdir(ctx):
    """prun --out-dir D: D/<host>.out holds the host's stdout."""
    d = os.path.join(ctx.work, "prun-out")
    contents = {}
    for h in ctx.hosts:
        p = os.path.join(d, h + ".out")
        if os.path.exists(p):
            with open(p, "rb") as f:
                contents[h] = f.read()
    failed = prun_failed(ctx)
    return contents, {h: ("listed in --failed-hosts" if h in failed else "0") for h in contents}


# ---------------------------------------------------------------- running

SSHD_NORMAL = re.compile(r"^(Accepted publickey|Accepted key|Received disconnect|Disconnected from|"
                         r"Server listening|debug|Starting session|Close session|User child|"
                         r"Connection from|Postponed|Transferred|Closing connection to|"
                         r"Connection closed by \S+ port \d+$)")


def sshd_log_offsets():
    return {f: os.path.getsize(os.path.join(STATE, f)) for f in os.listdir(STATE)
            if f.startswith("sshd-") and f.endswith(".log")}


def sshd_log_scan(offsets):
    """New sshd log lines since offsets: negotiated kex (needs sshd-up.sh -v) and unusual lines."""
    kex, unusual = collections.Counter(), collections.Counter()
    for f, off in offsets.items():
        with open(os.path.join(STATE, f), errors="replace") as fh:
            fh.seek(off)
            for line in fh:
                line = line.strip()
                m = re.search(r"kex: algorithm: (\S+)", line)
                if m:
                    kex[m.group(1)] += 1
                m = re.search(r"kex: client->server cipher: (\S+) MAC: (\S+)", line)
                if m:
                    kex["cipher " + m.group(1) + (" " + m.group(2) if m.group(2) != "<implicit>" else "")] += 1
                if line and not SSHD_NORMAL.match(line):
                    for rx, rep in ERR_NORMALIZE:
                        line = rx.sub(rep, line)
                    unusual[line[:160]] += 1
    return dict(kex), unusual.most_common(6)


ERR_NORMALIZE = [(re.compile(r"\bh\d{4}\b"), "hNNNN"), (re.compile(r"\d+"), "N")]


def error_summary(ctx, limit=6):
    """Most common stderr lines (hosts and numbers normalised), from stderr and err/ files."""
    counts = collections.Counter()
    paths = [ctx.stderr] + ([os.path.join(ctx.err, f) for f in os.listdir(ctx.err)] if os.path.isdir(ctx.err) else [])
    for path in paths:
        try:
            with open(path, errors="replace") as f:
                for i, line in enumerate(f):
                    if i > 2000:
                        break
                    line = line.strip()
                    if not line:
                        continue
                    for rx, rep in ERR_NORMALIZE:
                        line = rx.sub(rep, line)
                    counts[line[:160]] += 1
        except OSError:
            pass
    return counts.most_common(limit)


def run_one(name, spec_fn, n, p, fleet_dir, work_root, rnd, timeout, keep, log_dir, nofile=None):
    work = os.path.join(work_root, f"{name}-r{rnd}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    ctx = Ctx(n, p, fleet_dir, work)
    for d in (ctx.out, ctx.err, ctx.rc):
        os.makedirs(d)
    spec = spec_fn(ctx)   # may raise Skip
    env = dict(os.environ)
    env.update(spec.get("env", {}))
    offsets = sshd_log_offsets()
    m = measure.run_measured(spec["argv"], env=env, cwd=work, stdout_path=ctx.stdout,
                             stderr_path=ctx.stderr, state=STATE, timeout=timeout, nofile=nofile)
    m["kex"], m["sshd_log"] = sshd_log_scan(offsets)
    contents, rcs = spec["verify"](ctx)
    bad = {}
    for h in ctx.hosts:
        c, rc = contents.get(h), rcs.get(h)
        if c != ctx.license:
            bad[h] = "no output" if c is None else f"output {len(c)} bytes"
            if rc not in (None, "0"):
                bad[h] += f"; {rc}"
        elif rc != "0":
            bad[h] = f"status {rc!r}"
    m.update(peer=name, n=n, p=p, round=rnd, ok=n - len(bad), failed=len(bad),
             fail_examples=dict(list(bad.items())[:5]), errors=error_summary(ctx),
             bytes_expected=len(ctx.license), argv=spec["argv"], env=spec.get("env", {}))
    os.makedirs(log_dir, exist_ok=True)
    with open(ctx.stderr, "rb") as f:
        open(os.path.join(log_dir, f"{name}-r{rnd}.stderr"), "wb").write(f.read(65536))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return m


def fmt_summary(rows, n, p, peers_desc):
    by = collections.OrderedDict()
    for r in rows:
        by.setdefault(r["peer"], []).append(r)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    lines = [
        f"N={n} hosts, P={p}; median over {max(len(v) for v in by.values())} alternating rounds "
        "(wall min-max in brackets; 'quietest round' = the round with the least other load). CPU = user+sys of the whole process tree; server = sshd CPU; "
        "other load = CPU used on the machine during the run by neither the peer, sshd nor this harness "
        "(another job on the box); runs with a lot of it are less trustworthy.",
        "",
        "| peer | ok/N (worst) | wall s | wall s, quietest round | hosts/s | client CPU s (ms/host) | server CPU s (ms/host) | peak tree PSS MB "
        "| peak tree RSS MB | max 1-proc RSS MB | peak procs | peak server conns | other load CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rs in sorted(by.items(), key=lambda kv: med([r["wall_s"] for r in kv[1]])):
        walls = [r["wall_s"] for r in rs]
        okw = min(r["ok"] for r in rs)
        to = " TIMEOUT" if any(r["timed_out"] for r in rs) else ""
        lines.append(
            f"| {name} | {okw}/{n}{to} | {med(walls):.2f} [{min(walls):.2f}-{max(walls):.2f}] "
            f"| {min(rs, key=lambda r: r['noise_cpu_s'])['wall_s']:.2f} "
            f"| {n / med(walls):.0f} | {med([r['cpu_s'] for r in rs]):.2f} ({med([r['cpu_s'] for r in rs]) * 1000 / n:.2f}) "
            f"| {med([r['server_cpu_s'] for r in rs]):.2f} ({med([r['server_cpu_s'] for r in rs]) * 1000 / n:.0f}) "
            f"| {med([r['peak_tree_pss_mb'] for r in rs]):.0f} "
            f"| {med([r['peak_tree_rss_mb'] for r in rs]):.0f} | {max(r['maxrss_single_mb'] for r in rs):.0f} "
            f"| {max(r['peak_procs'] for r in rs)} | {max(r['peak_server_conns'] for r in rs)} "
            f"| {med([r['noise_cpu_s'] for r in rs]):.2f} |")
    fails = [r for r in rows if r["failed"] or r["timed_out"] or r["rc"] != 0]
    if fails:
        lines += ["", "Failures / non-zero exits:", ""]
        for r in fails:
            lines.append(f"- {r['peer']} round {r['round']}: rc={r['rc']} failed={r['failed']}"
                         f"{' TIMED OUT' if r['timed_out'] else ''} e.g. {r['fail_examples']}")
            for line, c in r["errors"][:4]:
                lines.append(f"    - {c}x `{line}`")
    kex = {k: collections.Counter() for k in by}
    srv = collections.Counter()
    for r in rows:
        kex[r["peer"]].update(r.get("kex") or {})
        for line, c in r.get("sshd_log") or []:
            srv[f"{r['peer']}: {line}"] += c
    if any(kex.values()):
        lines += ["", "Negotiated by each peer (from sshd debug log):", ""]
        lines += [f"- {k}: " + ", ".join(f"{a} x{c}" for a, c in v.most_common()) for k, v in kex.items() if v]
    if srv:
        lines += ["", "Unusual sshd log lines during the runs (count, peer: line):", ""]
        lines += [f"- {c}x {line}" for line, c in srv.most_common(12)]
    lines += prun_ratios(by, n)
    lines += ["", "Peers:", ""] + [f"- {k}: {peers_desc.get(k, '')}" for k in by]
    return "\n".join(lines) + "\n"


def prun_ratios(by, n):
    """prun against the best peer on each measure, and against the floor: the CPU the run
    needs on this machine, (client CPU + server CPU) / cores, i.e. the wall time it could not
    beat even with perfect overlap."""
    if "prun" not in by or len(by) < 2:
        return []
    med = statistics.median
    def m(rs, k):
        return med([r[k] for r in rs])
    prun = by["prun"]
    others = {k: v for k, v in by.items() if not k.startswith("prun")}
    if not others:
        return []
    cores = os.cpu_count() or 1
    floor = med([(r["cpu_s"] + r["server_cpu_s"]) / cores for r in prun])
    fast = min(others, key=lambda k: m(others[k], "wall_s"))
    lean = min(others, key=lambda k: m(others[k], "cpu_s"))
    light = min(others, key=lambda k: m(others[k], "peak_tree_rss_mb"))
    pw, pc, pr = m(prun, "wall_s"), m(prun, "cpu_s"), m(prun, "peak_tree_rss_mb")
    return [
        "", "prun against the best peer on each measure (medians):", "",
        "| measure | prun | best peer | ratio |",
        "|---|---|---|---|",
        f"| wall s | {pw:.2f} | {fast} {m(others[fast], 'wall_s'):.2f} | {pw / m(others[fast], 'wall_s'):.2f} |",
        f"| wall s vs floor (client+server CPU / {cores} cores) | {pw:.2f} | floor {floor:.2f} | {pw / floor:.2f} |",
        f"| client CPU ms/host | {pc * 1000 / n:.2f} | {lean} {m(others[lean], 'cpu_s') * 1000 / n:.2f} | {pc / m(others[lean], 'cpu_s'):.2f} |",
        f"| peak tree RSS MB | {pr:.0f} | {light} {m(others[light], 'peak_tree_rss_mb'):.0f} | {pr / m(others[light], 'peak_tree_rss_mb'):.2f} |",
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, help="number of hosts")
    ap.add_argument("p", type=int, nargs="?", default=100, help="parallelism (default 100)")
    ap.add_argument("--rounds", type=int, default=None, help="default: 3 (N<=100), 2 (N>100)")
    ap.add_argument("--peers", default=None, help="comma list; default all: " + ",".join(PEERS))
    ap.add_argument("--skip", default="", help="comma list of peers to leave out")
    ap.add_argument("--timeout", type=int, default=900, help="per run, seconds")
    ap.add_argument("--keep", action="store_true", help="keep per-host outputs")
    ap.add_argument("--tag", default="")
    ap.add_argument("--nofile", type=int, default=None,
                    help="soft open-files limit (ulimit -n) for the peers, to see how they fail")
    ap.add_argument("--ssh-opt", action="append", default=[],
                    help='extra OpenSSH client option for the generated ssh_config, e.g. '
                         '"KexAlgorithms curve25519-sha256" (affects peers that spawn ssh)')
    ap.add_argument("--delay", metavar="DURATION", default=None,
                    help="one-way delay between every peer and the servers, through "
                         "latency-proxy.py (25ms: 50 ms round trips; this kernel has no netem)")
    a = ap.parse_args()

    ports_file = os.path.join(STATE, "ports")
    if not os.path.exists(ports_file):
        sys.exit(f"no sshd state in {STATE}: run bench/sshd-up.sh first")
    ports = open(ports_file).read().split()
    masters = measure.sshd_master_pids(STATE)
    if not masters or not all(os.path.exists(f"/proc/{pid}") for pid in masters):
        sys.exit("sshd instances are not running: run bench/sshd-up.sh")
    names = a.peers.split(",") if a.peers else [k for k, v in PEERS.items() if v["default"]]
    names = [x for x in names if x not in a.skip.split(",")]
    for x in names:
        if x not in PEERS:
            sys.exit(f"unknown peer {x}; known: {', '.join(PEERS)}")
    rounds = a.rounds or (3 if a.n <= 100 else 2)

    run_id = (time.strftime("%Y%m%d-%H%M%S") + f"-n{a.n}-p{a.p}" + (f"-delay{a.delay}" if a.delay else "")
              + (f"-{a.tag}" if a.tag else ""))
    run_dir = os.path.join(os.environ.get("PRUN_BENCH_RUNS") or os.path.join(BENCH, "runs"), run_id)
    fleet_dir = os.path.join(run_dir, "fleet")
    proxy = None
    if a.delay:
        proxy, ports = start_proxy(ports, a.delay, run_dir)
    hostsmod.write_all(STATE, hostsmod.fleet(a.n, ports), fleet_dir, extra=a.ssh_opt)
    work_root = os.path.join(run_dir, "work")
    results = os.path.join(run_dir, "results.jsonl")
    print(f"run {run_id}: N={a.n} P={a.p} rounds={rounds} peers={','.join(names)} ports={' '.join(ports)}"
          + (f" ssh-opts={a.ssh_opt}" if a.ssh_opt else ""), flush=True)

    rows, skipped = [], {}
    for rnd in range(rounds):
        k = rnd % len(names)
        order = names[k:] + names[:k]   # rotate so no peer always runs first/last
        for name in order:
            if name in skipped:
                continue
            try:
                m = run_one(name, PEERS[name]["fn"], a.n, a.p, fleet_dir, work_root, rnd,
                            a.timeout, a.keep, os.path.join(run_dir, "logs"), a.nofile)
            except Skip as e:
                skipped[name] = str(e)
                print(f"  skip {name}: {e}", flush=True)
                continue
            rows.append(m)
            with open(results, "a") as f:
                f.write(json.dumps(m) + "\n")
            print(f"  r{rnd} {name:16s} ok {m['ok']}/{a.n} rc={m['rc']} wall {m['wall_s']:.2f}s "
                  f"cpu {m['cpu_s']:.2f}s srv {m['server_cpu_s']:.2f}s pss {m['peak_tree_pss_mb']:.0f}MB "
                  f"conns {m['peak_server_conns']} harness {m['harness_cpu_s']:.1f}s noise {m['noise_cpu_s']:.1f}s "
                  f"{m['noise_top']}"
                  + (" TIMEOUT" if m["timed_out"] else "")
                  + (f" leftover {len(m['leftover_pids'])}" if m["leftover_pids"] else ""), flush=True)
            time.sleep(1)
    if proxy:
        proxy.send_signal(signal.SIGTERM)
        proxy.wait()
    shutil.rmtree(work_root, ignore_errors=True)
    if not rows:
        sys.exit("nothing ran")
    summary = fmt_summary(rows, a.n, a.p, {k: v["desc"] for k, v in PEERS.items()})
    if skipped:
        summary += "\nSkipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + "\n"
    info = machine_info()
    cmdline = "bench/peers.sh " + shlex.join(sys.argv[1:])
    summary = f"Run `{run_id}`: `{cmdline}` ({info})\n\n" + summary
    open(os.path.join(run_dir, "summary.md"), "w").write(summary)
    print("\n" + summary)
    print(f"results: {os.path.relpath(results, BENCH)}  summary: {os.path.relpath(run_dir, BENCH)}/summary.md")


def start_proxy(ports, delay, run_dir):
    """Relay a new loopback port to each sshd port with `delay` one way (latency-proxy.py, beside
    this harness or one folder up) and trust the servers' key on the relay ports too. Returns the
    proxy process and the relay ports, which the run's host lists then use."""
    import socket
    script = next((p for p in (os.path.join(BENCH, "latency-proxy.py"),
                               os.path.join(os.path.dirname(BENCH), "latency-proxy.py"))
                   if os.path.exists(p)), None)
    if not script:
        sys.exit("latency-proxy.py not found beside the harness")
    relays = []
    for target in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            relays.append((s.getsockname()[1], int(target)))
    os.makedirs(run_dir, exist_ok=True)
    proxy = subprocess.Popen(
        [sys.executable, script, "--delay", delay] + [f"127.0.0.1:{a}=127.0.0.1:{b}" for a, b in relays],
        stdout=subprocess.PIPE, stderr=open(os.path.join(run_dir, "proxy.log"), "w"), text=True)
    for _ in relays:
        if not proxy.stdout.readline():
            sys.exit("latency-proxy did not start (see proxy.log)")
    known = os.path.join(STATE, "known_hosts")
    lines = open(known).read().splitlines()
    key = " ".join(lines[0].split()[1:3])
    with open(known, "a") as f:
        f.writelines(f"[127.0.0.1]:{a} {key}\n" for a, _ in relays
                     if f"[127.0.0.1]:{a} {key}" not in lines)
    print(f"latency-proxy: {delay} one way; relays {' '.join(f'{a}->{b}' for a, b in relays)}", flush=True)
    return proxy, [str(a) for a, _ in relays]


def resummarize(run_dir):
    """Re-renders runs/<id>/summary.md from its results.jsonl (e.g. after changing the table)."""
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "results.jsonl"))]
    head = open(os.path.join(run_dir, "summary.md")).read().split("\n\n", 1)[0]
    text = head + "\n\n" + fmt_summary(rows, rows[0]["n"], rows[0]["p"], {k: v["desc"] for k, v in PEERS.items()})
    open(os.path.join(run_dir, "summary.md"), "w").write(text)
    return text


def machine_info():
    def sh(c):
        try:
            return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            return "?"
    return (f"{os.cpu_count()} CPUs, kernel {os.uname().release}, {sh('/usr/sbin/sshd -V 2>&1 | head -1')}, "
            f"ulimit -n {sh('ulimit -n')}, loadavg at end {os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--resummarize":
        for d in sys.argv[2:]:
            print(resummarize(d))
    else:
        main()
