#!/usr/bin/env bats
# SIGUSR2: the binary at edge's path starts on the same listening sockets;
# the old process stops accepting once the new one is ready and relays
# what it has until the end.  Nobody is refused, nothing is cut.

load helpers

# echo_up PORT: an upstream that echoes every connection.
echo_up() {
	spawn socat "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr,fork" EXEC:cat
	wait_listen "$1"
}

# new_pid: the pid of the process the last upgrade started.
new_pid() {
	sed -n 's/^edge: upgrade started pid=\([0-9]*\) .*/\1/p' \
		"$BATS_TEST_TMPDIR/edge.log" | tail -n 1
}

# own_edge: a copy of edge at a path of the test's own (the upgrade runs
# whatever is at that path then); EDGE points at it.
own_edge() {
	mkdir -p bin
	cp "$EDGE" bin/edge
	REAL_EDGE=$EDGE
	EDGE=$BATS_TEST_TMPDIR/bin/edge
}

@test "upgrade under load: no refused or reset client, an 8 MiB transfer and an idle connection finish on the old process, which then exits 0" {
	e=$(free_port) s=$(free_port)
	echo_up "$e"
	head -c 8388608 /dev/urandom > sent
	sink "$s" got
	conf "echo.listen = 127.0.0.1:0
echo.upstream = 127.0.0.1:$e
bulk.listen = 127.0.0.1:0
bulk.upstream = 127.0.0.1:$s"
	start_edge edge.conf
	old=$EDGE_PID ep=$(edge_port echo) bp=$(edge_port bulk)
	# A client every few milliseconds, through the whole upgrade.
	spawn bash -c "python3 '$T/lib/pinger.py' $ep stop > pings"
	pinger=$SPAWNED
	# 8 MiB in 100 KB pieces, 20 ms apart (about 2 s), spanning it.
	spawn bash -c "for i in \$(seq 0 83); do
		dd if=sent bs=100000 skip=\$i count=1 2>/dev/null; sleep 0.02
	done | socat -u - TCP:127.0.0.1:$bp"
	wait_for 10 test -s got
	# An idle connection: it says nothing until after the upgrade.
	mkfifo idle.in
	spawn bash -c "socat - TCP:127.0.0.1:$ep < idle.in > idle.out"
	exec 5> idle.in
	wait_for 10 bash -c "[ \$(ss -Htn state established '( sport = :$ep )' | wc -l) -ge 1 ]"
	sleep 0.3
	kill -USR2 "$old"
	wait_log '^edge: upgrade ok: pid=[0-9]+ serves now; conns=[0-9]+ finish here within 1800000ms$'
	new=$(new_pid)
	grep -q "^edge: start .* pid=$new (upgrade)$" edge.log
	sleep 0.5
	# The new process serves new clients; the old one still runs.
	greet "$ep" | grep -qx 'x'
	kill -0 "$old"
	touch stop
	wait_gone "$pinger" 100
	cat pings
	read -r _ ok _ failed < pings
	[ "$failed" -eq 0 ]
	[ "$ok" -gt 50 ]
	# The transfer ends, byte for byte, through the old process.
	sunk got
	cmp sent got
	# The idle connection still works, and it is the last one: with it
	# closed, the old process exits 0.
	echo "after" >&5
	wait_for 10 grep -qx after idle.out
	exec 5>&-
	rc=0
	wait "$old" || rc=$?
	[ "$rc" -eq 0 ]
	grep -q '^edge: stopped closed=0 (handed over)$' edge.log
	! grep -q 'why=upgrade' edge.log
	kill -0 "$new"
	greet "$ep" | grep -qx 'x'
}

