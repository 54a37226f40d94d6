#!/usr/bin/env bats
# Limits an operator relies on on the open internet: max_conns, connect
# and idle timeouts, and the open-file limit, which must neither crash nor
# spin edge.

load helpers

banner_conf() {
	conf "max_conns = $2
idle_timeout = ${3:-30m}
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$1"
}

# hold N: open client N, which only reads, into file outN.
hold() {
	spawn socat -u "TCP:127.0.0.1:$(edge_port smtp)" "CREATE:out$1"
	eval "HOLD$1=$SPAWNED"
}

has_banner() {
	grep -q '^220 hi$' "out$1" 2>/dev/null
}

@test "max_conns holds: the next client waits in the backlog, then is served" {
	up=$(free_port)
	banner "$up" "220 hi"
	banner_conf "$up" 2
	start_edge edge.conf
	hold 1; wait_for 10 has_banner 1
	hold 2; wait_for 10 has_banner 2
	hold 3
	sleep 0.5
	# Not accepted: no banner, and edge logged nothing about it.
	! has_banner 3
	[ "$(grep -c '^edge: close' edge.log)" -eq 0 ]
	kill -TERM -- "-$HOLD1"
	wait_for 10 has_banner 3
	wait_log 'why=eof'
}

@test "an upstream that never answers is given up after connect_timeout" {
	up=$(free_port)
	spawn python3 "$T/lib/blackhole.py" "$up"
	wait_listen "$up"
	conf "connect_timeout = 300ms
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$up"
	start_edge edge.conf
	run timeout 10 socat -u "TCP:127.0.0.1:$(edge_port smtp)" STDOUT
	[ "$output" = "" ]
	wait_log "u=127.0.0.1:$up up=0 down=0 t=[0-9.]+s why=connect_failed err=\"Connection timed out\"$"
}

@test "a silent connection is closed at idle_timeout" {
	up=$(free_port)
	banner "$up" "220 hi"
	banner_conf "$up" 10 1s
	start_edge edge.conf
	run timeout 10 socat -u "TCP:127.0.0.1:$(edge_port smtp)" STDOUT
	[ "$output" = "220 hi" ]
	wait_log 'up=0 down=7 t=1\.[0-9]+s why=idle$'
}

@test "a low open-file limit lowers max_conns; the rest wait, then are served" {
	up=$(free_port)
	banner "$up" "220 hi"
	banner_conf "$up" 100
	start_edge edge.conf prlimit --nofile=64:64
	grep -q 'warning: max_conns=100 lowered to 12 by the open-file limit of 64' edge.log
	for i in $(seq 1 14); do hold "$i"; done
	wait_for 10 has_banner 12
	sleep 0.5
	served=0
	for i in $(seq 1 14); do has_banner "$i" && served=$((served + 1)); done
	[ "$served" -eq 12 ]
	for i in $(seq 1 4); do kill -TERM -- "-$(eval echo \$HOLD$i)"; done
	wait_for 10 has_banner 13
	wait_for 10 has_banner 14
}

# Lower the open-file limit under the running process to what it holds
# now plus $1: accept() or the upstream socket() meets EMFILE, which the
# start-up cap did not plan for.  Either way: one "paused" line, no busy
# loop, no crash, and service resumes once descriptors are back.
# The limit under which the edge process has exactly $1 descriptor numbers
# free: a new descriptor takes the lowest free number and fails when that is
# at or above the limit, and inherited descriptors leave gaps.
limit_for_free() {
	n=0 free=0
	while :; do
		[ -e "/proc/$EDGE_PID/fd/$n" ] || free=$((free + 1))
		n=$((n + 1))
		[ "$free" -lt "$1" ] || break
	done
	echo "$n"
}

fd_exhaustion() {
	up=$(free_port)
	banner "$up" "220 hi"
	banner_conf "$up" 100
	start_edge edge.conf
	hard=$(ulimit -Hn)
	prlimit --pid "$EDGE_PID" --nofile="$(limit_for_free "$1"):$hard"
	for i in $(seq 1 8); do hold "$i"; done
	wait_log '^edge: accept l=smtp paused=250ms conns=[0-9]+ err="Too many open files"$'
	t0=$(cpu_ticks "$EDGE_PID")
	sleep 2
	t1=$(cpu_ticks "$EDGE_PID")
	# A busy loop would burn ~200 ticks in 2 s; backing off burns ~0.
	[ $((t1 - t0)) -lt 40 ]
	kill -0 "$EDGE_PID"
	# One line per episode, not one per retry.
	[ "$(grep -c 'paused=' edge.log)" -eq 1 ]
	for i in $(seq 1 8); do kill -TERM -- "-$(eval echo \$HOLD$i)" 2>/dev/null || true; done
	prlimit --pid "$EDGE_PID" --nofile="1024:$hard"
	# The upstream echoes; the client's EOF ends the exchange.
	run bash -c "printf 'x\n' | timeout 20 socat -t 10 - TCP:127.0.0.1:$(edge_port smtp)"
	[ "$output" = "$(printf '220 hi\nx')" ]
	grep -q '^edge: accept l=smtp resumed' edge.log
}

@test "fd exhaustion at accept(): no crash, no busy loop, and recovery" {
	# Room for two relayed connections; the third accept() fails.
	fd_exhaustion 4
	grep -q 'why=connect_failed' edge.log && false
	[ "$(grep -c '^edge: close ' edge.log)" -ge 2 ]
}

