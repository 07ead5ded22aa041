//! The command line (clap definitions only). Also the source of the man page.

use clap::{CommandFactory, Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Extra manual sections, shared by `--help` and the man page: (title, body). Paragraphs are
/// separated by blank lines; a paragraph whose lines all start with two spaces is shown as is.
pub const SECTIONS: &[(&str, &str)] = &[
    (
        "EXAMPLES",
        "  prun -i hosts.yaml 'cat LICENSE'
  prun -i hosts.yaml -l 'web:!web03' -p 100 uptime
  prun -H 'root@web[01-10]:2222,db1' --host-key-check accept-new 'df -h /'
  prun -i hosts.yaml -l db --list-hosts
  prun -i hosts.yaml -q --report timings.csv 'systemctl is-active nginx'
  prun bench -i hosts.yaml --levels 1,10,50 'cat LICENSE'
  prun -i hosts.yaml push -r --mkdir ./conf /etc/app
  prun -i hosts.yaml pull /var/log/syslog ./logs
  prun -J bastion.example.com -H 'web[01-20]' uptime
  prun -i hosts.yaml --canary 1 --batch 25% --max-fail 2 'systemctl restart app'
  prun -i hosts.yaml 'echo {host} is in rack {rack}'
  prun -i hosts.yaml --local -p 20 'ipmitool -H {addr} chassis status'",
    ),
    (
        "ROLLING CHANGES",
        "\
--batch runs the hosts in batches, Ansible's serial: N hosts, N% of them (rounded down, at \
least one), or a list that steps up with its last size repeating (--batch 1,5,25% on 100 \
hosts: 1, 5, 25, 25, 25, 19). A batch starts only once every host of the previous one has \
finished; within a batch up to --parallel hosts run at once. --order sets the order hosts \
are started, batched and numbered in: inventory (the default), reverse, sorted (by name, \
digit runs as numbers), reverse-sorted, shuffle.

--max-fail N (or N%, of all selected hosts) stops the rollout once more than N hosts have \
failed (any status but ok): no new host starts, hosts already running finish, the rest are \
reported as skipped (\"not started\" in the summary, status skipped in the reports) and the \
exit status is 6. The count is over the whole run and is checked as each host ends. \
--fail-fast is --max-fail 0.

--canary N runs N hosts first as a batch of their own, shows their output, then asks on \
the terminal (/dev/tty) whether to go on with the others; only y or yes goes on, anything \
else stops the run (exit status 6). Without a terminal prun refuses to start (exit status \
2) unless --yes is given; with --yes it goes on without asking when every canary host \
succeeded, and stops (exit status 6) when one did not. --pause DURATION waits between \
batches; --pause ask asks before every batch after the first. --stagger DURATION spaces the \
start of each host from the one before (the key exchanges are the servers' costliest \
part). As each batch starts, stderr says so (prun: batch 2 of 5: 10 hosts; not with -q). \
The summary counts each batch's hosts by status and names the batch of every host \
that did not succeed; the reports carry a batch column (CSV) or field (JSON), --output json \
a batch_start event and each host's batch in run_start. prun shell applies --batch, \
--max-fail, --pause DURATION and --stagger to every line, and a canary as with --yes.",
    ),
    (
        "PLACEHOLDERS",
        "\
The command, --env values and the paths of push (local sources and REMOTE_DIR) and pull \
(REMOTE_PATH) may name values of each host in braces: {host} (its inventory name), {addr}, \
{port}, {user} (as resolved for the connection), {batch} (from 1), {index} (its place in the \
run order, from 1), and any inventory var ({rack}, {ansible_host}); strings, numbers and \
booleans can be substituted. In the command a value is shell-quoted unless it is made only \
of letters, digits and _-./:@%+=, (so it arrives as one literal word: quotes, spaces and \
$(...) in it are not run); {NAME:raw} inserts it as it is. Paths and --env values get the \
value as it is (no shell reads them there). Quoting is for a placeholder outside quotes: \
inside double quotes, a shell would still expand a value's $(...) — write {NAME} bare.

Only {NAME} with NAME made of letters, digits and _ (not starting with a digit) is a \
placeholder, and not after $ (${HOME} is the shell's): {}, {a,b}, {1..5} and jq's {a: 1} are \
left alone. {{NAME}} writes a literal {NAME} (awk '{{print}}'), and --literal turns \
substitution off. A name some selected host does not have is a usage error (exit status 2) \
naming the name and the first such host, before anything connects. --dry-run prints each \
host's name, batch and rendered command (or transfer), tab-separated, and connects to \
nothing. Every line of prun shell takes placeholders the same way.

--local runs the command on this machine instead, once per selected host (pdsh -R exec), \
through /bin/sh -c in its own process group, with the same placeholders, --parallel, \
rollout, --env, --cwd, --stdin, --timeout, output modes, reports and exit status; \
PRUN_HOST, PRUN_ADDR, PRUN_PORT, PRUN_USER, PRUN_BATCH and PRUN_INDEX are set in its \
environment. A --timeout or Ctrl-C stops its process group (SIGTERM, then SIGKILL after a \
second). Nothing is resolved or contacted: the hosts may not exist. Nothing runs through \
sudo (--sudo is refused with --local; an inventory's become does not apply).",
    ),
    (
        "INVENTORY",
        "\
-i takes a file, a directory, an executable or - (stdin); its format is told by its content, \
whatever its name, and several -i of any kinds merge into one inventory, as in Ansible.

Ansible YAML: groups (the top level, usually all:) with hosts:, vars: and children:. Host \
names may be ranges: web[01:04], web[01-10], db-[a:c], node[1-3,7]. A host listed in several \
groups is one host.

Ansible INI (/etc/ansible/hosts): [group] sections of host lines, [group:vars] (key = value) \
and [group:children] (group names); hosts before the first section are in ungrouped. A host \
line is a host pattern (ranges, host:port) and key=value vars, split into words like a shell \
line and typed as Ansible's ini plugin does (numbers, True/False/None, quoted strings, else \
text). # and ; start comments. A :vars or :children section for a group no section \
declares is an error naming the line.

group_vars/ and host_vars/ beside each inventory file (inside an inventory directory), and \
in --playbook-dir DIR (which wins over them): NAME, NAME.yml, NAME.yaml, NAME.json, and \
NAME/ directories of such files (sorted; later files win). A vars file or value encrypted \
with Ansible Vault is skipped with a warning naming it (prun does not decrypt).

Dynamic inventories: an executable file (#! or ELF) is run with --list, stdin closed and \
stderr passed through, bounded by --inventory-timeout (default 60s; then it is killed with \
its process group); a non-zero exit, a hang or output that is not inventory JSON is a usage \
error naming the program. The JSON (groups with hosts, vars and children lists, \
_meta.hostvars) is also read from a file or from stdin (-i -), so ansible-inventory -i \
ANY --list | prun -i - ... works for every Ansible inventory plugin. Without _meta each \
host is asked for with --host NAME. A directory: every inventory file in it, sorted \
(hidden files and names ending ~, .orig, .bak, .cfg, .retry, .pyc skipped), and its \
group_vars/ and host_vars/.

ClusterShell groups.d files (SOURCE: {GROUP: NODESET}): node sets with ranges, ',', @group \
and @source:group references and the operators ! (minus), & (and) and ^ (xor), left to \
right; each group becomes a group of that name. A plain host list: one [user@]host[:port] \
per line (ranges allowed), # comments.

Vars prun reads, with the Ansible spelling also accepted: user (ansible_user), address \
(ansible_host), port (ansible_port), identity_file (ansible_ssh_private_key_file), and jump \
(a bastion, [user@]host[:port], or none; see JUMP HOSTS), become (ansible_become) with \
become_user (default root: the host's command runs through sudo as that user, as with \
--sudo-user, which beats it; a become_method other than sudo is refused), and in \
ansible_ssh_common_args or ansible_ssh_extra_args the bastion of -J HOST, -o ProxyJump=HOST \
or -o ProxyCommand=\"ssh -W %h:%p [-p PORT] [user@]HOST\" (other options there are named \
in a warning and not used). Every other var is kept for {name} placeholders (see \
PLACEHOLDERS); a likely typo of a prun key gets a warning. Precedence, \
Ansible's: the inventory's group vars (all, then parents before children; groups of the \
same depth by name unless ansible_group_priority orders them) < group_vars/all < the other \
groups' group_vars files < the host's own vars < its host_vars files; the command line \
beats them all. Within one level prun's spelling beats ansible_*. Errors name the file, \
line and column. One range expands to at most 1,000,000 names (larger is a usage error, \
refused before anything is allocated); group hierarchies of any shape, diamonds included, \
load in time linear in their size.",
    ),
    (
        "LIMIT PATTERNS",
        "\
-l takes terms separated by ':' (or by ',' when the pattern has one): a group or host name, \
a glob (web*), a regex (~web0[1-3], matched anywhere in the name), a range (web[01:03]) or \
@FILE (host names, one per line). !term excludes and &term intersects. Unions apply first, \
then intersections, then exclusions, whatever the order. A term that matches nothing is an \
error.",
    ),
    (
        "OUTPUT",
        "\
--output stream (the default): remote stdout goes to stdout and remote stderr to stderr, one \
whole line at a time, prefixed with the host name (host column aligned). A line longer than 64 KiB is written in 64 KiB \
pieces; a last line without a newline gets one. Everything prun itself says (progress, \
warnings, the summary) goes to stderr.

--output block: each host's output as one block under a header (host, status, exit code, \
duration) when the host finishes. --output gather: at the end, hosts with byte-identical \
stdout, stderr and outcome grouped under one header naming them in range form \
(web[01-03,07]), largest group first. Both hold output in memory up to a per-host cap and \
spill to temporary files past it (gather: one shared file for all hosts). --output json: JSON Lines on stdout, one event per line \
with a type: run_start (schema version 1), host_start, output (the chunk as text when valid \
UTF-8, else base64 in bytes), host_end (the host's report record), batch_start (batch, \
batches, hosts; only with batches), summary. --out-dir DIR \
also writes DIR/<host>.out and DIR/<host>.err byte-exact, each created new (mode 0600, under a \
random name, then renamed into place: a file or symlink already there is replaced, never \
written through). Output that cannot be written (a full disk, a failing --out-dir) is said \
and makes the exit status 1. --failed-hosts FILE lists the hosts \
that did not succeed, for -l @FILE. On a terminal, control characters in remote output are \
shown escaped (^[, ^M); files and pipes get the bytes unchanged. Text the server chose \
that is not output (an exit-signal name, remote file names and helper messages in failures, \
notes) is shown escaped everywhere: summary, headers, JSON and CSV reports.

The summary shows counts by status (ok, failed, error, timeout, signal, cancelled, \
skipped), \
min/p50/p95/max of each phase over the hosts that reached it, the slowest hosts with the \
step they spent most time in, and every host that did not succeed with the phase, failure \
kind and a one-line reason.

Phases: connect (start to TCP connected, includes DNS), handshake (SSH banner and key \
exchange), hostkey (check against known_hosts), auth, channel_open, exec (exec request \
accepted), first_byte (exec to the first byte of output), read (exec to end of both streams), \
close (channel closed and exit status known), total; push and pull use open and transfer \
instead of exec, first_byte and read (see FILE TRANSFER). Failure kinds: refused, unreachable, \
timeout, banner, kex, hostkey-unknown, hostkey-mismatch, auth, channel, exec, io, cancelled, \
skipped.",
    ),
    (
        "TIMING REPORT",
        "\
--report FILE writes one record per host, as JSON (FILE.json) or CSV (FILE.csv, or \
--report-format): name, address, port, user, status, exit_code, signal, failure_phase, \
failure_kind, failure_message, attempts, auth_method, kex, cipher, stdout_bytes, \
stderr_bytes, files, transfer_bytes and transfer_bytes_per_s (push/pull), the duration of \
every phase, retry_wait and total. Durations are milliseconds \
as decimal numbers with microsecond precision; a phase a host did not reach is absent (JSON) \
or empty (CSV). The phases of the final attempt plus retry_wait (earlier attempts, backoff, \
waiting for the connection-rate limit) add up to total (first_byte lies inside read).

The JSON report is one object: version (the schema version, 1), prun_version, command, \
started (RFC 3339, UTC), parallel, elapsed_ms, hosts_total, counts (hosts by status), phases \
(for each phase and total: hosts, min_ms, p50_ms, p95_ms, max_ms over the hosts that reached \
it) and hosts (the records, with timings_ms mapping phase to milliseconds, notes, \
reused: true on a host whose command ran on a held login, and retried on a host that needed \
more than one attempt: why each earlier attempt failed, oldest first). The CSV report has a \
header row and one row per host, with a column per phase (connect_ms … close_ms, \
retry_wait_ms, total_ms), then reused (true or false), batch (empty without batches) and \
retried (the reasons joined by \"; \"). With batches \
(--batch, --canary) each JSON record has batch, and a run the rollout stopped has stopped \
(why, in words). The report is written at the end of the run, after \
Ctrl-C too, to a new file (mode 0600) renamed over FILE.",
    ),
    (
        "METRICS",
        "\
--metrics URL (repeatable) sends every host's timings when the run ends: influx://HOST:PORT/DB \
posts InfluxDB 1.x line protocol to /write?db=DB&precision=ns (at most 5,000 points a \
request; 5 s per request, three tries, 10 s in all; the port defaults to 8086); \
influx+https://HOST:PORT/DB does the same over HTTPS (the system's OpenSSL trust store; \
SSL_CERT_FILE names another CA); influx2://HOST:PORT/ORG/BUCKET (or influx2+https://) posts \
to InfluxDB 2.x's /api/v2/write with the token in PRUN_INFLUX_TOKEN (required). Credentials \
come from the environment only: PRUN_INFLUX_TOKEN is sent as Authorization: Token, else \
PRUN_INFLUX_USER and PRUN_INFLUX_PASSWORD as basic authentication; a URL holding credentials \
or a query exits 2 without repeating them. graphite://HOST:PORT writes Graphite \
plaintext, PREFIX.HOST.PHASE MS SECONDS and PREFIX.HOST.total (--metrics-prefix, default \
prun); file:PATH appends the line protocol to a file. Points: prun_phase (tags run, host, \
group (the first inventory group that lists the host, - for none), phase, status; field ms, \
the values of the --report timings), prun_host (tags run, host, group, status; fields total_ms, attempts, stdout_bytes, stderr_bytes, exit_code) and prun_run (tag \
run; fields hosts, wall_ms, command and a count per status), all at the run's start time, \
tag values escaped. A sink that is down or refuses costs a warning and at most about ten \
seconds, never the exit status. docs/grafana-prun.json is a Grafana dashboard over these \
measurements. prun bench sends each level as it is measured: prun_bench (tags run, engine, \
level, op; fields p50_ms, p90_ms, sessions, ok, wall_s; Graphite \
PREFIX.bench.ENGINE.LEVEL.OP.p50 and .p90). prun shell sends none.",
    ),
    (
        "BENCH",
        "\
prun bench [OPTIONS] COMMAND reproduces the 2017 study of SSH libraries: COMMAND runs at each \
concurrency level of --levels (default 1,10,25,50,100), level × --rounds sessions per level \
(default 3, at least 10), cycling over the selected hosts. For each level it records the \
median and p90 of handshake, auth, channel_open, exec, read, close (+ exit status) and total \
over the sessions that succeeded, and sessions per second; it prints the table on stdout, \
writes it as CSV (--csv, default prun-bench.csv: engine, concurrency, sessions, ok, wall_s, \
sessions_per_s, then OP_p50_ms and OP_p90_ms per operation) and draws an SVG chart of median \
ms per operation against concurrency (--svg, default prun-bench.svg). --engine threads,events \
runs every level on each engine in turn — the study's two setups, sessions in threads and \
sessions on an event loop — with one chart per engine (FILE-threads.svg, FILE-events.svg). \
A level of more than 100,000 sessions \
(level × rounds) is refused. Host selection and connection options \
may come before or after `bench`; to run a remote command named bench, write `-- bench`.",
    ),
    (
        "TIMEOUTS, RETRIES AND CANCELLING",
        "\
Every blocking step has a deadline, kept even while a server keeps sending (an endless \
banner, a flood of packets): every read from the network checks the step's deadline and the \
cancel first, and name resolution and the TCP connect wait on the cancel too. Durations \
are at most 365 days. --connect-timeout (default 10s) bounds each \
attempt's connect, then how long the server may stay silent during the handshake, host key \
check and auth (the whole login at most 3 times it), and again channel open and exec; a host \
that runs out of it fails with kind timeout and its phase (exit status 4). -t/--timeout bounds \
the command from its exec request; a host that runs out of it has status timeout (exit \
status 3). While a command runs, prun sends an SSH keepalive whenever nothing arrives for \
--keepalive (default 15s); a live server answers it, so a host whose server sends nothing \
for 3 intervals fails in read with \"server stopped answering\" (exit status 4), even without \
--timeout.

Failures that happen before the command could have started (connection refused or timed \
out, no SSH banner, a reset or a close during the handshake and key exchange, a timeout before auth completes, a channel \
that cannot be opened) are retried --retries times (default 2), after 200 ms doubling per \
attempt plus random jitter. A command that may have started is never run again. A connection \
dropped before the banner (sshd's MaxStartups) also halves how many connections prun has \
between connect and auth at once, and so do logins timing out in the handshake or auth once \
they are at least four and a quarter of the recent logins (overloaded servers, not one hung \
host); the limit grows back with each successful login. The \
summary says how many hosts needed more than one attempt and what failed first most \
often (\"12 needed more than one attempt: 12 handshake banner\"); the reports say why each \
earlier attempt failed (retried).

The first Ctrl-C (or SIGTERM, or SIGHUP) stops the run: no more hosts start (they are \
reported as cancelled, not started), running hosts stop waiting, the partial summary and \
the report are written and prun exits with 130. A second one exits at once. --fail-fast and \
--max-fail stop only the starting of hosts: those running finish (see ROLLING CHANGES).

On a timeout or cancel prun stops the remote command with an SSH signal request: SIGTERM, \
then SIGKILL, each given a second for the server to confirm (an exit signal or the channel's \
close); the host's notes say \"remote command stopped (SIGTERM)\". OpenSSH ignores signal \
requests for root logins (and a command without a terminal outlives the connection), so \
there the note says \"remote command may still be running\".",
    ),
    (
        "THE COMMAND'S ENVIRONMENT",
        "\
--env K=V is sent as an SSH env request; for every name the server refuses (OpenSSH accepts \
only its AcceptEnv names) the command is prefixed with export K='V'; instead. --cwd DIR \
prefixes cd -- 'DIR' &&. Without --stdin the command's stdin is closed at once (like ssh -n); \
with --stdin, prun reads its stdin once (in memory up to 8 MiB, then spooled to a temporary \
file) and sends it to every host. --pty requests a terminal: stdout and stderr arrive merged \
with \\r\\n line ends, and the command is hung up when the connection closes.

--sudo runs the command as root through sudo, --sudo-user USER as USER: sudo -n when no \
password is given (it fails at once instead of waiting), else sudo -S -p with a marker \
that is random for each run. The marker is believed only as the first thing sudo writes \
on stderr, before any output of the command, and answered once per host with the password \
from --ask-pass (one prompt before the run, the same password as for logins) or \
PRUN_SUDO_PASSWORD; once the command has started, the password is never sent. The marker is \
removed from the output; a second one right after the answer (a wrong password) closes \
stdin so sudo fails. The password never appears in output, reports, \
logs or command lines. --env variables are exported inside the sudo'd shell.",
    ),
    (
        "FILE TRANSFER",
        "\
prun push [-r] [--mkdir] [--preserve] [--checksum] LOCAL... REMOTE_DIR copies files to \
REMOTE_DIR/<name> on every host; prun pull [-r] [--preserve] [--checksum] REMOTE_PATH \
LOCAL_DIR copies REMOTE_PATH from every host into LOCAL_DIR/<host>/<name> (<host> made a \
safe file name by the same rule as --out-dir). Both use SFTP on \
the same sessions (the server needs its sftp subsystem) and the same selection, \
connection options, --parallel, --timeout (the whole transfer of a host), --report and \
summary as a command. Files are streamed in 256 KiB chunks (never whole in memory), written \
under a temporary name (.NAME.prun-PID-N.tmp) beside the target, checked by size, given the \
source's mode (and with --preserve its access and modification times, in whole seconds) \
and renamed into place, so an interrupted or failed transfer never leaves a truncated \
target; the temporary file is removed when the connection still works. SFTP version 3 \
cannot rename over an existing file: such files are moved into place at the end of the \
host's push with mv -f (an atomic rename), or, for an account without a shell, the old \
target is removed just before the rename (briefly absent, never partial). --checksum \
compares every file's SHA-256 with the remote sha256sum after the copy (names with newlines \
or backslashes included); remote helper commands (sha256sum, mv) are bounded by --timeout \
and Ctrl-C, not by --connect-timeout, which bounds each SFTP call instead.

A pull never trusts the server with the local machine: local files and directories get \
permission bits only (never setuid, setgid or sticky), within the umask, and directories \
stay rwx for their owner; each file is written to a new temporary file (mode 0600, random \
name) beside its target and renamed over it, so a symlink planted there is replaced, never \
followed; a symlinked directory inside LOCAL_DIR/<host>/ is refused, also one swapped in \
during the pull (every step below the host's directory goes through directory descriptors \
opened without following links); a REMOTE_PATH ending in \
.. or . is a usage error. pull -r walks at most 64 directories deep and 1,000,000 entries, \
checking --timeout and Ctrl-C at every entry. Relative remote paths are relative to the login \
directory. Timings: channel_open is the SFTP start, open the directories and file opens, \
transfer the data, close the closing, attributes, renames and checksums; the report adds \
files, transfer_bytes and transfer_bytes_per_s, and the progress bar the bytes moved. A \
host that connected but whose transfer failed has status failed (exit 5). A remote \
command named push or pull needs -- before it.",
    ),
    (
        "ENGINES",
        "\
--engine events (the default) runs one thread per core, each with its share of the sessions \
as fibers on an event loop (epoll): --parallel counts sessions, so -p 2000 needs no 2000 \
threads. --engine threads (or PRUN_ENGINE=threads) runs each running host on its own thread, \
--parallel threads, as prun did before; it stays for comparison (prun bench --engine \
threads,events). The session code is the same: every wait of the SSH layer suspends \
the fiber (socket and direction, deadline, cancel) instead of blocking the thread, and \
every wait is bounded. Jump hosts, push and pull, keepalives, --timeout, Ctrl-C, --persist, \
prun shell and prun bench work on both. Memory: each session in flight holds an 83 KB \
libssh2 structure; when more than 128 sessions are alive at once (or -p is above 128), each \
new one is placed on memory pages of its own and only the pages it touches count (about \
12 KB at login instead of 83 KB), for a few page faults more per host.",
    ),
    (
        "HELD LOGINS",
        "\
prun shell keeps every host's login for the shell's commands (a channel open and an exec \
each after the first). --persist DUR (or PRUN_PERSIST) keeps them between separate runs: the \
first such run starts a holder process, later ones send it their command line and get the \
run's events back, so output, reports and the exit status are those of a normal run. The \
holder listens on a socket in $XDG_RUNTIME_DIR/prun/ (else /tmp/prun-UID/), a directory that \
must be the user's own with mode 0700; the socket is 0600 and every peer's uid is checked. It \
holds logged-in connections only: it starts without PRUN_PASSWORD, PRUN_SUDO_PASSWORD and \
PRUN_KEY_PASSPHRASE; a run's passwords (the environment's or --ask-pass's, asked by the \
client) and --stdin bytes travel with the run and are dropped when it ends. push, pull, \
--stdin over 8 MiB, and runs with another HOME, USER or SSH_AUTH_SOCK run directly; a \
passphrase-protected key works through the agent only. \
The holder serves one run at a time: a run started while it serves another is told so at \
once and runs directly (a warning says so), and prun sessions then exits 1 saying it is busy; \
nothing waits for the run in progress. \
While idle the holder sends its logins keepalives every 2 s and drops those whose server \
closed them or left a keepalive unanswered for three --keepalive intervals (at least 2 s \
each); a held login found dead before the exec request is replaced; a command never runs \
twice. prun sessions lists what it holds (host, user@address:port, held for, idle for, \
commands run); prun sessions --stop PATTERN... closes the logins of the hosts matching a \
glob. The holder ends after DUR without a run, on prun sessions --stop without a pattern, and \
when its last login is gone. The reports say which hosts ran on a held login (reused).",
    ),
    (
        "SSH CONFIG",
        "\
prun reads the OpenSSH client configuration like ssh does: ~/.ssh/config, then \
/etc/ssh/ssh_config (the first value found wins), or only the file given with -F FILE; \
-F none reads none. Each host is looked up by its inventory name (or its -H entry). prun \
honours Host patterns (with !negation), Match host / originalhost / all (other Match \
criteria such as user or exec cannot be evaluated: the block is skipped with a warning \
naming file and line), Include (globs; relative paths from ~/.ssh or /etc/ssh), HostName \
(with %h), User, Port, IdentityFile (all matching ones, tried after --identity and the \
inventory's keys), IdentitiesOnly (no agent or default keys), CertificateFile, ProxyJump, \
ProxyCommand, ForwardAgent, ConnectTimeout, UserKnownHostsFile, StrictHostKeyChecking (yes \
and ask: strict; accept-new; no and off: off) and HostKeyAlias (the name looked up in \
known_hosts). Other keywords are ignored.

-o Key=Value (also -o 'Key Value' and -oKey=Value; repeatable) sets one of those keywords \
for every host, as ssh -o does: it beats the inventory and ssh_config, and the dedicated \
flags (-u, --port, -J, --connect-timeout, --host-key-check, --known-hosts) beat it. A \
keyword prun does not read is a usage error naming it.

ProxyCommand (none turns it off) reaches a host through a program (aws ssm, tsh, \
cloudflared, nc -X ...): %h (the address), %p, %r, %n (the name as given), %u, %d and %% are \
expanded, and /bin/sh -c 'exec COMMAND' runs in its own process group with one end of a \
socket pair as its stdin and stdout; the session runs over the other end. The handshake is \
bounded by --connect-timeout; a command that exits or never speaks fails the host with its \
exit status and the end of its stderr, and the command's process group is stopped (SIGTERM, \
then SIGKILL) and reaped when the session ends, whatever the reason. One process per host \
(about 3.5 ms of CPU each with nc). A jump host takes precedence over ProxyCommand. Through \
a ProxyCommand --keepalive finds a server that stops answering while a command runs, too \
(prun notes when it last read from the command).

Precedence, for every setting: command line (the dedicated flags, then -o) > inventory > \
ssh_config > defaults. --list-hosts prints, after name, address, port and user, the jump \
host (or -) and where each value came from (command-line, -o, inventory, ssh_config:FILE, \
name, local-user, default).",
    ),
    (
        "JUMP HOSTS",
        "\
-J [user@]host[:port] (like ssh -J), the inventory's jump var, or ssh_config's ProxyJump \
reach a host through a bastion; -J none turns them off. A bastion that is an inventory host \
starts from its inventory settings. The bastion is resolved through \
ssh_config like any host (its HostName, User, Port, IdentityFile), its host key is verified \
like any host's, and it is authenticated with --identity, its ssh_config keys, the agent and \
the default keys (-u and --port are for the targets). prun logs in to each bastion once per \
run and opens one direct-tcpip channel per target over that connection (up to 100 per \
connection; OpenSSH's MaxSessions does not count such channels, and a bastion that refuses \
one gets a second connection). The target's own handshake, host key check and \
authentication run end to end through the channel. A target's connect phase is the time \
until its channel is open (the bastion login included for the first hosts). --keepalive works \
through the channel (a frozen bastion fails its hosts with \"server stopped answering\"). \
When the login to a bastion fails, every host behind it fails with that message, without \
further attempts. \
A chain (-J a,b or ProxyJump a,b) reaches b through a channel of a's connection, once, and \
the targets through b; a repeated hop is a usage error.",
    ),
    (
        "AUTHENTICATION",
        "\
Methods are tried in this order: the --identity files, the inventory's identity_file, \
every identity of the ssh-agent at SSH_AUTH_SOCK, ~/.ssh/id_ed25519, id_ecdsa and id_rsa, \
then, when a password was given, password and keyboard-interactive (every prompt answered \
with the password). Each key file is read once per run. An OpenSSH user certificate beside \
a key file (KEY-cert.pub, as ssh finds it) or named by ssh_config's CertificateFile (or -o) \
is offered with the key it certifies, before the plain key (sshd's TrustedUserCAKeys); the \
report's auth_method then says certificate. A CertificateFile that does not exist is skipped \
with a warning.

Agent forwarding (-A, ForwardAgent yes in ssh_config or -o; off by default, and ForwardAgent \
no in ssh_config wins over -A): prun asks the server for it before the command and relays \
every agent channel the server opens to the agent at SSH_AUTH_SOCK, so the remote command \
can use the local agent (git, ssh onwards) without a key leaving this machine. A server that \
refuses, or no SSH_AUTH_SOCK, leaves a note on the host and runs the command anyway. On a \
held login (prun shell, --persist) the request is sent once per connection (sshd honours only \
the first) and later -A commands relay the same forwarded socket; a command without -A there \
gets its agent channels refused.

Passphrase-protected keys are unlocked once, before the run, never per host: a key the \
agent holds is left to the agent; otherwise the passphrase comes from PRUN_KEY_PASSPHRASE \
or is asked on the terminal (three tries). An OpenSSH-format key is decrypted then, so its \
bcrypt cost is paid once per run, not once per host; a wrong passphrase is a usage error \
(exit 2) naming the key, for the default keys too. Without a passphrase and without a \
terminal the key is skipped with a warning, and a host with nothing else to offer names the \
locked key in its auth failure.

--ask-pass asks once, on the terminal, for a password used for password and \
keyboard-interactive logins (and for sudo's prompt with --sudo); PRUN_PASSWORD is the \
non-interactive alternative. Passwords and passphrases are never put on a command line, in \
output, reports or error messages.",
    ),
    (
        "HOST KEYS",
        "\
Host keys are checked before authentication against ~/.ssh/known_hosts and \
/etc/ssh/ssh_known_hosts (or the --known-hosts files) the way OpenSSH does: the lookup name \
is the address, written [address]:port when the port is not 22; names are case-insensitive; \
hashed names, wildcards, negation and @revoked are understood. strict (the default) refuses \
an unknown host and says how to trust it. accept-new appends an unknown host's key to \
~/.ssh/known_hosts (or the first --known-hosts file) as one plain line, once per \
address:port, and never rewrites the file (appends take a lock, so concurrent runs do not \
interleave); a changed key is refused even then. off checks nothing and warns on every run \
(naming jump hosts it applies to), and notes every unverified key on its host; as with \
OpenSSH, a host whose key changed is then connected to without password or \
keyboard-interactive authentication. The policy can also come from ssh_config's \
StrictHostKeyChecking, the files from UserKnownHostsFile and the lookup name from \
HostKeyAlias (see SSH CONFIG).

Host certificates: when an @cert-authority line covers a host, prun offers the certificate \
host key algorithms first (as OpenSSH does; the bundled libssh2 verifies the handshake with \
the key inside the certificate) and then checks the certificate itself: signed by a key of \
an @cert-authority line for this host (the signature verified; Ed25519, ECDSA P-256/P-384 \
and RSA CA keys), neither \
the CA nor the certified key @revoked, a host (not user) certificate, valid now, its \
principals naming the host (HostKeyAlias, else the address) or empty, no critical options. \
A miss refuses the host (status 4) saying which; a server that offers only a plain key is \
refused as unknown, naming the @cert-authority line.",
    ),
    (
        "EXIT STATUS",
        "  0    every host ran the command and it exited 0
  1    prun itself failed: an internal error, or remote output
       that could not be written (stdout, --out-dir); for prun sessions,
       also a --persist holder busy serving a run
  2    usage error or unusable inventory (nothing was run)
  3    at least one host timed out, was killed by a signal, or was cancelled
  4    otherwise: at least one host failed at the SSH level
       (connect, handshake, host key, auth, channel)
  5    otherwise: every host connected and at least one command exited non-zero
  6    the rollout stopped before every host started (more hosts failed than
       --max-fail or --fail-fast allows, a canary failed with --yes, or the
       question between batches was answered no); beats 3, 4 and 5
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP)

An option prun does not know, before the command, is a usage error naming the closest \
option: a command that starts with - goes after --.",
    ),
    (
        "ENVIRONMENT",
        "  HOME           where ~ points (keys, known_hosts)
  SSH_AUTH_SOCK  ssh-agent socket whose identities are tried
  NO_COLOR       disables colour with --color auto
  PRUN_PASSWORD  the password for password/keyboard-interactive logins
  PRUN_KEY_PASSPHRASE  the passphrase of protected key files (else asked once)
  PRUN_SUDO_PASSWORD  the password for sudo's prompt (with --sudo)
  PRUN_PERSIST   like --persist DUR when the option is not given
  PRUN_ENGINE    like --engine (threads or events) when the option is not given
  PRUN_INFLUX_TOKEN  the InfluxDB token for --metrics influx2:// (and influx://)
  PRUN_INFLUX_USER, PRUN_INFLUX_PASSWORD  InfluxDB 1.x basic authentication
                 (PRUN_PASSWORD, PRUN_SUDO_PASSWORD, PRUN_KEY_PASSPHRASE,
                 PRUN_INFLUX_PASSWORD and PRUN_INFLUX_TOKEN are removed from the
                 environment of every program prun starts: ProxyCommand, --local
                 commands, dynamic inventories, the --persist holder)
  SSL_CERT_FILE  a CA file for --metrics over HTTPS (else the system's)
  XDG_RUNTIME_DIR  where the --persist holder's socket directory (prun/) is
  PRUN_FIBER_PAGES  set: at the end, how many stack pages the events engine's
                 fibers touched (a check for developers; bench/core.py shows it)
  PRUN_HISTORY   prun shell's history file (empty: keep none)
  XDG_STATE_HOME  else the history is $XDG_STATE_HOME/prun/shell_history
                 (default ~/.local/state/prun/shell_history)
  USER           the default remote user",
    ),
];

/// The sections as plain text for `--help`.
pub fn sections_text() -> String {
    let mut out = String::new();
    for (title, body) in SECTIONS {
        out.push_str(title);
        out.push_str(":\n");
        for para in body.split("\n\n") {
            if para.lines().all(|l| l.starts_with("  ")) {
                out.push_str(para);
                out.push('\n');
            } else {
                out.push_str(&textwrap(para, 90, "  "));
            }
            out.push('\n');
        }
    }
    out.trim_end().to_string()
}

fn textwrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.len() + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// Run one shell command on many hosts over SSH, in parallel, and time every step.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "prun",
    version,
    about = "Run a command on many hosts over SSH, in parallel, and time every step",
    long_about = "prun runs one shell command on every selected host of an inventory over SSH, \
                  all at once, streams each host's output with the host name in front, and \
                  ends with a summary of how long every step (connect, handshake, host key, \
                  auth, channel open, exec, read, close) took on every host. Its exit status \
                  says what happened, for scripts.",
    max_term_width = 100,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub sub: Option<Sub>,

    /// The command to run on every host, by the remote user's shell (words are joined with
    /// spaces, as ssh does)
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,

    /// Inventory: an Ansible YAML, INI or JSON file, a plain host list, a directory of
    /// them, an executable dynamic inventory (run with --list), or - for stdin (repeatable:
    /// all merge into one inventory)
    #[arg(
        global = true,
        short = 'i',
        long,
        value_name = "SOURCE",
        help_heading = "Host selection"
    )]
    pub inventory: Vec<PathBuf>,

    /// Also read DIR/group_vars/ and DIR/host_vars/ (they win over those beside the
    /// inventories), as ansible-playbook does with the playbook's directory
    #[arg(
        global = true,
        long,
        value_name = "DIR",
        help_heading = "Host selection"
    )]
    pub playbook_dir: Option<PathBuf>,

    /// Deadline for a dynamic inventory program to print its inventory
    #[arg(global = true, long, value_name = "DURATION", default_value = "60s",
          value_parser = parse_duration, help_heading = "Host selection")]
    pub inventory_timeout: Duration,

    /// Hosts to run on, comma separated, [user@]host[:port], with ranges: web[01-10],
    /// db-[a:c], node[1-3,7] (repeatable)
    #[arg(
        global = true,
        short = 'H',
        long = "hosts",
        value_name = "LIST",
        help_heading = "Host selection"
    )]
    pub hosts: Vec<String>,

    /// Select hosts by pattern: web:db, web:!web03, web:&prod, web*, ~regex, @FILE
    #[arg(
        global = true,
        short = 'l',
        long,
        value_name = "PATTERN",
        help_heading = "Host selection"
    )]
    pub limit: Option<String>,

    /// Print the selected hosts (name, address, port, user, jump host, where each value came
    /// from; tab-separated) and connect to nothing
    #[arg(long, help_heading = "Host selection")]
    pub list_hosts: bool,

    /// Remote user for every host (default: the inventory's user, else the local user)
    #[arg(
        global = true,
        short = 'u',
        long,
        value_name = "USER",
        help_heading = "Connection"
    )]
    pub user: Option<String>,

    /// SSH port for every host (default: the inventory's port, else 22)
    #[arg(global = true, long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..),
          help_heading = "Connection")]
    pub port: Option<u16>,

    /// Private key file to try first (repeatable)
    #[arg(
        global = true,
        long = "identity",
        value_name = "FILE",
        help_heading = "Connection"
    )]
    pub identity: Vec<String>,

    /// Host key policy: strict refuses unknown hosts, accept-new records them, off checks
    /// nothing [default: ssh_config's StrictHostKeyChecking, else strict]
    #[arg(
        global = true,
        long,
        value_enum,
        value_name = "MODE",
        help_heading = "Connection"
    )]
    pub host_key_check: Option<HostKeyCheck>,

    /// OpenSSH client configuration to read instead of ~/.ssh/config and
    /// /etc/ssh/ssh_config; `none` reads none
    #[arg(
        global = true,
        short = 'F',
        long = "ssh-config",
        value_name = "FILE",
        help_heading = "Connection"
    )]
    pub ssh_config: Option<String>,

    /// An ssh_config option for every host, as ssh -o takes it: Key=Value or "Key Value"
    /// (repeatable; beats the inventory and ssh_config, not -u/--port/-J…): HostName, User,
    /// Port, IdentityFile, IdentitiesOnly, CertificateFile, ProxyJump, ProxyCommand,
    /// ForwardAgent, ConnectTimeout, UserKnownHostsFile, StrictHostKeyChecking, HostKeyAlias
    #[arg(
        global = true,
        short = 'o',
        long = "option",
        value_name = "KEY=VALUE",
        help_heading = "Connection"
    )]
    pub ssh_options: Vec<String>,

    /// Forward the local ssh-agent (SSH_AUTH_SOCK) to every host's command, as ssh -A does,
    /// except where ssh_config says ForwardAgent no
    #[arg(global = true, short = 'A', long, help_heading = "Connection")]
    pub forward_agent: bool,

    /// Reach every host through this bastion, [user@]host[:port] (like ssh -J; `none`
    /// disables the inventory's and ssh_config's jump hosts)
    #[arg(
        global = true,
        short = 'J',
        long,
        value_name = "HOST",
        help_heading = "Connection"
    )]
    pub jump: Option<String>,

    /// known_hosts file to use instead of ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts
    /// (repeatable; accept-new writes to the first)
    #[arg(global = true, long, value_name = "FILE", help_heading = "Connection")]
    pub known_hosts: Vec<PathBuf>,

    /// How many hosts run at once
    #[arg(global = true, short = 'p', long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=100_000), help_heading = "Execution")]
    pub parallel: u32,

    /// Deadline for DNS and the TCP connect, then how long the server may stay silent during
    /// the handshake, host key check and auth (the whole login at most 3 times it) (e.g.
    /// 10s, 500ms, 1m) [default: ssh_config's ConnectTimeout, else 10s]
    #[arg(global = true, long, value_name = "DURATION", value_parser = parse_duration,
          help_heading = "Execution")]
    pub connect_timeout: Option<Duration>,

    /// Deadline for the command on each host, from the exec request (default: none)
    #[arg(global = true, short = 't', long, value_name = "DURATION", value_parser = parse_duration,
          help_heading = "Execution")]
    pub timeout: Option<Duration>,

    /// While a command runs, ask the server for a reply this often when nothing arrives; a
    /// host whose server sends nothing for 3 intervals fails ("server stopped answering").
    /// libssh2 sends keepalives at most every 2 s
    #[arg(global = true, long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration,
          help_heading = "Execution")]
    pub keepalive: Duration,

    /// Keep each host's login in a holder process until it has been idle this long, and run
    /// this and later commands (with --persist too) over the held logins
    #[arg(global = true, long, value_name = "DURATION", value_parser = parse_duration,
          help_heading = "Execution")]
    pub persist: Option<Duration>,

    /// Set an environment variable for the command (repeatable); sent as an SSH env request,
    /// or exported by a command prefix when the server refuses it (sshd's AcceptEnv)
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env, help_heading = "Execution")]
    pub env: Vec<(String, String)>,

    /// Run the command in DIR on every host
    #[arg(long, value_name = "DIR", help_heading = "Execution")]
    pub cwd: Option<String>,

    /// Request a terminal: stdout and stderr arrive merged, and the command dies with the
    /// connection (so --timeout and Ctrl-C stop it even where signals are ignored)
    #[arg(long, help_heading = "Execution")]
    pub pty: bool,

    /// Run the command as root through sudo (sudo -n, or with the password from --ask-pass or
    /// PRUN_SUDO_PASSWORD fed to sudo's prompt once per host)
    #[arg(long, help_heading = "Execution")]
    pub sudo: bool,

    /// Run the command as USER through sudo (implies --sudo)
    #[arg(long, value_name = "USER", help_heading = "Execution")]
    pub sudo_user: Option<String>,

    /// Prompt once, before the run, for a password: used for password and keyboard-interactive
    /// logins and for sudo's prompt (never echoed, logged or put on a command line)
    #[arg(long, help_heading = "Execution")]
    pub ask_pass: bool,

    /// Read local stdin once and send it to every host's command (otherwise commands get an
    /// empty stdin, like ssh -n)
    #[arg(long, help_heading = "Execution")]
    pub stdin: bool,

    /// Extra attempts for hosts that fail before the command could have started (refused,
    /// no banner, reset, timeout before auth); backoff doubles from 200 ms, with jitter
    #[arg(
        global = true,
        long,
        value_name = "N",
        default_value_t = 2,
        help_heading = "Execution"
    )]
    pub retries: u32,

    /// Run the hosts in batches: N hosts, N% of them, or a list that steps up with its last
    /// size repeating (1,5,25%); a batch starts once the previous one has finished
    #[arg(global = true, long, value_name = "SIZES", value_parser = crate::rollout::parse_batch_arg,
          help_heading = "Rolling changes")]
    pub batch: Option<crate::rollout::Batches>,

    /// The order hosts start in (and are batched and numbered in)
    #[arg(global = true, long, value_enum, value_name = "ORDER", default_value_t = Order::Inventory,
          help_heading = "Rolling changes")]
    pub order: Order,

    /// Start no more hosts once more than N hosts (or N% of them) have failed; running hosts
    /// finish, the rest are reported as skipped, exit status 6
    #[arg(global = true, long, value_name = "N|N%", value_parser = crate::rollout::parse_count,
          help_heading = "Rolling changes")]
    pub max_fail: Option<crate::rollout::Count>,

    /// The same as --max-fail 0: start no more hosts after the first one that does not succeed
    #[arg(
        global = true,
        long,
        conflicts_with = "max_fail",
        help_heading = "Rolling changes"
    )]
    pub fail_fast: bool,

    /// Run N hosts first, show how they did, and ask on the terminal before the rest
    #[arg(global = true, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..),
          help_heading = "Rolling changes")]
    pub canary: Option<u32>,

    /// Do not ask after the canary: go on when every canary host succeeded, stop (exit 6)
    /// when one did not
    #[arg(global = true, short = 'y', long, help_heading = "Rolling changes")]
    pub yes: bool,

    /// Wait this long between batches, or `ask` to ask on the terminal before each next batch
    #[arg(global = true, long, value_name = "DURATION|ask", value_parser = crate::rollout::parse_pause,
          help_heading = "Rolling changes")]
    pub pause: Option<crate::rollout::Pause>,

    /// Wait this long between starting one host and the next (spreads the key exchanges)
    #[arg(global = true, long, value_name = "DURATION", value_parser = parse_duration,
          help_heading = "Rolling changes")]
    pub stagger: Option<Duration>,

    /// Print what each host would run (host, batch, the command or transfer after {name}
    /// substitution; tab-separated) and connect to nothing
    #[arg(global = true, long, help_heading = "Rolling changes")]
    pub dry_run: bool,

    /// Take the command, --env values and transfer paths as written: no {name} substitution
    #[arg(global = true, long, help_heading = "Rolling changes")]
    pub literal: bool,

    /// Run the command on this machine, once per selected host, instead of over SSH ({host},
    /// {addr}, {port}, {user} and inventory vars substituted; PRUN_HOST, PRUN_ADDR, PRUN_PORT,
    /// PRUN_USER, PRUN_BATCH and PRUN_INDEX set)
    #[arg(long, conflicts_with_all = ["sudo", "sudo_user", "pty", "persist", "ask_pass"],
          help_heading = "Rolling changes")]
    pub local: bool,

    /// How hosts share threads: events (one event loop per core, each running many sessions;
    /// --parallel counts sessions) or threads (one thread per running host). prun bench takes
    /// a list (threads,events) and measures each
    #[arg(
        global = true,
        long,
        value_enum,
        value_name = "ENGINE",
        value_delimiter = ',',
        default_value = "events",
        env = "PRUN_ENGINE",
        hide_env_values = true,
        help_heading = "Execution"
    )]
    pub engine: Vec<EngineArg>,

    /// How remote output is shown
    #[arg(long, value_enum, value_name = "MODE", default_value_t = OutputMode::Stream,
          help_heading = "Output")]
    pub output: OutputMode,

    /// Also write each host's stdout and stderr, byte-exact, to DIR/<host>.out and
    /// DIR/<host>.err as they arrive (use -q to print nothing else)
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    pub out_dir: Option<PathBuf>,

    /// Write the names of the hosts that did not succeed to FILE, one per line, to re-run
    /// them with -l @FILE
    #[arg(global = true, long, value_name = "FILE", help_heading = "Output")]
    pub failed_hosts: Option<PathBuf>,

    /// Write the per-host timing report to FILE: JSON or CSV by the file's extension (.json,
    /// .csv) or --report-format; written at the end, also after Ctrl-C
    #[arg(global = true, long, value_name = "FILE", help_heading = "Output")]
    pub report: Option<PathBuf>,

    /// Send every host's phase timings, when the run ends, to InfluxDB 1.x
    /// (influx[+https]://HOST:PORT/DB), InfluxDB 2.x (influx2[+https]://HOST:PORT/ORG/BUCKET,
    /// token in PRUN_INFLUX_TOKEN), Graphite (graphite://HOST:PORT) or a line-protocol file
    /// (file:PATH) (repeatable; a sink that fails costs a warning, not the run)
    #[arg(global = true, long, value_name = "URL", value_parser = crate::report::metrics::parse_sink,
          help_heading = "Output")]
    pub metrics: Vec<crate::report::metrics::Sink>,

    /// The first segments of Graphite metric paths (PREFIX.HOST.PHASE)
    #[arg(
        global = true,
        long,
        value_name = "PREFIX",
        default_value = "prun",
        help_heading = "Output"
    )]
    pub metrics_prefix: String,

    /// Format of --report when its extension does not say
    #[arg(
        global = true,
        long,
        value_enum,
        value_name = "FORMAT",
        requires = "report",
        help_heading = "Output"
    )]
    pub report_format: Option<ReportFormat>,

    /// Progress bar on stderr: auto shows it when stderr is a terminal
    #[arg(global = true, long, value_enum, value_name = "WHEN", default_value_t = When::Auto,
          help_heading = "Output")]
    pub progress: When,

    /// Colour host names: auto colours when stdout is a terminal and NO_COLOR is unset
    #[arg(global = true, long, value_enum, value_name = "WHEN", default_value_t = When::Auto,
          help_heading = "Output")]
    pub color: When,

    /// Print nothing but errors and warnings: no remote output, progress or summary (the
    /// exit status still tells what happened)
    #[arg(global = true, short = 'q', long, help_heading = "Output")]
    pub quiet: bool,
}

