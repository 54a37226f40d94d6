#!/usr/bin/env bats
# systemd, spoken to with its own protocols and tools: the notify socket
# (a datagram listener of the test's own stands in for PID 1), the unit's
# ExecReload command, and socket activation by systemd-socket-activate.

load helpers

REPO=$BATS_TEST_DIRNAME/..

# notify_sock: listen where NOTIFY_SOCKET will point; datagrams go to notes.
notify_sock() {
	spawn python3 "$T/lib/notifysock.py" "$BATS_TEST_TMPDIR/notify.sock" \
		"$BATS_TEST_TMPDIR/notes"
	wait_for 10 test -S "$BATS_TEST_TMPDIR/notify.sock"
	: > "$BATS_TEST_TMPDIR/notes"
}

# note PATTERN: wait for a datagram matching an extended regex.
note() {
	wait_log "$1" "$BATS_TEST_TMPDIR/notes"
}

# exec_reload PID: the unit's ExecReload= line, run as systemd would, with
# this build's edge and PID as $MAINPID.
exec_reload() {
	local cmd
	cmd=$(sed -n 's/^ExecReload=//p' "$REPO/edge.service")
	cmd=${cmd//\/usr\/local\/bin\/edge/$EDGE}
	cmd=${cmd//\$MAINPID/$1}
	eval "$cmd"
}

need_activate() {
	command -v systemd-socket-activate > /dev/null ||
		skip "needs systemd-socket-activate (apt-get install systemd)"
}

# activate PORT ARGS...: systemd-socket-activate ARGS... holds the sockets
# and runs edge on edge.conf when the first client comes; wait until PORT
# listens.
activate() {
	local port=$1
	shift
	spawn systemd-socket-activate "$@" "$EDGE" -c edge.conf 2>> edge.log
	wait_listen "$port"
}

@test "notify: READY=1 once listening, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around each reload, STOPPING=1 at drain" {
	notify_sock
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	NOTIFY_SOCKET=$BATS_TEST_TMPDIR/notify.sock start_edge edge.conf
	note '^READY=1$'
	note '^STATUS=serving listeners=1 conns=0 last_reload=none$'
	# READY=1 comes after the listener is bound: a client is served.
	greet "$(edge_port smtp)" | grep -q '220 one'
	kill -HUP "$EDGE_PID"
	note '^RELOADING=1\|MONOTONIC_USEC=[0-9]+\|STATUS=reloading$'
	note 'last_reload=ok$'
	echo 'garbage' >> edge.conf
	kill -HUP "$EDGE_PID"
	note 'last_reload=failed$'
	# Each RELOADING=1 is followed by a READY=1, also for a refused config.
	[ "$(grep -c '^RELOADING=1' notes)" -eq 2 ]
	[ "$(sed -n '/^RELOADING=1/,$p' notes | grep -c '^READY=1$')" -eq 2 ]
	kill -TERM "$EDGE_PID"
	note '^STOPPING=1$'
	rc=0
	wait "$EDGE_PID" || rc=$?
	[ "$rc" -eq 0 ]
	# Nothing is said after STOPPING=1 but the status.
	! sed -n '/^STOPPING=1$/,$p' notes | grep -q '^READY=1'
}

@test "the unit's ExecReload: exit 1 with the reason on a refused config, 0 once the new one is live" {
	b1=$(free_port) p2=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	# A broken config: non-zero, edge's own message, the old one serves.
	printf 'smtp.prefer = ipv5\n' >> edge.conf
	run exec_reload "$EDGE_PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *'failed: edge.conf:3: smtp.prefer: "ipv5" is not one of'* ]]
	greet "$(edge_port smtp)" | grep -q '220 one'
	# A good one adds a listener: once the command returns, it listens.
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1
sub.listen = 127.0.0.1:$p2
sub.upstream = 127.0.0.1:$b1"
	run exec_reload "$EDGE_PID"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == 'edge reload: ok listeners=2 conns=0' ]]
	listening "$p2"
	greet "$p2" | grep -q '220 one'
	# No edge at that pid: a clear failure, at once.
	run "$EDGE" reload 999999999
	[ "$status" -eq 1 ]
	[[ "$output" == *'pid 999999999: No such process'* ]]
	run "$EDGE" reload nonsense
	[ "$status" -eq 2 ]
}

@test "edge reload during a drain: refused with the reason" {
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "drain_timeout = 30s
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	spawn socat -u "TCP:127.0.0.1:$(edge_port smtp)" CREATE:held
	wait_for 10 grep -q 220 held
	kill -TERM "$EDGE_PID"
	wait_log '^edge: drain signal=TERM conns=1'
	run "$EDGE" reload "$EDGE_PID"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == 'edge reload: failed: draining' ]]
}

@test "socket activation: edge takes the sockets systemd-socket-activate holds; the client that woke it is served" {
	need_activate
	b1=$(free_port) p1=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = 127.0.0.1:$p1
smtp.upstream = 127.0.0.1:$b1
other.listen = 127.0.0.1:0
other.upstream = 127.0.0.1:$b1"
	# edge starts only when the first client arrives: that client waits in
	# the backlog of the socket edge inherits, and is served.
	activate "$p1" -l "127.0.0.1:$p1"
	! grep -q '^edge: start' edge.log
	greet "$p1" | grep -q '220 one'
	grep -q "^edge: inherited fd=3 from=systemd for smtp$" edge.log
	# The listener systemd did not pass is bound as usual.
	wait_log '^edge: listening other on 127.0.0.1:[0-9]+ '
	greet "$(edge_port other)" | grep -q '220 one'
	pid=$(pgrep -s "$SPAWNED" -x edge)
	# The variables are gone from edge's environment (its children's too).
	! tr '\0' '\n' < "/proc/$pid/environ" | grep -q '^LISTEN_'
	# The same socket serves across a reload.
	kill -HUP "$pid"
	wait_log '^edge: reload ok'
	greet "$p1" | grep -q '220 one'
}