@test "fd exhaustion at the upstream socket(): the client is closed, accepting pauses" {
	# Room to accept one client but not to dial for it.
	fd_exhaustion 1
	grep -q 'why=connect_failed err="Too many open files"' edge.log
}

@test "hundreds of idle connections and one still being set up: no busy loop" {
	up=$(free_port)
	banner "$up" "220 hi"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$up
web.listen = 127.0.0.1:0
web.sni = a.example 127.0.0.1:$up
web.upstream = 127.0.0.1:$up
web.sni_timeout = 30s"
	start_edge edge.conf
	# 300 relayed connections that go quiet after the banner (cold after
	# a quarter second), and one TLS client that never sends its hello:
	# it stays hot, so edge keeps scanning the cold ones in slices.
	cat > hold.py <<'PY'
import socket, sys, time
held = []
for i in range(300):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.recv(16)
    held.append(s)
held.append(socket.create_connection(("127.0.0.1", int(sys.argv[2]))))
open("ready", "w").close()
time.sleep(60)
PY
	spawn /usr/bin/python3 hold.py "$(edge_port smtp)" "$(edge_port web)"
	wait_for 20 test -e ready
	sleep 1
	t0=$(cpu_ticks "$EDGE_PID")
	sleep 2
	t1=$(cpu_ticks "$EDGE_PID")
	# Spinning would burn ~200 ticks in 2 s; slices every millisecond
	# cost a few.
	echo "ticks: $((t1 - t0))" >&3
	[ $((t1 - t0)) -lt 60 ]
}

@test "clients that stop reading cannot starve the others of buffers" {
	# 300 clients start an endless download through edge and never read
	# it: each leaves edge holding bytes it cannot deliver.  A client that
	# comes after them must still be relayed, in full.
	up=$(free_port)
	spawn "$T/../bench/load" serve "$up" source:100000000000
	wait_listen "$up"
	up2=$(free_port)
	sink "$up2" got
	# The buffers' pool: without splice (test/15-splice.bats has the
	# same with pipes).
	conf "max_conns = 400
splice = off
dl.listen = 127.0.0.1:0
dl.upstream = 127.0.0.1:$up
ok.listen = 127.0.0.1:0
ok.upstream = 127.0.0.1:$up2"
	start_edge edge.conf
	# 300 downloads whose clients never read.
	spawn /usr/bin/python3 "$T/lib/stuck.py" "$(edge_port dl)" 300 4096 0
	wait_for 20 test -e ready
	# Wait until edge holds a buffer for every stuck download: all 255
	# big ones (64 MiB) and small ones for the rest.  Before small buffers
	# existed this never came, and the upload below waited forever.
	buffers() {
		kill -USR1 "$EDGE_PID"
		sleep 0.2
		[ "$(sed -n 's/^edge: stats .* buffers=\([0-9]*\) .*/\1/p' edge.log |
			tail -n 1)" -ge 300 ]
	}
	wait_for 60 buffers
	head -c 3000000 /dev/urandom > data
	timeout 30 socat -u OPEN:data "TCP:127.0.0.1:$(edge_port ok)"
	wait_log "^edge: close l=ok .* up=3000000 down=0 .*why=eof$" edge.log 30
	sunk got
	cmp data got
	grep -Eq '^edge: stats .* buffers=300 small_buffers=[1-9][0-9]* ' edge.log
}

# bufs SS-FILTER: the receive and send buffer sizes (rb, tb) of the
# established socket ss finds, as "RB TB".
bufs() {
	ss -Htmn state established "$1" |
		sed -n 's/.*skmem:(r[0-9]*,rb\([0-9]*\),t[0-9]*,tb\([0-9]*\),.*/\1 \2/p' | head -n 1
}

@test "socket_buffer sets both sockets' kernel buffers (the kernel doubles them); a listener's own value wins; a reload applies to new connections" {
	up=$(free_port)
	banner "$up" "220 hi"
	conf "socket_buffer = 32k
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$up
web.listen = 127.0.0.1:0
web.upstream = 127.0.0.1:$up
web.socket_buffer = auto"
	start_edge edge.conf
	grep -q 'listening smtp on .* socket_buffer=32768$' edge.log
	! grep -q 'listening web on .* socket_buffer' edge.log
	p=$(edge_port smtp) w=$(edge_port web)
	hold 1; wait_for 10 has_banner 1
	# The client's socket (edge's end) and the upstream socket.
	[ "$(bufs "( sport = :$p )")" = "65536 65536" ]
	[ "$(bufs "( dport = :$up )")" = "65536 65536" ]
	kill "$HOLD1"
	wait_for 10 bash -c "[ -z \"\$(ss -Htn state established '( sport = :$p )')\" ]"
	# auto: the kernel's own sizes (tcp_rmem's default, not 64 KB).
	spawn socat -u "TCP:127.0.0.1:$w" CREATE:outw
	wait_for 10 grep -q '^220 hi$' outw
	[ "$(bufs "( sport = :$w )" | cut -d' ' -f1)" -ne 65536 ]
	# A reload: new connections get the new size.
	sed -i 's/^socket_buffer = 32k$/socket_buffer = 16k/' edge.conf
	kill -HUP "$EDGE_PID"
	wait_log '^edge: reload ok '
	grep -q '^edge: reload changed smtp: socket_buffer$' edge.log
	hold 2; wait_for 10 has_banner 2
	[ "$(bufs "( sport = :$p )")" = "32768 32768" ]
}