/// Subcommands (the default is running a command: `prun [OPTIONS] COMMAND`).
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Sub {
    /// Reproduce the 2017 study: time each SSH operation at increasing concurrency
    ///
    /// Runs COMMAND at each concurrency level (--levels), level × --rounds sessions per level,
    /// cycling over the selected hosts, and records the median and p90 of handshake, auth,
    /// channel open, exec, read, close (+ exit status) and total, plus sessions per second.
    /// Prints the table, writes it as CSV and draws an SVG chart of the median ms per
    /// operation against concurrency. --engine threads,events measures both engines (one
    /// chart each). Host selection and connection options are those of a normal run.
    Bench(BenchArgs),
    /// Copy local files to every selected host over SFTP
    ///
    /// Each LOCAL file goes to REMOTE_DIR/<its name> on every host, streamed in bounded
    /// chunks, written under a temporary name and renamed into place, with its mode (and with
    /// --preserve its times). Directories need -r. Host selection, connection options,
    /// --parallel, --timeout, --report and the summary are those of a normal run.
    Push(PushArgs),
    /// Copy a file or directory from every selected host into LOCAL_DIR/<host>/ over SFTP
    ///
    /// REMOTE_PATH lands in LOCAL_DIR/<host>/<its name> (the pslurp / clush --rcopy
    /// convention), written under a temporary name and renamed into place, with its mode (and
    /// with --preserve its times). Directories need -r.
    Pull(PullArgs),
    /// An interactive prompt that runs each line on the selected hosts over held logins
    ///
    /// Every host is logged in to once, at its first command; later commands reuse the
    /// connection (a channel open and an exec only). Built-ins: :limit PATTERN (select again
    /// from the inventory), :hosts, :output stream|block|gather|json, :sessions, :help, :quit.
    /// Ctrl-C stops the running command on every host and returns to the prompt; Ctrl-D or
    /// :quit leaves, and SIGTERM or SIGHUP at the prompt ends the shell. Line editing and
    /// history (the arrow keys, Ctrl-R) on a terminal; the last 1000 lines are kept in
    /// PRUN_HISTORY, else $XDG_STATE_HOME/prun/shell_history, else
    /// ~/.local/state/prun/shell_history (mode 0600); a line that starts with a space is not
    /// kept, nor are lines piped in (stdin not a terminal).
    Shell,
    /// List the logins a --persist holder keeps, or close them (--stop)
    Sessions {
        /// Close the held logins of the hosts matching a PATTERN (globs on host names: `*`,
        /// `?`, `[...]`); with no PATTERN, close every login and end the holder. The holder
        /// also ends when its last login is closed.
        #[arg(long, value_name = "PATTERN", num_args = 0..)]
        stop: Option<Vec<String>>,
    },
    /// Print a shell completion script (bash, zsh or fish) to stdout
    ///
    /// For example: prun completions bash > /etc/bash_completion.d/prun. The same scripts are
    /// committed under completions/.
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

/// `--order`: the order hosts start in.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As the inventory lists them
    Inventory,
    /// The inventory's order backwards
    Reverse,
    /// By name, digit runs as numbers (web2 before web10)
    Sorted,
    /// By name, backwards
    ReverseSorted,
    /// A random order, new each run
    Shuffle,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// The completion script for `shell`.
pub fn completion_script(shell: CompletionShell) -> Vec<u8> {
    use clap_complete::{Shell, generate};
    let mut cmd = command();
    let mut out = Vec::new();
    let sh = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    generate(sh, &mut cmd, "prun", &mut out);
    out
}

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Concurrency levels, comma separated
    #[arg(long, value_name = "N,N,…", value_delimiter = ',', default_value = "1,10,25,50,100",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub levels: Vec<u32>,

    /// Sessions per level, as a multiple of the level (at least 10 sessions per level)
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,

    /// Where to write the table as CSV
    #[arg(long, value_name = "FILE", default_value = "prun-bench.csv")]
    pub csv: PathBuf,

    /// Where to draw the chart (SVG); with several engines, FILE-ENGINE.svg for each
    #[arg(long, value_name = "FILE", default_value = "prun-bench.svg")]
    pub svg: PathBuf,

    /// The command each session runs (the study used `cat` of a 26 KB file)
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PushArgs {
    /// Copy directories and their contents
    #[arg(short = 'r', long)]
    pub recursive: bool,

    /// Create REMOTE_DIR (and its parents) when it does not exist
    #[arg(long)]
    pub mkdir: bool,

    /// Also keep access and modification times (the mode is always kept)
    #[arg(long)]
    pub preserve: bool,

    /// After the copy, compare SHA-256 of every file with the remote `sha256sum`
    #[arg(long)]
    pub checksum: bool,

    /// Local files or directories, then the remote directory
    #[arg(value_name = "LOCAL... REMOTE_DIR", required = true, num_args = 2..)]
    pub paths: Vec<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PullArgs {
    /// Copy a directory and its contents
    #[arg(short = 'r', long)]
    pub recursive: bool,

    /// Also keep access and modification times (permission bits are always kept, within the umask; never setuid, setgid or sticky)
    #[arg(long)]
    pub preserve: bool,

    /// After the copy, compare SHA-256 of every file with the remote `sha256sum`
    #[arg(long)]
    pub checksum: bool,

    /// The remote file or directory
    #[arg(value_name = "REMOTE_PATH")]
    pub remote: String,

    /// Where to put it: LOCAL_DIR/<host>/<name>
    #[arg(value_name = "LOCAL_DIR")]
    pub local_dir: PathBuf,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyCheck {
    Strict,
    AcceptNew,
    Off,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineArg {
    Threads,
    Events,
}

impl Cli {
    /// The engine of a run (the first of `--engine`'s list; only `prun bench` takes more).
    pub fn engine(&self) -> crate::runner::Engine {
        self.engine
            .first()
            .copied()
            .unwrap_or(EngineArg::Events)
            .engine()
    }
}

impl EngineArg {
    pub fn engine(self) -> crate::runner::Engine {
        match self {
            EngineArg::Threads => crate::runner::Engine::Threads,
            EngineArg::Events => crate::runner::Engine::Events,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Each line as it arrives, prefixed with the host
    Stream,
    /// Each host's output as one block under a header when the host finishes (pssh -i)
    Block,
    /// At the end, hosts with identical output grouped under one header (clush -b)
    Gather,
    /// JSON Lines on stdout: run_start, host_start, output, host_end, summary events
    Json,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Json,
    Csv,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Auto,
    Always,
    Never,
}

/// Parse `K=V` for `--env`: K is a shell variable name.
pub fn parse_env(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not K=V"))?;
    let valid = !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("'{k}' is not a variable name (letters, digits, _)"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// The longest duration prun accepts anywhere (a year): deadlines are instants, and an
/// instant that far ahead is as good as none, while a larger one would not be representable.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parse `10s`, `500ms`, `1m30s`, or a bare number of seconds (at most [`MAX_DURATION`]).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        t.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(|f| Duration::try_from_secs_f64(f).ok())
    } else {
        humantime::parse_duration(t).ok()
    };
    match d {
        Some(d) if d > MAX_DURATION => Err(format!(
            "'{s}' is longer than the longest duration prun accepts (365 days)"
        )),
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(format!("'{s}' is zero; give a positive duration")),
        None => Err(format!(
            "'{s}' is not a duration (examples: 10s, 500ms, 2m, 1h30m, or 5 for seconds)"
        )),
    }
}

/// The clap command (for the man page and tests).
pub fn command() -> clap::Command {
    Cli::command().after_long_help(sections_text())
}

/// The clap command to parse `args` with: the long help's sections (wrapped text, a third of
/// a run's start-up CPU) are only made when the words ask for help.
fn command_for(args: &[std::ffi::OsString]) -> clap::Command {
    if args.iter().skip(1).any(|a| a == "--help" || a == "help") {
        command()
    } else {
        base().clone()
    }
}

/// The clap command without the long help's sections, built once per process: the helpers
/// that look at the words before parsing ([`subcommand_first`], [`unknown_option`],
/// [`split_short_values`]) only read its arguments' definitions.
fn base() -> &'static clap::Command {
    static BASE: std::sync::OnceLock<clap::Command> = std::sync::OnceLock::new();
    BASE.get_or_init(Cli::command)
}

/// Parse the process arguments (with the extra help sections).
/// Parse a command line given as words (the first is the program name), as [`parse`] does
/// but returning the error instead of exiting (for the --persist holder).
pub fn try_parse_from(args: Vec<std::ffi::OsString>) -> Result<Cli, String> {
    use clap::FromArgMatches;
    let args = subcommand_first(args);
    if let Some(msg) = unknown_option(&args) {
        return Err(msg);
    }
    let args = split_short_values(args);
    let matches = command_for(&args)
        .try_get_matches_from(args)
        .map_err(|e| e.to_string())?;
    Cli::from_arg_matches(&matches).map_err(|e| e.to_string())
}

pub fn parse() -> Cli {
    use clap::FromArgMatches;
    let args = subcommand_first(std::env::args_os().collect());
    if let Some(msg) = unknown_option(&args) {
        eprintln!("prun: error: {msg}");
        std::process::exit(crate::exit::USAGE as i32);
    }
    let args = split_short_values(args);
    let matches = command_for(&args).get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// A word before the command that looks like an option but is not one of prun's: clap would
/// take it (and everything after it) as the remote command, so `--timout 5 cmd` would run
/// `--timout 5 cmd` on every host. Returns the error to print, naming the word and the
/// closest option. Words after the first non-option word, or after `--`, are the command's.
/// Short options with their value attached (`-t5s`, `-oPort=22`, `-qp5`) split into separate
/// words before clap sees them: with a command that may start with `-` (the trailing
/// COMMAND accepts hyphens), clap would otherwise take such a word, and everything after
/// it, as the command. Only the words before the command are touched; call after
/// [`unknown_option`] found nothing wrong.
pub fn split_short_values(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let top = base();
    let sub = args
        .get(1)
        .and_then(|a| a.to_str())
        .and_then(|w| top.find_subcommand(w).cloned());
    let scopes: Vec<&clap::Command> = std::iter::once(top).chain(sub.as_ref()).collect();
    let takes_value = |c: char| {
        scopes
            .iter()
            .flat_map(|s| s.get_arguments())
            .find(|a| a.get_short() == Some(c))
            .map(|a| a.get_action().takes_values())
    };
    let takes_value_long = |name: &str| {
        scopes
            .iter()
            .flat_map(|s| s.get_arguments())
            .find(|a| a.get_long() == Some(name))
            .is_some_and(|a| a.get_action().takes_values())
    };
    let start = if sub.is_some() { 2 } else { 1 };
    let mut out: Vec<std::ffi::OsString> = args[..start.min(args.len())].to_vec();
    let mut i = start;
    while i < args.len() {
        let Some(word) = args[i].to_str() else {
            break;
        };
        if word == "--" || !word.starts_with('-') || word == "-" {
            break;
        }
        i += 1;
        if let Some(body) = word.strip_prefix("--") {
            out.push(word.into());
            if !body.contains('=') && takes_value_long(body) && i < args.len() {
                out.push(args[i].clone());
                i += 1;
            }
            continue;
        }
        for (k, c) in word.char_indices().skip(1) {
            out.push(format!("-{c}").into());
            if takes_value(c) == Some(true) {
                let rest = &word[k + c.len_utf8()..];
                if rest.is_empty() {
                    if i < args.len() {
                        out.push(args[i].clone());
                        i += 1;
                    }
                } else {
                    out.push(rest.into());
                }
                break;
            }
        }
    }
    out.extend(args[i..].iter().cloned());
    out
}

pub fn unknown_option(args: &[std::ffi::OsString]) -> Option<String> {
    let top = base();
    // after `subcommand_first`, a subcommand is the first argument
    let sub = args
        .get(1)
        .and_then(|a| a.to_str())
        .and_then(|w| top.find_subcommand(w).cloned());
    let scopes: Vec<&clap::Command> = std::iter::once(top).chain(sub.as_ref()).collect();
    let all_args = || scopes.iter().flat_map(|c| c.get_arguments());
    let long = |name: &str| {
        all_args().find(|a| {
            a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
        })
    };
    let short = |c: char| all_args().find(|a| a.get_short() == Some(c));
    let mut i = if sub.is_some() { 2 } else { 1 };
    while i < args.len() {
        let word = args[i].to_str()?;
        if word == "--" || !word.starts_with('-') || word == "-" {
            return None;
        }
        i += 1;
        if let Some(body) = word.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, _)) => (n, true),
                None => (body, false),
            };
            if name == "help" || name == "version" {
                continue;
            }
            match long(name) {
                Some(a) => {
                    if a.get_action().takes_values() && !inline {
                        i += 1;
                    }
                }
                None => {
                    let best = all_args()
                        .filter_map(|a| a.get_long())
                        .chain(["help", "version"])
                        .map(|l| (strsim::jaro_winkler(name, l), l))
                        .filter(|(score, _)| *score > 0.8)
                        .max_by(|a, b| a.0.total_cmp(&b.0));
                    let hint =
                        best.map_or(String::new(), |(_, l)| format!(" (did you mean '--{l}'?)"));
                    return Some(format!(
                        "unknown option '{word}'{hint}; prun's options come before the \
                         command: to run a command that starts with '-', put it after '--'"
                    ));
                }
            }
            continue;
        }
        // a cluster of short options: -q, -qp 5, -p5
        for (k, c) in word.char_indices().skip(1) {
            if c == 'h' || c == 'V' {
                continue;
            }
            match short(c) {
                Some(a) if a.get_action().takes_values() => {
                    if k + c.len_utf8() == word.len() {
                        i += 1; // the value is the next word
                    }
                    break; // the rest of the word is the value
                }
                Some(_) => {}
                None => {
                    return Some(format!(
                        "unknown option '-{c}' in '{word}'; prun's options come before the \
                         command: to run a command that starts with '-', put it after '--'"
                    ));
                }
            }
        }
    }
    None
}

/// Let options come before a subcommand (`prun -i inv bench …`): when the first word that is
/// neither an option nor an option's value names a subcommand, move it to the front. A remote
/// command named like a subcommand can still be run after `--`.
pub fn subcommand_first(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let cmd = base();
    let takes_value = |name: &str| -> bool {
        cmd.get_arguments().any(|a| {
            let matches = match name.strip_prefix("--") {
                Some(long) => a.get_long() == Some(long),
                None => {
                    let mut chars = name.chars().skip(1);
                    let short = chars.next();
                    chars.next().is_none() && short.is_some() && a.get_short() == short
                }
            };
            matches && a.get_action().takes_values()
        })
    };
    let mut i = 1;
    while i < args.len() {
        let Some(word) = args[i].to_str() else { break };
        if word == "--" {
            break;
        }
        if word.starts_with('-') && word.len() > 1 {
            i += if !word.contains('=') && takes_value(word) {
                2
            } else {
                1
            };
            continue;
        }
        if cmd.find_subcommand(word).is_some() && i > 1 {
            let sub = args.remove(i);
            args.insert(1, sub);
        }
        break;
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(words: &[&str]) -> Option<String> {
        let args: Vec<std::ffi::OsString> = std::iter::once("prun")
            .chain(words.iter().copied())
            .map(Into::into)
            .collect();
        unknown_option(&subcommand_first(args))
    }

    #[test]
    fn attached_short_values_are_split_off() {
        let split = |words: &[&str]| -> Vec<String> {
            let args = std::iter::once("prun")
                .chain(words.iter().copied())
                .map(Into::into)
                .collect();
            split_short_values(args)
                .into_iter()
                .skip(1)
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        assert_eq!(
            split(&["-t5s", "-qp5", "-oPort=22", "-H", "a", "ls", "-la"]),
            [
                "-t", "5s", "-q", "-p", "5", "-o", "Port=22", "-H", "a", "ls", "-la"
            ]
        );
        assert_eq!(
            split(&["--timeout", "-5", "-i", "x", "--", "-t9"]),
            ["--timeout", "-5", "-i", "x", "--", "-t9"]
        );
        let cli = try_parse_from(
            ["prun", "-H", "h", "-t5s", "-oPort=2", "--list-hosts"]
                .iter()
                .map(Into::into)
                .collect(),
        )
        .unwrap();
        assert!(cli.list_hosts && cli.command.is_empty());
        assert_eq!(cli.ssh_options, ["Port=2"]);
    }

    #[test]
    fn unknown_options_before_the_command_are_refused_with_a_suggestion() {
        let e = unknown(&["-i", "inv.yaml", "--timout", "5", "true"]).unwrap();
        assert!(e.contains("'--timout'") && e.contains("--timeout"), "{e}");
        let e = unknown(&["-i", "inv.yaml", "--serial", "1", "true"]).unwrap();
        assert!(e.contains("'--serial'") && e.contains("'--'"), "{e}");
        assert!(unknown(&["-Z", "true"]).unwrap().contains("'-Z'"));
        // known options, values, clusters, `--`, and dashes inside the command are fine
        for ok in [
            &["-i", "inv.yaml", "-p", "5", "ls", "-la"][..],
            &["-qp5", "--timeout=3s", "uptime"],
            &["-H", "a,b", "--", "--weird-command"],
            &["-H", "a", "-t", "-5", "x"],
            &["-H", "a", "bench", "--levels", "1", "true"],
            &["push", "--mkdir", "-H", "a", "f", "/tmp"],
            &["--help"],
        ] {
            assert_eq!(unknown(ok), None, "{ok:?}");
        }
        assert!(
            unknown(&["bench", "--levls", "1", "true"])
                .unwrap()
                .contains("--levels")
        );
    }

    #[test]
    fn huge_durations_are_refused_not_overflowed() {
        for s in [
            "10000000000000000000",
            "300000000000y",
            "18446744073709551615s",
            "366d",
        ] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("longest duration"), "{s}: {e}");
        }
        assert_eq!(
            parse_duration("365d").unwrap(),
            Duration::from_secs(365 * 86400)
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn the_long_help_sections_are_made_only_when_help_is_asked() {
        let words = |w: &[&str]| w.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        for asked in [
            &["prun", "--help"][..],
            &["prun", "help"],
            &["prun", "push", "--help"],
        ] {
            assert!(
                command_for(&words(asked))
                    .get_after_long_help()
                    .is_some_and(|h| h.to_string().contains("ENVIRONMENT")),
                "{asked:?}"
            );
        }
        for plain in [
            &["prun", "-i", "h.yaml", "uptime"][..],
            &["prun", "--version"],
        ] {
            assert!(
                command_for(&words(plain)).get_after_long_help().is_none(),
                "{plain:?}"
            );
        }
    }

    #[test]
    fn options_may_precede_a_subcommand() {
        let v = |a: &[&str]| -> Vec<String> {
            subcommand_first(a.iter().map(std::ffi::OsString::from).collect())
                .into_iter()
                .map(|s| s.into_string().unwrap())
                .collect()
        };
        assert_eq!(
            v(&[
                "prun", "-i", "inv", "-p", "5", "bench", "--levels", "1", "x"
            ]),
            [
                "prun", "bench", "-i", "inv", "-p", "5", "--levels", "1", "x"
            ]
        );
        assert_eq!(
            v(&["prun", "--inventory=inv", "bench", "x"]),
            ["prun", "bench", "--inventory=inv", "x"]
        );
        // a remote command that merely contains the word is left alone
        assert_eq!(
            v(&["prun", "-i", "inv", "echo", "bench"]),
            ["prun", "-i", "inv", "echo", "bench"]
        );
        assert_eq!(
            v(&["prun", "-i", "inv", "--", "bench"]),
            ["prun", "-i", "inv", "--", "bench"]
        );
        assert_eq!(
            v(&["prun", "-q", "--list-hosts", "-H", "bench"]),
            ["prun", "-q", "--list-hosts", "-H", "bench"]
        );
        assert_eq!(v(&["prun", "bench", "x"]), ["prun", "bench", "x"]);
    }

    #[test]
    fn env_pairs() {
        assert_eq!(parse_env("A_1=x=y"), Ok(("A_1".into(), "x=y".into())));
        assert_eq!(parse_env("E="), Ok(("E".into(), "".into())));
        assert!(parse_env("novalue").is_err());
        assert!(parse_env("1A=x").is_err());
        assert!(parse_env("A-B=x").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("0s").unwrap_err().contains("zero"));
        assert!(
            parse_duration("10x")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn command_words_and_flags() {
        let c = Cli::try_parse_from(["prun", "-i", "h.yaml", "ls", "-la", "/"]).unwrap();
        assert_eq!(c.command, ["ls", "-la", "/"]);
        assert_eq!(c.parallel, 64);
        assert_eq!(c.connect_timeout, None);
        assert!(Cli::try_parse_from(["prun", "-p", "0", "x"]).is_err());
        assert!(Cli::try_parse_from(["prun", "--connect-timeout", "soon", "x"]).is_err());
    }
}
