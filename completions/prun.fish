# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_prun_global_optspecs
    string join \n i/inventory= playbook-dir= inventory-timeout= H/hosts= l/limit= list-hosts u/user= port= identity= host-key-check= F/ssh-config= o/option= A/forward-agent J/jump= known-hosts= p/parallel= connect-timeout= t/timeout= keepalive= persist= env= cwd= pty sudo sudo-user= ask-pass stdin retries= batch= order= max-fail= fail-fast canary= y/yes pause= stagger= dry-run literal local engine= output= out-dir= failed-hosts= report= metrics= metrics-prefix= report-format= progress= color= q/quiet h/help V/version
end

function __fish_prun_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_prun_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_prun_using_subcommand
    set -l cmd (__fish_prun_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c prun -n "__fish_prun_needs_command" -s i -l inventory -d 'Inventory: an Ansible YAML, INI or JSON file, a plain host list, a directory of them, an executable dynamic inventory (run with --list), or - for stdin (repeatable: all merge into one inventory)' -r -F
complete -c prun -n "__fish_prun_needs_command" -l playbook-dir -d 'Also read DIR/group_vars/ and DIR/host_vars/ (they win over those beside the inventories), as ansible-playbook does with the playbook\'s directory' -r -F
complete -c prun -n "__fish_prun_needs_command" -l inventory-timeout -d 'Deadline for a dynamic inventory program to print its inventory' -r
complete -c prun -n "__fish_prun_needs_command" -s H -l hosts -d 'Hosts to run on, comma separated, [user@]host[:port], with ranges: web[01-10], db-[a:c], node[1-3,7] (repeatable)' -r
complete -c prun -n "__fish_prun_needs_command" -s l -l limit -d 'Select hosts by pattern: web:db, web:!web03, web:&prod, web*, ~regex, @FILE' -r
complete -c prun -n "__fish_prun_needs_command" -s u -l user -d 'Remote user for every host (default: the inventory\'s user, else the local user)' -r
complete -c prun -n "__fish_prun_needs_command" -l port -d 'SSH port for every host (default: the inventory\'s port, else 22)' -r
complete -c prun -n "__fish_prun_needs_command" -l identity -d 'Private key file to try first (repeatable)' -r
complete -c prun -n "__fish_prun_needs_command" -l host-key-check -d 'Host key policy: strict refuses unknown hosts, accept-new records them, off checks nothing [default: ssh_config\'s StrictHostKeyChecking, else strict]' -r -f -a "strict\t''
accept-new\t''
off\t''"
complete -c prun -n "__fish_prun_needs_command" -s F -l ssh-config -d 'OpenSSH client configuration to read instead of ~/.ssh/config and /etc/ssh/ssh_config; `none` reads none' -r
complete -c prun -n "__fish_prun_needs_command" -s o -l option -d 'An ssh_config option for every host, as ssh -o takes it: Key=Value or "Key Value" (repeatable; beats the inventory and ssh_config, not -u/--port/-J…): HostName, User, Port, IdentityFile, IdentitiesOnly, CertificateFile, ProxyJump, ProxyCommand, ForwardAgent, ConnectTimeout, UserKnownHostsFile, StrictHostKeyChecking, HostKeyAlias' -r
complete -c prun -n "__fish_prun_needs_command" -s J -l jump -d 'Reach every host through this bastion, [user@]host[:port] (like ssh -J; `none` disables the inventory\'s and ssh_config\'s jump hosts)' -r
complete -c prun -n "__fish_prun_needs_command" -l known-hosts -d 'known_hosts file to use instead of ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts (repeatable; accept-new writes to the first)' -r -F
complete -c prun -n "__fish_prun_needs_command" -s p -l parallel -d 'How many hosts run at once' -r
complete -c prun -n "__fish_prun_needs_command" -l connect-timeout -d 'Deadline for DNS and the TCP connect, then how long the server may stay silent during the handshake, host key check and auth (the whole login at most 3 times it) (e.g. 10s, 500ms, 1m) [default: ssh_config\'s ConnectTimeout, else 10s]' -r
complete -c prun -n "__fish_prun_needs_command" -s t -l timeout -d 'Deadline for the command on each host, from the exec request (default: none)' -r
complete -c prun -n "__fish_prun_needs_command" -l keepalive -d 'While a command runs, ask the server for a reply this often when nothing arrives; a host whose server sends nothing for 3 intervals fails ("server stopped answering"). libssh2 sends keepalives at most every 2 s' -r
complete -c prun -n "__fish_prun_needs_command" -l persist -d 'Keep each host\'s login in a holder process until it has been idle this long, and run this and later commands (with --persist too) over the held logins' -r
complete -c prun -n "__fish_prun_needs_command" -l env -d 'Set an environment variable for the command (repeatable); sent as an SSH env request, or exported by a command prefix when the server refuses it (sshd\'s AcceptEnv)' -r
complete -c prun -n "__fish_prun_needs_command" -l cwd -d 'Run the command in DIR on every host' -r
complete -c prun -n "__fish_prun_needs_command" -l sudo-user -d 'Run the command as USER through sudo (implies --sudo)' -r
complete -c prun -n "__fish_prun_needs_command" -l retries -d 'Extra attempts for hosts that fail before the command could have started (refused, no banner, reset, timeout before auth); backoff doubles from 200 ms, with jitter' -r
complete -c prun -n "__fish_prun_needs_command" -l batch -d 'Run the hosts in batches: N hosts, N% of them, or a list that steps up with its last size repeating (1,5,25%); a batch starts once the previous one has finished' -r
complete -c prun -n "__fish_prun_needs_command" -l order -d 'The order hosts start in (and are batched and numbered in)' -r -f -a "inventory\t'As the inventory lists them'
reverse\t'The inventory\'s order backwards'
sorted\t'By name, digit runs as numbers (web2 before web10)'
reverse-sorted\t'By name, backwards'
shuffle\t'A random order, new each run'"
complete -c prun -n "__fish_prun_needs_command" -l max-fail -d 'Start no more hosts once more than N hosts (or N% of them) have failed; running hosts finish, the rest are reported as skipped, exit status 6' -r
complete -c prun -n "__fish_prun_needs_command" -l canary -d 'Run N hosts first, show how they did, and ask on the terminal before the rest' -r
complete -c prun -n "__fish_prun_needs_command" -l pause -d 'Wait this long between batches, or `ask` to ask on the terminal before each next batch' -r
complete -c prun -n "__fish_prun_needs_command" -l stagger -d 'Wait this long between starting one host and the next (spreads the key exchanges)' -r
complete -c prun -n "__fish_prun_needs_command" -l engine -d 'How hosts share threads: events (one event loop per core, each running many sessions; --parallel counts sessions) or threads (one thread per running host). prun bench takes a list (threads,events) and measures each' -r -f -a "threads\t''
events\t''"
complete -c prun -n "__fish_prun_needs_command" -l output -d 'How remote output is shown' -r -f -a "stream\t'Each line as it arrives, prefixed with the host'
block\t'Each host\'s output as one block under a header when the host finishes (pssh -i)'
gather\t'At the end, hosts with identical output grouped under one header (clush -b)'
json\t'JSON Lines on stdout: run_start, host_start, output, host_end, summary events'"
complete -c prun -n "__fish_prun_needs_command" -l out-dir -d 'Also write each host\'s stdout and stderr, byte-exact, to DIR/<host>.out and DIR/<host>.err as they arrive (use -q to print nothing else)' -r -F
complete -c prun -n "__fish_prun_needs_command" -l failed-hosts -d 'Write the names of the hosts that did not succeed to FILE, one per line, to re-run them with -l @FILE' -r -F
complete -c prun -n "__fish_prun_needs_command" -l report -d 'Write the per-host timing report to FILE: JSON or CSV by the file\'s extension (.json, .csv) or --report-format; written at the end, also after Ctrl-C' -r -F
complete -c prun -n "__fish_prun_needs_command" -l metrics -d 'Send every host\'s phase timings, when the run ends, to InfluxDB 1.x (influx[+https]://HOST:PORT/DB), InfluxDB 2.x (influx2[+https]://HOST:PORT/ORG/BUCKET, token in PRUN_INFLUX_TOKEN), Graphite (graphite://HOST:PORT) or a line-protocol file (file:PATH) (repeatable; a sink that fails costs a warning, not the run)' -r
complete -c prun -n "__fish_prun_needs_command" -l metrics-prefix -d 'The first segments of Graphite metric paths (PREFIX.HOST.PHASE)' -r
complete -c prun -n "__fish_prun_needs_command" -l report-format -d 'Format of --report when its extension does not say' -r -f -a "json\t''
csv\t''"
complete -c prun -n "__fish_prun_needs_command" -l progress -d 'Progress bar on stderr: auto shows it when stderr is a terminal' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_needs_command" -l color -d 'Colour host names: auto colours when stdout is a terminal and NO_COLOR is unset' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_needs_command" -l list-hosts -d 'Print the selected hosts (name, address, port, user, jump host, where each value came from; tab-separated) and connect to nothing'
complete -c prun -n "__fish_prun_needs_command" -s A -l forward-agent -d 'Forward the local ssh-agent (SSH_AUTH_SOCK) to every host\'s command, as ssh -A does, except where ssh_config says ForwardAgent no'
complete -c prun -n "__fish_prun_needs_command" -l pty -d 'Request a terminal: stdout and stderr arrive merged, and the command dies with the connection (so --timeout and Ctrl-C stop it even where signals are ignored)'
complete -c prun -n "__fish_prun_needs_command" -l sudo -d 'Run the command as root through sudo (sudo -n, or with the password from --ask-pass or PRUN_SUDO_PASSWORD fed to sudo\'s prompt once per host)'
complete -c prun -n "__fish_prun_needs_command" -l ask-pass -d 'Prompt once, before the run, for a password: used for password and keyboard-interactive logins and for sudo\'s prompt (never echoed, logged or put on a command line)'
complete -c prun -n "__fish_prun_needs_command" -l stdin -d 'Read local stdin once and send it to every host\'s command (otherwise commands get an empty stdin, like ssh -n)'
complete -c prun -n "__fish_prun_needs_command" -l fail-fast -d 'The same as --max-fail 0: start no more hosts after the first one that does not succeed'
complete -c prun -n "__fish_prun_needs_command" -s y -l yes -d 'Do not ask after the canary: go on when every canary host succeeded, stop (exit 6) when one did not'
complete -c prun -n "__fish_prun_needs_command" -l dry-run -d 'Print what each host would run (host, batch, the command or transfer after {name} substitution; tab-separated) and connect to nothing'
complete -c prun -n "__fish_prun_needs_command" -l literal -d 'Take the command, --env values and transfer paths as written: no {name} substitution'
complete -c prun -n "__fish_prun_needs_command" -l local -d 'Run the command on this machine, once per selected host, instead of over SSH ({host}, {addr}, {port}, {user} and inventory vars substituted; PRUN_HOST, PRUN_ADDR, PRUN_PORT, PRUN_USER, PRUN_BATCH and PRUN_INDEX set)'
complete -c prun -n "__fish_prun_needs_command" -s q -l quiet -d 'Print nothing but errors and warnings: no remote output, progress or summary (the exit status still tells what happened)'
complete -c prun -n "__fish_prun_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c prun -n "__fish_prun_needs_command" -s V -l version -d 'Print version'
complete -c prun -n "__fish_prun_needs_command" -a "bench" -d 'Reproduce the 2017 study: time each SSH operation at increasing concurrency'
complete -c prun -n "__fish_prun_needs_command" -a "push" -d 'Copy local files to every selected host over SFTP'
complete -c prun -n "__fish_prun_needs_command" -a "pull" -d 'Copy a file or directory from every selected host into LOCAL_DIR/<host>/ over SFTP'
complete -c prun -n "__fish_prun_needs_command" -a "shell" -d 'An interactive prompt that runs each line on the selected hosts over held logins'
complete -c prun -n "__fish_prun_needs_command" -a "sessions" -d 'List the logins a --persist holder keeps, or close them (--stop)'
complete -c prun -n "__fish_prun_needs_command" -a "completions" -d 'Print a shell completion script (bash, zsh or fish) to stdout'
complete -c prun -n "__fish_prun_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c prun -n "__fish_prun_using_subcommand bench" -l levels -d 'Concurrency levels, comma separated' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l rounds -d 'Sessions per level, as a multiple of the level (at least 10 sessions per level)' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l csv -d 'Where to write the table as CSV' -r -F
complete -c prun -n "__fish_prun_using_subcommand bench" -l svg -d 'Where to draw the chart (SVG); with several engines, FILE-ENGINE.svg for each' -r -F
complete -c prun -n "__fish_prun_using_subcommand bench" -s i -l inventory -d 'Inventory: an Ansible YAML, INI or JSON file, a plain host list, a directory of them, an executable dynamic inventory (run with --list), or - for stdin (repeatable: all merge into one inventory)' -r -F
complete -c prun -n "__fish_prun_using_subcommand bench" -l playbook-dir -d 'Also read DIR/group_vars/ and DIR/host_vars/ (they win over those beside the inventories), as ansible-playbook does with the playbook\'s directory' -r -F
complete -c prun -n "__fish_prun_using_subcommand bench" -l inventory-timeout -d 'Deadline for a dynamic inventory program to print its inventory' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -s H -l hosts -d 'Hosts to run on, comma separated, [user@]host[:port], with ranges: web[01-10], db-[a:c], node[1-3,7] (repeatable)' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -s l -l limit -d 'Select hosts by pattern: web:db, web:!web03, web:&prod, web*, ~regex, @FILE' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -s u -l user -d 'Remote user for every host (default: the inventory\'s user, else the local user)' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l port -d 'SSH port for every host (default: the inventory\'s port, else 22)' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l identity -d 'Private key file to try first (repeatable)' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l host-key-check -d 'Host key policy: strict refuses unknown hosts, accept-new records them, off checks nothing [default: ssh_config\'s StrictHostKeyChecking, else strict]' -r -f -a "strict\t''
accept-new\t''
off\t''"
complete -c prun -n "__fish_prun_using_subcommand bench" -s F -l ssh-config -d 'OpenSSH client configuration to read instead of ~/.ssh/config and /etc/ssh/ssh_config; `none` reads none' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -s o -l option -d 'An ssh_config option for every host, as ssh -o takes it: Key=Value or "Key Value" (repeatable; beats the inventory and ssh_config, not -u/--port/-J…): HostName, User, Port, IdentityFile, IdentitiesOnly, CertificateFile, ProxyJump, ProxyCommand, ForwardAgent, ConnectTimeout, UserKnownHostsFile, StrictHostKeyChecking, HostKeyAlias' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -s J -l jump -d 'Reach every host through this bastion, [user@]host[:port] (like ssh -J; `none` disables the inventory\'s and ssh_config\'s jump hosts)' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l known-hosts -d 'known_hosts file to use instead of ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts (repeatable; accept-new writes to the first)' -r -F
complete -c prun -n "__fish_prun_using_subcommand bench" -s p -l parallel -d 'How many hosts run at once' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l connect-timeout -d 'Deadline for DNS and the TCP connect, then how long the server may stay silent during the handshake, host key check and auth (the whole login at most 3 times it) (e.g. 10s, 500ms, 1m) [default: ssh_config\'s ConnectTimeout, else 10s]' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -s t -l timeout -d 'Deadline for the command on each host, from the exec request (default: none)' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l keepalive -d 'While a command runs, ask the server for a reply this often when nothing arrives; a host whose server sends nothing for 3 intervals fails ("server stopped answering"). libssh2 sends keepalives at most every 2 s' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l persist -d 'Keep each host\'s login in a holder process until it has been idle this long, and run this and later commands (with --persist too) over the held logins' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l retries -d 'Extra attempts for hosts that fail before the command could have started (refused, no banner, reset, timeout before auth); backoff doubles from 200 ms, with jitter' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l batch -d 'Run the hosts in batches: N hosts, N% of them, or a list that steps up with its last size repeating (1,5,25%); a batch starts once the previous one has finished' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l order -d 'The order hosts start in (and are batched and numbered in)' -r -f -a "inventory\t'As the inventory lists them'
reverse\t'The inventory\'s order backwards'
sorted\t'By name, digit runs as numbers (web2 before web10)'
reverse-sorted\t'By name, backwards'
shuffle\t'A random order, new each run'"
complete -c prun -n "__fish_prun_using_subcommand bench" -l max-fail -d 'Start no more hosts once more than N hosts (or N% of them) have failed; running hosts finish, the rest are reported as skipped, exit status 6' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l canary -d 'Run N hosts first, show how they did, and ask on the terminal before the rest' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l pause -d 'Wait this long between batches, or `ask` to ask on the terminal before each next batch' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l stagger -d 'Wait this long between starting one host and the next (spreads the key exchanges)' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l engine -d 'How hosts share threads: events (one event loop per core, each running many sessions; --parallel counts sessions) or threads (one thread per running host). prun bench takes a list (threads,events) and measures each' -r -f -a "threads\t''
events\t''"
complete -c prun -n "__fish_prun_using_subcommand bench" -l failed-hosts -d 'Write the names of the hosts that did not succeed to FILE, one per line, to re-run them with -l @FILE' -r -F
complete -c prun -n "__fish_prun_using_subcommand bench" -l report -d 'Write the per-host timing report to FILE: JSON or CSV by the file\'s extension (.json, .csv) or --report-format; written at the end, also after Ctrl-C' -r -F
complete -c prun -n "__fish_prun_using_subcommand bench" -l metrics -d 'Send every host\'s phase timings, when the run ends, to InfluxDB 1.x (influx[+https]://HOST:PORT/DB), InfluxDB 2.x (influx2[+https]://HOST:PORT/ORG/BUCKET, token in PRUN_INFLUX_TOKEN), Graphite (graphite://HOST:PORT) or a line-protocol file (file:PATH) (repeatable; a sink that fails costs a warning, not the run)' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l metrics-prefix -d 'The first segments of Graphite metric paths (PREFIX.HOST.PHASE)' -r
complete -c prun -n "__fish_prun_using_subcommand bench" -l report-format -d 'Format of --report when its extension does not say' -r -f -a "json\t''
csv\t''"
complete -c prun -n "__fish_prun_using_subcommand bench" -l progress -d 'Progress bar on stderr: auto shows it when stderr is a terminal' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_using_subcommand bench" -l color -d 'Colour host names: auto colours when stdout is a terminal and NO_COLOR is unset' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_using_subcommand bench" -s A -l forward-agent -d 'Forward the local ssh-agent (SSH_AUTH_SOCK) to every host\'s command, as ssh -A does, except where ssh_config says ForwardAgent no'
complete -c prun -n "__fish_prun_using_subcommand bench" -l fail-fast -d 'The same as --max-fail 0: start no more hosts after the first one that does not succeed'
complete -c prun -n "__fish_prun_using_subcommand bench" -s y -l yes -d 'Do not ask after the canary: go on when every canary host succeeded, stop (exit 6) when one did not'
complete -c prun -n "__fish_prun_using_subcommand bench" -l dry-run -d 'Print what each host would run (host, batch, the command or transfer after {name} substitution; tab-separated) and connect to nothing'
complete -c prun -n "__fish_prun_using_subcommand bench" -l literal -d 'Take the command, --env values and transfer paths as written: no {name} substitution'
complete -c prun -n "__fish_prun_using_subcommand bench" -s q -l quiet -d 'Print nothing but errors and warnings: no remote output, progress or summary (the exit status still tells what happened)'
complete -c prun -n "__fish_prun_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c prun -n "__fish_prun_using_subcommand push" -s i -l inventory -d 'Inventory: an Ansible YAML, INI or JSON file, a plain host list, a directory of them, an executable dynamic inventory (run with --list), or - for stdin (repeatable: all merge into one inventory)' -r -F
complete -c prun -n "__fish_prun_using_subcommand push" -l playbook-dir -d 'Also read DIR/group_vars/ and DIR/host_vars/ (they win over those beside the inventories), as ansible-playbook does with the playbook\'s directory' -r -F
complete -c prun -n "__fish_prun_using_subcommand push" -l inventory-timeout -d 'Deadline for a dynamic inventory program to print its inventory' -r
complete -c prun -n "__fish_prun_using_subcommand push" -s H -l hosts -d 'Hosts to run on, comma separated, [user@]host[:port], with ranges: web[01-10], db-[a:c], node[1-3,7] (repeatable)' -r
complete -c prun -n "__fish_prun_using_subcommand push" -s l -l limit -d 'Select hosts by pattern: web:db, web:!web03, web:&prod, web*, ~regex, @FILE' -r
complete -c prun -n "__fish_prun_using_subcommand push" -s u -l user -d 'Remote user for every host (default: the inventory\'s user, else the local user)' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l port -d 'SSH port for every host (default: the inventory\'s port, else 22)' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l identity -d 'Private key file to try first (repeatable)' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l host-key-check -d 'Host key policy: strict refuses unknown hosts, accept-new records them, off checks nothing [default: ssh_config\'s StrictHostKeyChecking, else strict]' -r -f -a "strict\t''
accept-new\t''
off\t''"
complete -c prun -n "__fish_prun_using_subcommand push" -s F -l ssh-config -d 'OpenSSH client configuration to read instead of ~/.ssh/config and /etc/ssh/ssh_config; `none` reads none' -r
complete -c prun -n "__fish_prun_using_subcommand push" -s o -l option -d 'An ssh_config option for every host, as ssh -o takes it: Key=Value or "Key Value" (repeatable; beats the inventory and ssh_config, not -u/--port/-J…): HostName, User, Port, IdentityFile, IdentitiesOnly, CertificateFile, ProxyJump, ProxyCommand, ForwardAgent, ConnectTimeout, UserKnownHostsFile, StrictHostKeyChecking, HostKeyAlias' -r
complete -c prun -n "__fish_prun_using_subcommand push" -s J -l jump -d 'Reach every host through this bastion, [user@]host[:port] (like ssh -J; `none` disables the inventory\'s and ssh_config\'s jump hosts)' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l known-hosts -d 'known_hosts file to use instead of ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts (repeatable; accept-new writes to the first)' -r -F
complete -c prun -n "__fish_prun_using_subcommand push" -s p -l parallel -d 'How many hosts run at once' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l connect-timeout -d 'Deadline for DNS and the TCP connect, then how long the server may stay silent during the handshake, host key check and auth (the whole login at most 3 times it) (e.g. 10s, 500ms, 1m) [default: ssh_config\'s ConnectTimeout, else 10s]' -r
complete -c prun -n "__fish_prun_using_subcommand push" -s t -l timeout -d 'Deadline for the command on each host, from the exec request (default: none)' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l keepalive -d 'While a command runs, ask the server for a reply this often when nothing arrives; a host whose server sends nothing for 3 intervals fails ("server stopped answering"). libssh2 sends keepalives at most every 2 s' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l persist -d 'Keep each host\'s login in a holder process until it has been idle this long, and run this and later commands (with --persist too) over the held logins' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l retries -d 'Extra attempts for hosts that fail before the command could have started (refused, no banner, reset, timeout before auth); backoff doubles from 200 ms, with jitter' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l batch -d 'Run the hosts in batches: N hosts, N% of them, or a list that steps up with its last size repeating (1,5,25%); a batch starts once the previous one has finished' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l order -d 'The order hosts start in (and are batched and numbered in)' -r -f -a "inventory\t'As the inventory lists them'
reverse\t'The inventory\'s order backwards'
sorted\t'By name, digit runs as numbers (web2 before web10)'
reverse-sorted\t'By name, backwards'
shuffle\t'A random order, new each run'"
complete -c prun -n "__fish_prun_using_subcommand push" -l max-fail -d 'Start no more hosts once more than N hosts (or N% of them) have failed; running hosts finish, the rest are reported as skipped, exit status 6' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l canary -d 'Run N hosts first, show how they did, and ask on the terminal before the rest' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l pause -d 'Wait this long between batches, or `ask` to ask on the terminal before each next batch' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l stagger -d 'Wait this long between starting one host and the next (spreads the key exchanges)' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l engine -d 'How hosts share threads: events (one event loop per core, each running many sessions; --parallel counts sessions) or threads (one thread per running host). prun bench takes a list (threads,events) and measures each' -r -f -a "threads\t''
events\t''"
complete -c prun -n "__fish_prun_using_subcommand push" -l failed-hosts -d 'Write the names of the hosts that did not succeed to FILE, one per line, to re-run them with -l @FILE' -r -F
complete -c prun -n "__fish_prun_using_subcommand push" -l report -d 'Write the per-host timing report to FILE: JSON or CSV by the file\'s extension (.json, .csv) or --report-format; written at the end, also after Ctrl-C' -r -F
complete -c prun -n "__fish_prun_using_subcommand push" -l metrics -d 'Send every host\'s phase timings, when the run ends, to InfluxDB 1.x (influx[+https]://HOST:PORT/DB), InfluxDB 2.x (influx2[+https]://HOST:PORT/ORG/BUCKET, token in PRUN_INFLUX_TOKEN), Graphite (graphite://HOST:PORT) or a line-protocol file (file:PATH) (repeatable; a sink that fails costs a warning, not the run)' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l metrics-prefix -d 'The first segments of Graphite metric paths (PREFIX.HOST.PHASE)' -r
complete -c prun -n "__fish_prun_using_subcommand push" -l report-format -d 'Format of --report when its extension does not say' -r -f -a "json\t''
csv\t''"
complete -c prun -n "__fish_prun_using_subcommand push" -l progress -d 'Progress bar on stderr: auto shows it when stderr is a terminal' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_using_subcommand push" -l color -d 'Colour host names: auto colours when stdout is a terminal and NO_COLOR is unset' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_using_subcommand push" -s r -l recursive -d 'Copy directories and their contents'
complete -c prun -n "__fish_prun_using_subcommand push" -l mkdir -d 'Create REMOTE_DIR (and its parents) when it does not exist'
complete -c prun -n "__fish_prun_using_subcommand push" -l preserve -d 'Also keep access and modification times (the mode is always kept)'
complete -c prun -n "__fish_prun_using_subcommand push" -l checksum -d 'After the copy, compare SHA-256 of every file with the remote `sha256sum`'
complete -c prun -n "__fish_prun_using_subcommand push" -s A -l forward-agent -d 'Forward the local ssh-agent (SSH_AUTH_SOCK) to every host\'s command, as ssh -A does, except where ssh_config says ForwardAgent no'
complete -c prun -n "__fish_prun_using_subcommand push" -l fail-fast -d 'The same as --max-fail 0: start no more hosts after the first one that does not succeed'
complete -c prun -n "__fish_prun_using_subcommand push" -s y -l yes -d 'Do not ask after the canary: go on when every canary host succeeded, stop (exit 6) when one did not'
complete -c prun -n "__fish_prun_using_subcommand push" -l dry-run -d 'Print what each host would run (host, batch, the command or transfer after {name} substitution; tab-separated) and connect to nothing'
complete -c prun -n "__fish_prun_using_subcommand push" -l literal -d 'Take the command, --env values and transfer paths as written: no {name} substitution'
complete -c prun -n "__fish_prun_using_subcommand push" -s q -l quiet -d 'Print nothing but errors and warnings: no remote output, progress or summary (the exit status still tells what happened)'
complete -c prun -n "__fish_prun_using_subcommand push" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c prun -n "__fish_prun_using_subcommand pull" -s i -l inventory -d 'Inventory: an Ansible YAML, INI or JSON file, a plain host list, a directory of them, an executable dynamic inventory (run with --list), or - for stdin (repeatable: all merge into one inventory)' -r -F
complete -c prun -n "__fish_prun_using_subcommand pull" -l playbook-dir -d 'Also read DIR/group_vars/ and DIR/host_vars/ (they win over those beside the inventories), as ansible-playbook does with the playbook\'s directory' -r -F
complete -c prun -n "__fish_prun_using_subcommand pull" -l inventory-timeout -d 'Deadline for a dynamic inventory program to print its inventory' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -s H -l hosts -d 'Hosts to run on, comma separated, [user@]host[:port], with ranges: web[01-10], db-[a:c], node[1-3,7] (repeatable)' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -s l -l limit -d 'Select hosts by pattern: web:db, web:!web03, web:&prod, web*, ~regex, @FILE' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -s u -l user -d 'Remote user for every host (default: the inventory\'s user, else the local user)' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l port -d 'SSH port for every host (default: the inventory\'s port, else 22)' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l identity -d 'Private key file to try first (repeatable)' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l host-key-check -d 'Host key policy: strict refuses unknown hosts, accept-new records them, off checks nothing [default: ssh_config\'s StrictHostKeyChecking, else strict]' -r -f -a "strict\t''
accept-new\t''
off\t''"
complete -c prun -n "__fish_prun_using_subcommand pull" -s F -l ssh-config -d 'OpenSSH client configuration to read instead of ~/.ssh/config and /etc/ssh/ssh_config; `none` reads none' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -s o -l option -d 'An ssh_config option for every host, as ssh -o takes it: Key=Value or "Key Value" (repeatable; beats the inventory and ssh_config, not -u/--port/-J…): HostName, User, Port, IdentityFile, IdentitiesOnly, CertificateFile, ProxyJump, ProxyCommand, ForwardAgent, ConnectTimeout, UserKnownHostsFile, StrictHostKeyChecking, HostKeyAlias' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -s J -l jump -d 'Reach every host through this bastion, [user@]host[:port] (like ssh -J; `none` disables the inventory\'s and ssh_config\'s jump hosts)' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l known-hosts -d 'known_hosts file to use instead of ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts (repeatable; accept-new writes to the first)' -r -F
complete -c prun -n "__fish_prun_using_subcommand pull" -s p -l parallel -d 'How many hosts run at once' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l connect-timeout -d 'Deadline for DNS and the TCP connect, then how long the server may stay silent during the handshake, host key check and auth (the whole login at most 3 times it) (e.g. 10s, 500ms, 1m) [default: ssh_config\'s ConnectTimeout, else 10s]' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -s t -l timeout -d 'Deadline for the command on each host, from the exec request (default: none)' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l keepalive -d 'While a command runs, ask the server for a reply this often when nothing arrives; a host whose server sends nothing for 3 intervals fails ("server stopped answering"). libssh2 sends keepalives at most every 2 s' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l persist -d 'Keep each host\'s login in a holder process until it has been idle this long, and run this and later commands (with --persist too) over the held logins' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l retries -d 'Extra attempts for hosts that fail before the command could have started (refused, no banner, reset, timeout before auth); backoff doubles from 200 ms, with jitter' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l batch -d 'Run the hosts in batches: N hosts, N% of them, or a list that steps up with its last size repeating (1,5,25%); a batch starts once the previous one has finished' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l order -d 'The order hosts start in (and are batched and numbered in)' -r -f -a "inventory\t'As the inventory lists them'
reverse\t'The inventory\'s order backwards'
sorted\t'By name, digit runs as numbers (web2 before web10)'
reverse-sorted\t'By name, backwards'
shuffle\t'A random order, new each run'"
complete -c prun -n "__fish_prun_using_subcommand pull" -l max-fail -d 'Start no more hosts once more than N hosts (or N% of them) have failed; running hosts finish, the rest are reported as skipped, exit status 6' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l canary -d 'Run N hosts first, show how they did, and ask on the terminal before the rest' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l pause -d 'Wait this long between batches, or `ask` to ask on the terminal before each next batch' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l stagger -d 'Wait this long between starting one host and the next (spreads the key exchanges)' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l engine -d 'How hosts share threads: events (one event loop per core, each running many sessions; --parallel counts sessions) or threads (one thread per running host). prun bench takes a list (threads,events) and measures each' -r -f -a "threads\t''
events\t''"
complete -c prun -n "__fish_prun_using_subcommand pull" -l failed-hosts -d 'Write the names of the hosts that did not succeed to FILE, one per line, to re-run them with -l @FILE' -r -F
complete -c prun -n "__fish_prun_using_subcommand pull" -l report -d 'Write the per-host timing report to FILE: JSON or CSV by the file\'s extension (.json, .csv) or --report-format; written at the end, also after Ctrl-C' -r -F
complete -c prun -n "__fish_prun_using_subcommand pull" -l metrics -d 'Send every host\'s phase timings, when the run ends, to InfluxDB 1.x (influx[+https]://HOST:PORT/DB), InfluxDB 2.x (influx2[+https]://HOST:PORT/ORG/BUCKET, token in PRUN_INFLUX_TOKEN), Graphite (graphite://HOST:PORT) or a line-protocol file (file:PATH) (repeatable; a sink that fails costs a warning, not the run)' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l metrics-prefix -d 'The first segments of Graphite metric paths (PREFIX.HOST.PHASE)' -r
complete -c prun -n "__fish_prun_using_subcommand pull" -l report-format -d 'Format of --report when its extension does not say' -r -f -a "json\t''
csv\t''"
complete -c prun -n "__fish_prun_using_subcommand pull" -l progress -d 'Progress bar on stderr: auto shows it when stderr is a terminal' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_using_subcommand pull" -l color -d 'Colour host names: auto colours when stdout is a terminal and NO_COLOR is unset' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_using_subcommand pull" -s r -l recursive -d 'Copy a directory and its contents'
complete -c prun -n "__fish_prun_using_subcommand pull" -l preserve -d 'Also keep access and modification times (permission bits are always kept, within the umask; never setuid, setgid or sticky)'
complete -c prun -n "__fish_prun_using_subcommand pull" -l checksum -d 'After the copy, compare SHA-256 of every file with the remote `sha256sum`'
complete -c prun -n "__fish_prun_using_subcommand pull" -s A -l forward-agent -d 'Forward the local ssh-agent (SSH_AUTH_SOCK) to every host\'s command, as ssh -A does, except where ssh_config says ForwardAgent no'
complete -c prun -n "__fish_prun_using_subcommand pull" -l fail-fast -d 'The same as --max-fail 0: start no more hosts after the first one that does not succeed'
complete -c prun -n "__fish_prun_using_subcommand pull" -s y -l yes -d 'Do not ask after the canary: go on when every canary host succeeded, stop (exit 6) when one did not'
complete -c prun -n "__fish_prun_using_subcommand pull" -l dry-run -d 'Print what each host would run (host, batch, the command or transfer after {name} substitution; tab-separated) and connect to nothing'
complete -c prun -n "__fish_prun_using_subcommand pull" -l literal -d 'Take the command, --env values and transfer paths as written: no {name} substitution'
complete -c prun -n "__fish_prun_using_subcommand pull" -s q -l quiet -d 'Print nothing but errors and warnings: no remote output, progress or summary (the exit status still tells what happened)'
complete -c prun -n "__fish_prun_using_subcommand pull" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c prun -n "__fish_prun_using_subcommand shell" -s i -l inventory -d 'Inventory: an Ansible YAML, INI or JSON file, a plain host list, a directory of them, an executable dynamic inventory (run with --list), or - for stdin (repeatable: all merge into one inventory)' -r -F
complete -c prun -n "__fish_prun_using_subcommand shell" -l playbook-dir -d 'Also read DIR/group_vars/ and DIR/host_vars/ (they win over those beside the inventories), as ansible-playbook does with the playbook\'s directory' -r -F
complete -c prun -n "__fish_prun_using_subcommand shell" -l inventory-timeout -d 'Deadline for a dynamic inventory program to print its inventory' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -s H -l hosts -d 'Hosts to run on, comma separated, [user@]host[:port], with ranges: web[01-10], db-[a:c], node[1-3,7] (repeatable)' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -s l -l limit -d 'Select hosts by pattern: web:db, web:!web03, web:&prod, web*, ~regex, @FILE' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -s u -l user -d 'Remote user for every host (default: the inventory\'s user, else the local user)' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l port -d 'SSH port for every host (default: the inventory\'s port, else 22)' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l identity -d 'Private key file to try first (repeatable)' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l host-key-check -d 'Host key policy: strict refuses unknown hosts, accept-new records them, off checks nothing [default: ssh_config\'s StrictHostKeyChecking, else strict]' -r -f -a "strict\t''
accept-new\t''
off\t''"
complete -c prun -n "__fish_prun_using_subcommand shell" -s F -l ssh-config -d 'OpenSSH client configuration to read instead of ~/.ssh/config and /etc/ssh/ssh_config; `none` reads none' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -s o -l option -d 'An ssh_config option for every host, as ssh -o takes it: Key=Value or "Key Value" (repeatable; beats the inventory and ssh_config, not -u/--port/-J…): HostName, User, Port, IdentityFile, IdentitiesOnly, CertificateFile, ProxyJump, ProxyCommand, ForwardAgent, ConnectTimeout, UserKnownHostsFile, StrictHostKeyChecking, HostKeyAlias' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -s J -l jump -d 'Reach every host through this bastion, [user@]host[:port] (like ssh -J; `none` disables the inventory\'s and ssh_config\'s jump hosts)' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l known-hosts -d 'known_hosts file to use instead of ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts (repeatable; accept-new writes to the first)' -r -F
complete -c prun -n "__fish_prun_using_subcommand shell" -s p -l parallel -d 'How many hosts run at once' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l connect-timeout -d 'Deadline for DNS and the TCP connect, then how long the server may stay silent during the handshake, host key check and auth (the whole login at most 3 times it) (e.g. 10s, 500ms, 1m) [default: ssh_config\'s ConnectTimeout, else 10s]' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -s t -l timeout -d 'Deadline for the command on each host, from the exec request (default: none)' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l keepalive -d 'While a command runs, ask the server for a reply this often when nothing arrives; a host whose server sends nothing for 3 intervals fails ("server stopped answering"). libssh2 sends keepalives at most every 2 s' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l persist -d 'Keep each host\'s login in a holder process until it has been idle this long, and run this and later commands (with --persist too) over the held logins' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l retries -d 'Extra attempts for hosts that fail before the command could have started (refused, no banner, reset, timeout before auth); backoff doubles from 200 ms, with jitter' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l batch -d 'Run the hosts in batches: N hosts, N% of them, or a list that steps up with its last size repeating (1,5,25%); a batch starts once the previous one has finished' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l order -d 'The order hosts start in (and are batched and numbered in)' -r -f -a "inventory\t'As the inventory lists them'
reverse\t'The inventory\'s order backwards'
sorted\t'By name, digit runs as numbers (web2 before web10)'
reverse-sorted\t'By name, backwards'
shuffle\t'A random order, new each run'"
complete -c prun -n "__fish_prun_using_subcommand shell" -l max-fail -d 'Start no more hosts once more than N hosts (or N% of them) have failed; running hosts finish, the rest are reported as skipped, exit status 6' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l canary -d 'Run N hosts first, show how they did, and ask on the terminal before the rest' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l pause -d 'Wait this long between batches, or `ask` to ask on the terminal before each next batch' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l stagger -d 'Wait this long between starting one host and the next (spreads the key exchanges)' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l engine -d 'How hosts share threads: events (one event loop per core, each running many sessions; --parallel counts sessions) or threads (one thread per running host). prun bench takes a list (threads,events) and measures each' -r -f -a "threads\t''
events\t''"
complete -c prun -n "__fish_prun_using_subcommand shell" -l failed-hosts -d 'Write the names of the hosts that did not succeed to FILE, one per line, to re-run them with -l @FILE' -r -F
complete -c prun -n "__fish_prun_using_subcommand shell" -l report -d 'Write the per-host timing report to FILE: JSON or CSV by the file\'s extension (.json, .csv) or --report-format; written at the end, also after Ctrl-C' -r -F
complete -c prun -n "__fish_prun_using_subcommand shell" -l metrics -d 'Send every host\'s phase timings, when the run ends, to InfluxDB 1.x (influx[+https]://HOST:PORT/DB), InfluxDB 2.x (influx2[+https]://HOST:PORT/ORG/BUCKET, token in PRUN_INFLUX_TOKEN), Graphite (graphite://HOST:PORT) or a line-protocol file (file:PATH) (repeatable; a sink that fails costs a warning, not the run)' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l metrics-prefix -d 'The first segments of Graphite metric paths (PREFIX.HOST.PHASE)' -r
complete -c prun -n "__fish_prun_using_subcommand shell" -l report-format -d 'Format of --report when its extension does not say' -r -f -a "json\t''
csv\t''"
complete -c prun -n "__fish_prun_using_subcommand shell" -l progress -d 'Progress bar on stderr: auto shows it when stderr is a terminal' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_using_subcommand shell" -l color -d 'Colour host names: auto colours when stdout is a terminal and NO_COLOR is unset' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_using_subcommand shell" -s A -l forward-agent -d 'Forward the local ssh-agent (SSH_AUTH_SOCK) to every host\'s command, as ssh -A does, except where ssh_config says ForwardAgent no'
complete -c prun -n "__fish_prun_using_subcommand shell" -l fail-fast -d 'The same as --max-fail 0: start no more hosts after the first one that does not succeed'
complete -c prun -n "__fish_prun_using_subcommand shell" -s y -l yes -d 'Do not ask after the canary: go on when every canary host succeeded, stop (exit 6) when one did not'
complete -c prun -n "__fish_prun_using_subcommand shell" -l dry-run -d 'Print what each host would run (host, batch, the command or transfer after {name} substitution; tab-separated) and connect to nothing'
complete -c prun -n "__fish_prun_using_subcommand shell" -l literal -d 'Take the command, --env values and transfer paths as written: no {name} substitution'
complete -c prun -n "__fish_prun_using_subcommand shell" -s q -l quiet -d 'Print nothing but errors and warnings: no remote output, progress or summary (the exit status still tells what happened)'
complete -c prun -n "__fish_prun_using_subcommand shell" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c prun -n "__fish_prun_using_subcommand sessions" -l stop -d 'Close the held logins of the hosts matching a PATTERN (globs on host names: `*`, `?`, `[...]`); with no PATTERN, close every login and end the holder. The holder also ends when its last login is closed' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -s i -l inventory -d 'Inventory: an Ansible YAML, INI or JSON file, a plain host list, a directory of them, an executable dynamic inventory (run with --list), or - for stdin (repeatable: all merge into one inventory)' -r -F
complete -c prun -n "__fish_prun_using_subcommand sessions" -l playbook-dir -d 'Also read DIR/group_vars/ and DIR/host_vars/ (they win over those beside the inventories), as ansible-playbook does with the playbook\'s directory' -r -F
complete -c prun -n "__fish_prun_using_subcommand sessions" -l inventory-timeout -d 'Deadline for a dynamic inventory program to print its inventory' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -s H -l hosts -d 'Hosts to run on, comma separated, [user@]host[:port], with ranges: web[01-10], db-[a:c], node[1-3,7] (repeatable)' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -s l -l limit -d 'Select hosts by pattern: web:db, web:!web03, web:&prod, web*, ~regex, @FILE' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -s u -l user -d 'Remote user for every host (default: the inventory\'s user, else the local user)' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l port -d 'SSH port for every host (default: the inventory\'s port, else 22)' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l identity -d 'Private key file to try first (repeatable)' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l host-key-check -d 'Host key policy: strict refuses unknown hosts, accept-new records them, off checks nothing [default: ssh_config\'s StrictHostKeyChecking, else strict]' -r -f -a "strict\t''
accept-new\t''
off\t''"
complete -c prun -n "__fish_prun_using_subcommand sessions" -s F -l ssh-config -d 'OpenSSH client configuration to read instead of ~/.ssh/config and /etc/ssh/ssh_config; `none` reads none' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -s o -l option -d 'An ssh_config option for every host, as ssh -o takes it: Key=Value or "Key Value" (repeatable; beats the inventory and ssh_config, not -u/--port/-J…): HostName, User, Port, IdentityFile, IdentitiesOnly, CertificateFile, ProxyJump, ProxyCommand, ForwardAgent, ConnectTimeout, UserKnownHostsFile, StrictHostKeyChecking, HostKeyAlias' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -s J -l jump -d 'Reach every host through this bastion, [user@]host[:port] (like ssh -J; `none` disables the inventory\'s and ssh_config\'s jump hosts)' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l known-hosts -d 'known_hosts file to use instead of ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts (repeatable; accept-new writes to the first)' -r -F
complete -c prun -n "__fish_prun_using_subcommand sessions" -s p -l parallel -d 'How many hosts run at once' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l connect-timeout -d 'Deadline for DNS and the TCP connect, then how long the server may stay silent during the handshake, host key check and auth (the whole login at most 3 times it) (e.g. 10s, 500ms, 1m) [default: ssh_config\'s ConnectTimeout, else 10s]' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -s t -l timeout -d 'Deadline for the command on each host, from the exec request (default: none)' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l keepalive -d 'While a command runs, ask the server for a reply this often when nothing arrives; a host whose server sends nothing for 3 intervals fails ("server stopped answering"). libssh2 sends keepalives at most every 2 s' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l persist -d 'Keep each host\'s login in a holder process until it has been idle this long, and run this and later commands (with --persist too) over the held logins' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l retries -d 'Extra attempts for hosts that fail before the command could have started (refused, no banner, reset, timeout before auth); backoff doubles from 200 ms, with jitter' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l batch -d 'Run the hosts in batches: N hosts, N% of them, or a list that steps up with its last size repeating (1,5,25%); a batch starts once the previous one has finished' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l order -d 'The order hosts start in (and are batched and numbered in)' -r -f -a "inventory\t'As the inventory lists them'
reverse\t'The inventory\'s order backwards'
sorted\t'By name, digit runs as numbers (web2 before web10)'
reverse-sorted\t'By name, backwards'
shuffle\t'A random order, new each run'"
complete -c prun -n "__fish_prun_using_subcommand sessions" -l max-fail -d 'Start no more hosts once more than N hosts (or N% of them) have failed; running hosts finish, the rest are reported as skipped, exit status 6' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l canary -d 'Run N hosts first, show how they did, and ask on the terminal before the rest' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l pause -d 'Wait this long between batches, or `ask` to ask on the terminal before each next batch' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l stagger -d 'Wait this long between starting one host and the next (spreads the key exchanges)' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l engine -d 'How hosts share threads: events (one event loop per core, each running many sessions; --parallel counts sessions) or threads (one thread per running host). prun bench takes a list (threads,events) and measures each' -r -f -a "threads\t''
events\t''"
complete -c prun -n "__fish_prun_using_subcommand sessions" -l failed-hosts -d 'Write the names of the hosts that did not succeed to FILE, one per line, to re-run them with -l @FILE' -r -F
complete -c prun -n "__fish_prun_using_subcommand sessions" -l report -d 'Write the per-host timing report to FILE: JSON or CSV by the file\'s extension (.json, .csv) or --report-format; written at the end, also after Ctrl-C' -r -F
complete -c prun -n "__fish_prun_using_subcommand sessions" -l metrics -d 'Send every host\'s phase timings, when the run ends, to InfluxDB 1.x (influx[+https]://HOST:PORT/DB), InfluxDB 2.x (influx2[+https]://HOST:PORT/ORG/BUCKET, token in PRUN_INFLUX_TOKEN), Graphite (graphite://HOST:PORT) or a line-protocol file (file:PATH) (repeatable; a sink that fails costs a warning, not the run)' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l metrics-prefix -d 'The first segments of Graphite metric paths (PREFIX.HOST.PHASE)' -r
complete -c prun -n "__fish_prun_using_subcommand sessions" -l report-format -d 'Format of --report when its extension does not say' -r -f -a "json\t''
csv\t''"
complete -c prun -n "__fish_prun_using_subcommand sessions" -l progress -d 'Progress bar on stderr: auto shows it when stderr is a terminal' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_using_subcommand sessions" -l color -d 'Colour host names: auto colours when stdout is a terminal and NO_COLOR is unset' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_using_subcommand sessions" -s A -l forward-agent -d 'Forward the local ssh-agent (SSH_AUTH_SOCK) to every host\'s command, as ssh -A does, except where ssh_config says ForwardAgent no'
complete -c prun -n "__fish_prun_using_subcommand sessions" -l fail-fast -d 'The same as --max-fail 0: start no more hosts after the first one that does not succeed'
complete -c prun -n "__fish_prun_using_subcommand sessions" -s y -l yes -d 'Do not ask after the canary: go on when every canary host succeeded, stop (exit 6) when one did not'
complete -c prun -n "__fish_prun_using_subcommand sessions" -l dry-run -d 'Print what each host would run (host, batch, the command or transfer after {name} substitution; tab-separated) and connect to nothing'
complete -c prun -n "__fish_prun_using_subcommand sessions" -l literal -d 'Take the command, --env values and transfer paths as written: no {name} substitution'
complete -c prun -n "__fish_prun_using_subcommand sessions" -s q -l quiet -d 'Print nothing but errors and warnings: no remote output, progress or summary (the exit status still tells what happened)'
complete -c prun -n "__fish_prun_using_subcommand sessions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c prun -n "__fish_prun_using_subcommand completions" -s i -l inventory -d 'Inventory: an Ansible YAML, INI or JSON file, a plain host list, a directory of them, an executable dynamic inventory (run with --list), or - for stdin (repeatable: all merge into one inventory)' -r -F
complete -c prun -n "__fish_prun_using_subcommand completions" -l playbook-dir -d 'Also read DIR/group_vars/ and DIR/host_vars/ (they win over those beside the inventories), as ansible-playbook does with the playbook\'s directory' -r -F
complete -c prun -n "__fish_prun_using_subcommand completions" -l inventory-timeout -d 'Deadline for a dynamic inventory program to print its inventory' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -s H -l hosts -d 'Hosts to run on, comma separated, [user@]host[:port], with ranges: web[01-10], db-[a:c], node[1-3,7] (repeatable)' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -s l -l limit -d 'Select hosts by pattern: web:db, web:!web03, web:&prod, web*, ~regex, @FILE' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -s u -l user -d 'Remote user for every host (default: the inventory\'s user, else the local user)' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l port -d 'SSH port for every host (default: the inventory\'s port, else 22)' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l identity -d 'Private key file to try first (repeatable)' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l host-key-check -d 'Host key policy: strict refuses unknown hosts, accept-new records them, off checks nothing [default: ssh_config\'s StrictHostKeyChecking, else strict]' -r -f -a "strict\t''
accept-new\t''
off\t''"
complete -c prun -n "__fish_prun_using_subcommand completions" -s F -l ssh-config -d 'OpenSSH client configuration to read instead of ~/.ssh/config and /etc/ssh/ssh_config; `none` reads none' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -s o -l option -d 'An ssh_config option for every host, as ssh -o takes it: Key=Value or "Key Value" (repeatable; beats the inventory and ssh_config, not -u/--port/-J…): HostName, User, Port, IdentityFile, IdentitiesOnly, CertificateFile, ProxyJump, ProxyCommand, ForwardAgent, ConnectTimeout, UserKnownHostsFile, StrictHostKeyChecking, HostKeyAlias' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -s J -l jump -d 'Reach every host through this bastion, [user@]host[:port] (like ssh -J; `none` disables the inventory\'s and ssh_config\'s jump hosts)' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l known-hosts -d 'known_hosts file to use instead of ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts (repeatable; accept-new writes to the first)' -r -F
complete -c prun -n "__fish_prun_using_subcommand completions" -s p -l parallel -d 'How many hosts run at once' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l connect-timeout -d 'Deadline for DNS and the TCP connect, then how long the server may stay silent during the handshake, host key check and auth (the whole login at most 3 times it) (e.g. 10s, 500ms, 1m) [default: ssh_config\'s ConnectTimeout, else 10s]' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -s t -l timeout -d 'Deadline for the command on each host, from the exec request (default: none)' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l keepalive -d 'While a command runs, ask the server for a reply this often when nothing arrives; a host whose server sends nothing for 3 intervals fails ("server stopped answering"). libssh2 sends keepalives at most every 2 s' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l persist -d 'Keep each host\'s login in a holder process until it has been idle this long, and run this and later commands (with --persist too) over the held logins' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l retries -d 'Extra attempts for hosts that fail before the command could have started (refused, no banner, reset, timeout before auth); backoff doubles from 200 ms, with jitter' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l batch -d 'Run the hosts in batches: N hosts, N% of them, or a list that steps up with its last size repeating (1,5,25%); a batch starts once the previous one has finished' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l order -d 'The order hosts start in (and are batched and numbered in)' -r -f -a "inventory\t'As the inventory lists them'
reverse\t'The inventory\'s order backwards'
sorted\t'By name, digit runs as numbers (web2 before web10)'
reverse-sorted\t'By name, backwards'
shuffle\t'A random order, new each run'"
complete -c prun -n "__fish_prun_using_subcommand completions" -l max-fail -d 'Start no more hosts once more than N hosts (or N% of them) have failed; running hosts finish, the rest are reported as skipped, exit status 6' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l canary -d 'Run N hosts first, show how they did, and ask on the terminal before the rest' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l pause -d 'Wait this long between batches, or `ask` to ask on the terminal before each next batch' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l stagger -d 'Wait this long between starting one host and the next (spreads the key exchanges)' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l engine -d 'How hosts share threads: events (one event loop per core, each running many sessions; --parallel counts sessions) or threads (one thread per running host). prun bench takes a list (threads,events) and measures each' -r -f -a "threads\t''
events\t''"
complete -c prun -n "__fish_prun_using_subcommand completions" -l failed-hosts -d 'Write the names of the hosts that did not succeed to FILE, one per line, to re-run them with -l @FILE' -r -F
complete -c prun -n "__fish_prun_using_subcommand completions" -l report -d 'Write the per-host timing report to FILE: JSON or CSV by the file\'s extension (.json, .csv) or --report-format; written at the end, also after Ctrl-C' -r -F
complete -c prun -n "__fish_prun_using_subcommand completions" -l metrics -d 'Send every host\'s phase timings, when the run ends, to InfluxDB 1.x (influx[+https]://HOST:PORT/DB), InfluxDB 2.x (influx2[+https]://HOST:PORT/ORG/BUCKET, token in PRUN_INFLUX_TOKEN), Graphite (graphite://HOST:PORT) or a line-protocol file (file:PATH) (repeatable; a sink that fails costs a warning, not the run)' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l metrics-prefix -d 'The first segments of Graphite metric paths (PREFIX.HOST.PHASE)' -r
complete -c prun -n "__fish_prun_using_subcommand completions" -l report-format -d 'Format of --report when its extension does not say' -r -f -a "json\t''
csv\t''"
complete -c prun -n "__fish_prun_using_subcommand completions" -l progress -d 'Progress bar on stderr: auto shows it when stderr is a terminal' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_using_subcommand completions" -l color -d 'Colour host names: auto colours when stdout is a terminal and NO_COLOR is unset' -r -f -a "auto\t''
always\t''
never\t''"
complete -c prun -n "__fish_prun_using_subcommand completions" -s A -l forward-agent -d 'Forward the local ssh-agent (SSH_AUTH_SOCK) to every host\'s command, as ssh -A does, except where ssh_config says ForwardAgent no'
complete -c prun -n "__fish_prun_using_subcommand completions" -l fail-fast -d 'The same as --max-fail 0: start no more hosts after the first one that does not succeed'
complete -c prun -n "__fish_prun_using_subcommand completions" -s y -l yes -d 'Do not ask after the canary: go on when every canary host succeeded, stop (exit 6) when one did not'
complete -c prun -n "__fish_prun_using_subcommand completions" -l dry-run -d 'Print what each host would run (host, batch, the command or transfer after {name} substitution; tab-separated) and connect to nothing'
complete -c prun -n "__fish_prun_using_subcommand completions" -l literal -d 'Take the command, --env values and transfer paths as written: no {name} substitution'
complete -c prun -n "__fish_prun_using_subcommand completions" -s q -l quiet -d 'Print nothing but errors and warnings: no remote output, progress or summary (the exit status still tells what happened)'
complete -c prun -n "__fish_prun_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c prun -n "__fish_prun_using_subcommand help; and not __fish_seen_subcommand_from bench push pull shell sessions completions help" -f -a "bench" -d 'Reproduce the 2017 study: time each SSH operation at increasing concurrency'
complete -c prun -n "__fish_prun_using_subcommand help; and not __fish_seen_subcommand_from bench push pull shell sessions completions help" -f -a "push" -d 'Copy local files to every selected host over SFTP'
complete -c prun -n "__fish_prun_using_subcommand help; and not __fish_seen_subcommand_from bench push pull shell sessions completions help" -f -a "pull" -d 'Copy a file or directory from every selected host into LOCAL_DIR/<host>/ over SFTP'
complete -c prun -n "__fish_prun_using_subcommand help; and not __fish_seen_subcommand_from bench push pull shell sessions completions help" -f -a "shell" -d 'An interactive prompt that runs each line on the selected hosts over held logins'
complete -c prun -n "__fish_prun_using_subcommand help; and not __fish_seen_subcommand_from bench push pull shell sessions completions help" -f -a "sessions" -d 'List the logins a --persist holder keeps, or close them (--stop)'
complete -c prun -n "__fish_prun_using_subcommand help; and not __fish_seen_subcommand_from bench push pull shell sessions completions help" -f -a "completions" -d 'Print a shell completion script (bash, zsh or fish) to stdout'
complete -c prun -n "__fish_prun_using_subcommand help; and not __fish_seen_subcommand_from bench push pull shell sessions completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