@test "upgrade: a new binary that fails its config leaves the old one serving everything" {
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	port=$(edge_port smtp)
	printf 'smtp.proxy = v9\n' >> edge.conf
	kill -USR2 "$EDGE_PID"
	wait_log '^edge: upgrade failed: pid=[0-9]+ exited status=2 before it was ready; still serving everything here$'
	grep -q '^edge: edge.conf:3: smtp.proxy: "v9" is not one of' edge.log
	greet "$port" | grep -q '220 one'
	# Fixed, the next upgrade goes through.
	sed -i '$d' edge.conf
	kill -USR2 "$EDGE_PID"
	wait_log '^edge: upgrade ok: pid='
	greet "$port" | grep -q '220 one'
}

@test "upgrade: the binary now at edge's path runs; a second SIGUSR2 while it starts is ignored" {
	own_edge
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	port=$(edge_port smtp)
	# The new "release" at the same path: slow to start, then the binary.
	rm bin/edge
	printf '#!/bin/sh\necho started >> %s/upgraded\nsleep 1\nexec %s "$@"\n' \
		"$BATS_TEST_TMPDIR" "$REAL_EDGE" > bin/edge
	chmod +x bin/edge
	kill -USR2 "$EDGE_PID"
	wait_log '^edge: upgrade started pid=[0-9]+ exe=.*/bin/edge$'
	kill -USR2 "$EDGE_PID"
	wait_log '^edge: upgrade ignored: an upgrade is under way \(pid=[0-9]+\)$'
	greet "$port" | grep -q '220 one'
	wait_log '^edge: upgrade ok: pid='
	[ "$(wc -l < upgraded)" -eq 1 ]
	[ "$(grep -c '^edge: upgrade started' edge.log)" -eq 1 ]
	# The old one had no connection: it is gone; a third SIGUSR2 goes to
	# the new one, which can upgrade in turn.
	wait_gone "$EDGE_PID" 50
	new=$(new_pid)
	greet "$port" | grep -q '220 one'
	kill -USR2 "$new"
	wait_for 10 bash -c "[ \$(grep -c '^edge: upgrade ok' edge.log) -eq 2 ]"
	greet "$port" | grep -q '220 one'
}

@test "upgrade_timeout: the old process closes what is left (why=upgrade) and exits 0" {
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "upgrade_timeout = 1s
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	port=$(edge_port smtp)
	spawn socat -u "TCP:127.0.0.1:$port" CREATE:held
	wait_for 10 grep -q '220 one' held
	kill -USR2 "$EDGE_PID"
	wait_log '^edge: upgrade ok: pid=[0-9]+ serves now; conns=1 finish here within 1000ms$'
	rc=0
	wait "$EDGE_PID" || rc=$?
	[ "$rc" -eq 0 ]
	close_lines | grep -q 'why=upgrade$'
	grep -q '^edge: stopped closed=1 (handed over)$' edge.log
	greet "$port" | grep -q '220 one'
}

@test "upgrade under systemd: the new process says MAINPID= and READY=1; the old one says MAINPID= and no STOPPING=1" {
	spawn python3 "$T/lib/notifysock.py" "$BATS_TEST_TMPDIR/notify.sock" \
		"$BATS_TEST_TMPDIR/notes"
	wait_for 10 test -S notify.sock
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	NOTIFY_SOCKET=$BATS_TEST_TMPDIR/notify.sock start_edge edge.conf
	wait_log '^READY=1$' notes
	kill -USR2 "$EDGE_PID"
	wait_log '^edge: upgrade ok: pid='
	new=$(new_pid)
	wait_log "^MAINPID=$new\\|READY=1$" notes
	wait_log "^MAINPID=$new$" notes
	wait_gone "$EDGE_PID" 50
	! grep -q '^STOPPING=1' notes
}

@test "upgrade when edge is PID 1 (a container): refused, it serves on" {
	command -v unshare > /dev/null || skip "needs unshare"
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf unshare --pid --fork
	kill -USR2 "$EDGE_PID"
	wait_log '^edge: upgrade ignored: edge is PID 1 \(a container.s init\): there the upgrade is a new image$'
	greet "$(edge_port smtp)" | grep -q '220 one'
	! grep -q '^edge: upgrade started' edge.log
}