@test "socket activation: an inherited socket that no listener has is an error naming it (exit 2)" {
	need_activate
	b1=$(free_port) p1=$(free_port) p2=$(free_port)
	conf "smtp.listen = 127.0.0.1:$p1
smtp.upstream = 127.0.0.1:$b1"
	activate "$p2" -l "127.0.0.1:$p1" -l "127.0.0.1:$p2" --fdname=smtp:stray
	# Waking it: edge refuses to start with the name of the odd socket.
	timeout 5 socat -T 2 - "TCP:127.0.0.1:$p1" < /dev/null 2>/dev/null || true
	wait_log "^edge: LISTEN_FDS: fd 4 on 127.0.0.1:$p2 name=stray matches no listener and not status.listen$"
	! grep -q '^edge: start' edge.log
	# Exit 2, as for any config error (systemd-socket-activate has exec'd
	# edge: the spawned pid is edge's).
	rc=0
	wait "$SPAWNED" || rc=$?
	[ "$rc" -eq 2 ]
}

@test "socket activation: ListenStream=PORT ([::]:PORT taking IPv4 too) is the socket of a ':PORT' listener" {
	need_activate
	b1=$(free_port) p1=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = :$p1
smtp.upstream = 127.0.0.1:$b1"
	activate "$p1" -l "$p1"
	# An IPv4 client on the dual-stack socket wakes edge and is served.
	greet "$p1" | grep -q '220 one'
	grep -q '^edge: inherited fd=3 from=systemd for smtp$' edge.log
	grep -Eq "^edge: listening smtp on \[::\]:$p1 \(v4\+v6\) -> " edge.log
	close_lines | grep -q ' c=127.0.0.1:'
}

@test "socket activation: a reload that drops the listener of a systemd socket says that systemd still listens there" {
	need_activate
	b1=$(free_port) p1=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = 127.0.0.1:$p1
smtp.upstream = 127.0.0.1:$b1
other.listen = 127.0.0.1:0
other.upstream = 127.0.0.1:$b1"
	activate "$p1" -l "127.0.0.1:$p1"
	greet "$p1" | grep -q '220 one'
	wait_log '^edge: start '
	pid=$(pgrep -s "$SPAWNED" -x edge)
	# Dropping a listener edge bound itself: no such line.
	conf "smtp.listen = 127.0.0.1:$p1
smtp.upstream = 127.0.0.1:$b1"
	kill -HUP "$pid"
	wait_log '^edge: reload ok'
	! grep -q 'came from systemd' edge.log
	conf "other.listen = 127.0.0.1:0
other.upstream = 127.0.0.1:$b1"
	kill -HUP "$pid"
	wait_for 10 bash -c "[ \$(grep -c '^edge: reload ok' edge.log) -eq 2 ]"
	grep -q "^edge: reload: smtp's socket on 127.0.0.1:$p1 came from systemd, which still listens there with nobody to accept: remove it from the socket unit too$" edge.log
}

@test "socket activation through upgrades: the new process still knows systemd's sockets (a config dropping one, a reload dropping one)" {
	need_activate
	b1=$(free_port) p1=$(free_port) p2=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = 127.0.0.1:$p1
smtp.upstream = 127.0.0.1:$b1
web.listen = 127.0.0.1:$p2
web.upstream = 127.0.0.1:$b1"
	activate "$p1" -l "127.0.0.1:$p1" -l "127.0.0.1:$p2"
	greet "$p1" | grep -q '220 one'
	wait_log '^edge: start '
	pid=$(pgrep -s "$SPAWNED" -x edge)
	# An upgrade on the same config: both sockets go to the new process.
	kill -USR2 "$pid"
	wait_log '^edge: upgrade ok: pid=[0-9]+ '
	new=$(sed -n 's/^edge: upgrade ok: pid=\([0-9]*\) .*/\1/p' edge.log)
	wait_log "^edge: inherited fd=[0-9]+ from=upgrade for web$"
	greet "$p2" | grep -q '220 one'
	# The next upgrade's config has no web: the new process closes that
	# socket and says systemd still listens there.
	conf "smtp.listen = 127.0.0.1:$p1
smtp.upstream = 127.0.0.1:$b1"
	kill -USR2 "$new"
	wait_for 10 bash -c "[ \$(grep -c '^edge: upgrade ok' edge.log) -eq 2 ]"
	grep -Eq "^edge: inherited fd=[0-9]+ on 127.0.0.1:$p2: no listener of this config has that address; closed; it came from systemd, which still listens there with nobody to accept: remove it from the socket unit too$" edge.log
	new=$(sed -n 's/^edge: upgrade ok: pid=\([0-9]*\) .*/\1/p' edge.log | tail -n 1)
	greet "$p1" | grep -q '220 one'
	# A reload of the upgraded process that drops smtp: the same warning.
	conf "other.listen = 127.0.0.1:0
other.upstream = 127.0.0.1:$b1"
	kill -HUP "$new"
	wait_log '^edge: reload ok'
	grep -q "^edge: reload: smtp's socket on 127.0.0.1:$p1 came from systemd, which still listens there with nobody to accept: remove it from the socket unit too$" edge.log
	kill "$new"
	wait_gone "$new" 100
}
