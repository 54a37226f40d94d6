# Shared by every test file: start edge and its peers on free loopback
# ports, wait for them by their own signs of life (a log line, a listening
# socket), never by a fixed sleep, and stop everything in teardown, which
# bats runs even when a test fails.  Failed tests print edge's log.

bats_require_minimum_version 1.5.0

EDGE=${EDGE:-$BATS_TEST_DIRNAME/../edge}
T=$BATS_TEST_DIRNAME

setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
	: > pids
}

teardown() {
	local p
	# Process groups first (setsid), so forked children go too.
	while read -r p; do
		kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null
	done < "$BATS_TEST_TMPDIR/pids"
	while read -r p; do
		wait_gone "$p" 50 || kill -KILL -- "-$p" 2>/dev/null ||
			kill -KILL "$p" 2>/dev/null
	done < "$BATS_TEST_TMPDIR/pids"
	[ -n "${NETNS:-}" ] && ip netns del "$NETNS" 2>/dev/null
	[ -n "${NETNS:-}" ] && rm -rf "/etc/netns/$NETNS"
	if [ -s "$BATS_TEST_TMPDIR/edge.log" ]; then
		echo "--- edge.log"
		cat "$BATS_TEST_TMPDIR/edge.log"
	fi
	return 0
}

# wait_gone PID TENTHS: wait until PID has exited.
wait_gone() {
	local i
	for ((i = 0; i < $2; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# spawn CMD...: run CMD in its own session in the background; teardown
# kills its whole process group.  Sets SPAWNED to its pid.
spawn() {
	setsid "$@" < /dev/null 3>&- &
	SPAWNED=$!
	echo "$SPAWNED" >> "$BATS_TEST_TMPDIR/pids"
}

# free_port: print a TCP port that nothing on loopback listens on now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for SECONDS CMD...: retry CMD every 50 ms until it succeeds.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.05
	done
}

listening() {
	ss -Hltn "sport = :$1" | grep -q LISTEN
}

# wait_listen PORT: wait until something listens on PORT.
wait_listen() {
	wait_for 10 listening "$1" || { echo "nothing listens on $1" >&2; return 1; }
}

# wait_log PATTERN [FILE] [SECONDS]: wait for an extended regex in a log.
wait_log() {
	wait_for "${3:-10}" grep -Eq -- "$1" "${2:-$BATS_TEST_TMPDIR/edge.log}" ||
		{ echo "no line matching '$1' in ${2:-edge.log}" >&2; return 1; }
}

# start_edge CONF [WRAPPER...]: start edge on CONF, wait until it serves.
# A wrapper (e.g. unshare with a bind-mounted /etc/hosts) runs edge.
start_edge() {
	local conf=$1
	shift
	spawn "$@" "$EDGE" -c "$conf" 2>> "$BATS_TEST_TMPDIR/edge.log"
	EDGE_PID=$SPAWNED
	wait_log '^edge: start ' || return 1
	# With a wrapper, the edge process is a child of the spawned one.
	EDGE_PID=$(pgrep -s "$SPAWNED" -x edge | head -n 1)
}

# edge_port NAME: the port listener NAME got (listen = ADDR:0).
edge_port() {
	sed -n "s/^edge: listening $1 on .*:\([0-9]*\)\( (v4+v6)\)\{0,1\} -> .*/\1/p" \
		"$BATS_TEST_TMPDIR/edge.log" | tail -n 1
}

# writes FILE: the process spawned last writes FILE (see sunk).
writes() {
	echo "$SPAWNED" > "$BATS_TEST_TMPDIR/$1.pid"
}

# sunk FILE...: wait until each FILE's writer has exited, so that FILE is
# complete.  A log line from edge only says edge has passed the bytes on.
sunk() {
	local f
	for f in "$@"; do
		wait_gone "$(cat "$BATS_TEST_TMPDIR/$f.pid")" 100 ||
			{ echo "the writer of $f is still running" >&2; return 1; }
	done
}

# sink PORT FILE [ADDR]: accept one connection, write what arrives to FILE.
sink() {
	spawn socat -u "TCP-LISTEN:$1,bind=${3:-127.0.0.1},reuseaddr" \
		"CREATE:$2"
	writes "$2"
	wait_listen "$1"
}

# source PORT FILE: accept one connection, send FILE, close.
source_file() {
	spawn socat -u "OPEN:$2" "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr"
	wait_listen "$1"
}

# banner PORT TEXT [ADDR]: for each connection, send TEXT, then echo.
banner() {
	spawn socat "TCP-LISTEN:$1,bind=${3:-127.0.0.1},reuseaddr,fork" \
		"SYSTEM:echo '$2'; exec cat"
	wait_listen "$1"
}

# greet PORT [BIND]: connect, send a line, print what came back.
greet() {
	printf 'x\n' | timeout 10 socat -t 5 - "TCP:127.0.0.1:$1${2:+,bind=$2}" 2>/dev/null
}

# conf TEXT: write edge.conf in the test directory.
conf() {
	printf '%s\n' "$1" > "$BATS_TEST_TMPDIR/edge.conf"
}

# close_lines: edge's per-connection log lines.
close_lines() {
	grep '^edge: close ' "$BATS_TEST_TMPDIR/edge.log"
}

# cpu_ticks PID: user + system CPU time of PID in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# hap_reader PORT LOG FORMAT [BACKEND]: HAProxy reading PROXY
# (accept-proxy) on 127.0.0.1:PORT, writing one line per connection in
# FORMAT (a log-format) to LOG, in front of 127.0.0.1:BACKEND, or of a sink
# that discards what it gets.
hap_reader() {
	command -v haproxy > /dev/null || skip "haproxy is not installed"
	local back=${4:-}
	if [ -z "$back" ]; then
		back=$(free_port)
		spawn socat -u "TCP-LISTEN:$back,bind=127.0.0.1,reuseaddr,fork" \
			OPEN:/dev/null
		wait_listen "$back"
	fi
	cat > "$BATS_TEST_TMPDIR/hap-reader.cfg" <<-EOF2
		global
		  log stdout format raw local0
		defaults
		  mode tcp
		  log global
		  timeout connect 5s
		  timeout client 10s
		  timeout server 10s
		frontend f
		  bind 127.0.0.1:$1 accept-proxy
		  log-format "$3"
		  default_backend b
		backend b
		  server s 127.0.0.1:$back
	EOF2
	spawn sh -c "exec haproxy -db -f '$BATS_TEST_TMPDIR/hap-reader.cfg' > '$2' 2>&1"
	wait_listen "$1"
}

need_root() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (unshare, ip netns)"
}
