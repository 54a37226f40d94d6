#!/usr/bin/env bats
# Running it for years: SIGHUP reload, SIGTERM drain, the privilege drop,
# allow/deny, the per-address cap, the status endpoint, edge probe, SIGUSR1.

load helpers

# new_port NAME: the port listener NAME got in the newest reload.
new_port() {
	sed -n "s/^edge: reload \(added\|now\) $1 on .*:\([0-9]*\)\( (v4+v6)\)\{0,1\} -> .*/\2/p" \
		"$BATS_TEST_TMPDIR/edge.log" | tail -n 1
}

# slow_send FILE PORT: send FILE to PORT in 100 KB pieces, 0.1 s apart.
slow_send() {
	local n=$(( ($(stat -c %s "$1") + 99999) / 100000 ))
	spawn bash -c "for i in \$(seq 0 $((n - 1))); do
		dd if='$1' bs=100000 skip=\$i count=1 2>/dev/null; sleep 0.1
	done | socat -u - TCP:127.0.0.1:$2"
	SLOW=$SPAWNED
}

@test "reload adds a listener and removes another; a long transfer on a third keeps flowing" {
	up=$(free_port) b1=$(free_port)
	head -c 3000000 /dev/urandom > sent
	sink "$up" got
	banner "$b1" "220 one"
	conf "bulk.listen = 127.0.0.1:0
bulk.upstream = 127.0.0.1:$up
old.listen = 127.0.0.1:0
old.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	bulk=$(edge_port bulk) old=$(edge_port old)
	[ "$(greet "$old")" = "$(printf '220 one\nx')" ]
	slow_send sent "$bulk"
	wait_for 10 test -s got
	conf "bulk.listen = 127.0.0.1:$bulk
bulk.upstream = 127.0.0.1:$up
new.listen = 127.0.0.1:0
new.upstream = 127.0.0.1:$b1"
	kill -HUP "$EDGE_PID"
	wait_log '^edge: reload ok listeners=2 conns=1$'
	grep -q '^edge: reload removed old$' edge.log
	grep -Eq '^edge: reload added new on 127.0.0.1:[0-9]+ -> 127.0.0.1:' edge.log
	# The kept listener keeps its socket: not named as changed.
	! grep -q 'reload changed bulk' edge.log
	[ "$(greet "$(new_port new)")" = "$(printf '220 one\nx')" ]
	run greet "$old"
	[ "$output" = "" ]
	# The transfer started before the reload finishes intact.
	kill -0 "$SLOW"
	sunk got
	cmp sent got
	close_lines | grep -q 'l=bulk .* up=3000000 down=0 .*why=eof$'
}

@test "reload: changed upstream applies to new connections, established ones stay" {
	b1=$(free_port) b2=$(free_port)
	banner "$b1" "220 one"
	banner "$b2" "220 two"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	port=$(edge_port smtp)
	coproc HELD { socat - "TCP:127.0.0.1:$port"; }
	read -r -t 10 line <&"${HELD[0]}"
	[ "$line" = "220 one" ]
	conf "smtp.listen = 127.0.0.1:$port
smtp.upstream = 127.0.0.1:$b2
smtp.idle_timeout = 10m"
	kill -HUP "$EDGE_PID"
	wait_log '^edge: reload ok'
	grep -q '^edge: reload changed smtp: upstream,idle_timeout$' edge.log
	[ "$(greet "$port")" = "$(printf '220 two\nx')" ]
	# The held connection still talks to the first upstream.
	echo still-here >&"${HELD[1]}"
	read -r -t 10 line <&"${HELD[0]}"
	[ "$line" = "still-here" ]
	kill "$HELD_PID"
}

@test "a bad config on reload is refused with edge -t's message; the old one serves" {
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	port=$(edge_port smtp)
	printf 'smtp.listen = 127.0.0.1:%s\nsmtp.upstream = 127.0.0.1:%s\nsmtp.idle_timeout = 30x\n' "$port" "$b1" > edge.conf
	run -2 "$EDGE" -t -c edge.conf
	msg=${output#edge: }
	kill -HUP "$EDGE_PID"
	wait_log '^edge: reload failed: '
	grep -qF "edge: reload failed: $msg; still running the old config" edge.log
	[ "$(greet "$port")" = "$(printf '220 one\nx')" ]
	kill -0 "$EDGE_PID"
}

@test "drain: SIGTERM stops accepting, an in-flight transfer finishes, exit 0" {
	up=$(free_port)
	head -c 2000000 /dev/urandom > sent
	sink "$up" got
	conf "drain_timeout = 20s
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$up"
	start_edge edge.conf
	port=$(edge_port smtp)
	slow_send sent "$port"
	wait_for 10 test -s got
	kill -TERM "$EDGE_PID"
	wait_log '^edge: drain signal=TERM conns=1 timeout=20000ms$'
	# New clients are refused by the kernel: the socket is closed.
	wait_for 5 bash -c "! listening $port"
	rc=0
	wait "$EDGE_PID" || rc=$?
	[ "$rc" -eq 0 ]
	sunk got
	cmp sent got
	close_lines | grep -q ' up=2000000 down=0 .*why=eof$'
	grep -q '^edge: stopped closed=0$' edge.log
}

@test "drain ends at drain_timeout: the rest are closed, exit 0 in time" {
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "drain_timeout = 1s
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	spawn socat -u "TCP:127.0.0.1:$(edge_port smtp)" CREATE:held
	wait_for 10 grep -q 220 held
	start=$SECONDS
	kill -TERM "$EDGE_PID"
	rc=0
	wait "$EDGE_PID" || rc=$?
	[ "$rc" -eq 0 ]
	[ $((SECONDS - start)) -le 4 ]
	grep -q 'why=shutdown$' edge.log
	grep -q '^edge: stopped closed=1$' edge.log
}

@test "a second SIGTERM during the drain exits at once" {
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "drain_timeout = 60s
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	spawn socat -u "TCP:127.0.0.1:$(edge_port smtp)" CREATE:held
	wait_for 10 grep -q 220 held
	kill -TERM "$EDGE_PID"
	wait_log '^edge: drain signal=TERM conns=1'
	start=$SECONDS
	kill -TERM "$EDGE_PID"
	rc=0
	wait "$EDGE_PID" || rc=$?
	[ "$rc" -eq 0 ]
	[ $((SECONDS - start)) -le 3 ]
	grep -q '^edge: stop signal=TERM again: closing 1 connections now$' edge.log
}

@test "user = 65534:65534: after binding, /proc shows the unprivileged ids" {
	need_root
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "user = 65534:65534
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	grep -q '^edge: user uid=65534 gid=65534$' edge.log
	grep -Eq '^Uid:\s+65534\s+65534\s+65534\s+65534$' "/proc/$EDGE_PID/status"
	grep -Eq '^Gid:\s+65534\s+65534\s+65534\s+65534$' "/proc/$EDGE_PID/status"
	grep -Eq '^Groups:\s*$' "/proc/$EDGE_PID/status"
	grep -Eq '^CapEff:\s+0+$' "/proc/$EDGE_PID/status"
	[ "$(greet "$(edge_port smtp)")" = "$(printf '220 one\nx')" ]
}

@test "user = NAME is looked up; a missing name or a failed drop stops edge" {
	need_root
	b1=$(free_port)
	conf "user = nobody
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	uid=$(id -u nobody) gid=$(id -g nobody)
	grep -q "^edge: user uid=$uid gid=$gid$" edge.log
	conf "user = no-such-user-here
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	run -1 "$EDGE" -c edge.conf
	[[ "$output" == *"user no-such-user-here: no such user in /etc/passwd"* ]]
	# Not root, told to become someone else: refuses to run at all.
	conf "user = 65534
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	run -1 setpriv --reuid 1000 --regid 1000 --clear-groups "$EDGE" -c edge.conf
	[[ "$output" == *"refusing to run as uid=1000"* ]]
}

@test "reload after the drop: a new privileged port fails clearly, the rest apply" {
	need_root
	b1=$(free_port)
	banner "$b1" "220 one"
	low=
	for p in $(shuf -i 600-1000 -n 40); do
		listening "$p" || { low=$p; break; }
	done
	[ -n "$low" ]
	conf "user = 65534
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	port=$(edge_port smtp)
	conf "user = 65534
smtp.listen = 127.0.0.1:$port
smtp.upstream = 127.0.0.1:$b1
low.listen = 127.0.0.1:$low
low.upstream = 127.0.0.1:$b1
high.listen = 127.0.0.1:0
high.upstream = 127.0.0.1:$b1"
	chmod a+r edge.conf
	chmod a+x .
	kill -HUP "$EDGE_PID"
	wait_log '^edge: reload ok listeners=3 conns=0 \(with errors above'
	grep -q "^edge: reload listen low: bind 127.0.0.1:$low: Permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE" edge.log
	[ "$(greet "$(new_port high)")" = "$(printf '220 one\nx')" ]
	[ "$(greet "$port")" = "$(printf '220 one\nx')" ]
}

@test "allow/deny: IPv4 clients by source address, IPv6 on a dual-stack listener" {
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = :0
smtp.upstream = 127.0.0.1:$b1
smtp.allow = 127.0.0.0/29 ::1
smtp.deny = 127.0.0.3
v6.listen = [::1]:0
v6.upstream = 127.0.0.1:$b1
v6.deny = ::1/128"
	start_edge edge.conf
	port=$(edge_port smtp)
	# An IPv4 client on the dual-stack socket matches IPv4 entries.
	[ "$(greet "$port" 127.0.0.2)" = "$(printf '220 one\nx')" ]
	run greet "$port" 127.0.0.3
	[ "$output" = "" ]
	run greet "$port" 127.0.0.9
	[ "$output" = "" ]
	out=$(printf 'x\n' | timeout 10 socat -t 5 - "TCP6:[::1]:$port")
	[ "$out" = "$(printf '220 one\nx')" ]
	run bash -c "printf 'x\n' | timeout 10 socat -t 5 - 'TCP6:[::1]:$(edge_port v6)' 2>/dev/null"
	[ "$output" = "" ]
	wait_log '^edge: close l=v6 c=\[::1\]:[0-9]+ sni=- r=- u=- up=0 down=0 t=0.000s why=denied$'
	grep -Eq '^edge: close l=smtp c=127.0.0.3:[0-9]+ .* why=denied$' edge.log
	grep -Eq '^edge: close l=smtp c=127.0.0.9:[0-9]+ .* why=denied$' edge.log
	# Refused before any upstream connect: only the two served reached it.
	[ "$(close_lines | grep -c 'why=eof')" -eq 2 ]
}

# refusals_logged N: the refusals shown plus those reported as suppressed
# add up to N.
refusals_logged() {
	shown=$(grep -c 'why=denied$' edge.log)
	hidden=$(sed -n 's/^edge: refused suppressed=\([0-9]*\) .*/\1/p' edge.log |
		awk '{ s += $1 } END { print s + 0 }')
	[ "$((shown + hidden))" -eq "$1" ]
}

@test "refusal log lines are rate-limited; the count is reported" {
	b1=$(free_port)
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1
smtp.deny = 127.0.0.0/8"
	start_edge edge.conf
	port=$(edge_port smtp)
	# A scan: 60 connections in a burst, from one process.
	/usr/bin/python3 - "$port" <<'PY'
import socket, sys
for i in range(60):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    except ConnectionResetError:
        # edge accepted and reset it before connect() returned here.
        continue
    try:
        s.recv(1)
    except OSError:
        pass
    s.close()
PY
	wait_log '^edge: refused suppressed=[0-9]+ lines in [0-9.]+s \(at most 10 a second\)$' edge.log 5
	wait_for 5 refusals_logged 60
	# At most 10 lines in each second the burst took.
	[ "$shown" -le 20 ]
	kill -0 "$EDGE_PID"
}

@test "max_conns_per_ip: the next connection from that address is refused" {
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1
smtp.max_conns_per_ip = 2"
	start_edge edge.conf
	port=$(edge_port smtp)
	spawn socat -u "TCP:127.0.0.1:$port,bind=127.0.0.2" CREATE:h1
	H1=$SPAWNED
	spawn socat -u "TCP:127.0.0.1:$port,bind=127.0.0.2" CREATE:h2
	wait_for 10 grep -q 220 h1
	wait_for 10 grep -q 220 h2
	run greet "$port" 127.0.0.2
	[ "$output" = "" ]
	wait_log '^edge: close l=smtp c=127.0.0.2:[0-9]+ .* why=per_ip_limit$'
	# Another address is not affected.
	[ "$(greet "$port" 127.0.0.3)" = "$(printf '220 one\nx')" ]
	# One closes: the address may connect again.
	kill -TERM -- "-$H1"
	wait_for 10 bash -c "[ \$(grep -c 'c=127.0.0.2:.*why=eof' edge.log) -ge 1 ]"
	[ "$(greet "$port" 127.0.0.2)" = "$(printf '220 one\nx')" ]
}

@test "max_conns_per_ip counts an IPv6 client by its /ipv6_prefix network, an IPv4 one by its address" {
	need_root
	NETNS="edge-test-$$-$BATS_TEST_NUMBER"
	ip netns add "$NETNS"
	ip -n "$NETNS" link set lo up
	for a in fd00:1::2 fd00:1::3 fd00:1::4 fd00:2::2; do
		ip -n "$NETNS" -6 addr add "$a/64" dev lo nodad
	done
	NS="ip netns exec $NETNS"
	spawn $NS socat TCP-LISTEN:2001,bind=127.0.0.1,reuseaddr,fork SYSTEM:'echo 220 up; exec cat'
	wait_for 10 $NS sh -c 'ss -Hltn | grep -q 127.0.0.1:2001'
	conf "smtp.listen = :2525
smtp.upstream = 127.0.0.1:2001
smtp.max_conns_per_ip = 2
v4.listen = :2526
v4.upstream = 127.0.0.1:2001
v4.max_conns_per_ip = 1
v4.ipv6_prefix = 128"
	start_edge edge.conf $NS
	# Two addresses of fd00:1::/64 use up its two connections...
	spawn $NS socat -u "TCP6:[::1]:2525,bind=[fd00:1::2]" CREATE:a
	spawn $NS socat -u "TCP6:[::1]:2525,bind=[fd00:1::3]" CREATE:b
	wait_for 10 grep -q 220 a
	wait_for 10 grep -q 220 b
	# ...so a third address of it is refused, while fd00:2::/64 is not.
	run $NS timeout 5 socat -u "TCP6:[::1]:2525,bind=[fd00:1::4]" -
	[ "$output" = "" ]
	wait_log '^edge: close l=smtp c=\[fd00:1::4\]:[0-9]+ .*why=per_ip_limit$'
	out=$($NS timeout 5 socat -u "TCP6:[::1]:2525,bind=[fd00:2::2]" - < /dev/null | head -n 1 || true)
	[ "$out" = "220 up" ]
	# With ipv6_prefix = 128 each IPv6 address counts alone; IPv4 clients
	# on the dual-stack listener count by address.
	spawn $NS socat -u "TCP6:[::1]:2526,bind=[fd00:1::2]" CREATE:c
	wait_for 10 grep -q 220 c
	out=$($NS timeout 5 socat -u "TCP6:[::1]:2526,bind=[fd00:1::3]" - < /dev/null | head -n 1 || true)
	[ "$out" = "220 up" ]
	spawn $NS socat -u "TCP4:127.0.0.2:2526,bind=127.0.0.2" CREATE:d
	wait_for 10 grep -q 220 d
	run $NS timeout 5 socat -u "TCP4:127.0.0.2:2526,bind=127.0.0.2" -
	[ "$output" = "" ]
	wait_log '^edge: close l=v4 c=127\.0\.0\.2:[0-9]+ .*why=per_ip_limit$'
	out=$($NS timeout 5 socat -u "TCP4:127.0.0.3:2526,bind=127.0.0.3" - < /dev/null | head -n 1 || true)
	[ "$out" = "220 up" ]
}

@test "refuse: swaks from a denied address reads the 421, curl imap:// the BYE, a dead upstream gives the 421; without it, a reset" {
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:1
smtp.deny = 127.0.0.3
smtp.refuse = 421 4.7.0 Too many connections from your address, try again later
imap.listen = 127.0.0.1:0
imap.upstream = 127.0.0.1:1
imap.deny = 127.0.0.3
imap.refuse = * BYE Too many connections, try again later
plain.listen = 127.0.0.1:0
plain.upstream = 127.0.0.1:1
plain.deny = 127.0.0.3"
	start_edge edge.conf
	# 421 is a temporary failure: the sender will try again later.  swaks
	# reports an error reply to its banner as exit 21.
	run swaks --server "127.0.0.1:$(edge_port smtp)" --local-interface 127.0.0.3 --to a@example.com
	[ "$status" -eq 21 ]
	[[ "$output" == *"<** 421 4.7.0 Too many connections from your address, try again later"* ]]
	wait_log '^edge: close l=smtp c=127\.0\.0\.3:[0-9]+ .*why=denied$'
	run curl -sv --interface 127.0.0.3 "imap://127.0.0.1:$(edge_port imap)/"
	[[ "$output" == *"< * BYE Too many connections, try again later"* ]]
	# An allowed client whose upstream is down gets the same line.
	run swaks --server "127.0.0.1:$(edge_port smtp)" --local-interface 127.0.0.2 --to a@example.com
	[ "$status" -eq 21 ]
	[[ "$output" == *"<** 421 4.7.0 Too many connections from your address, try again later"* ]]
	wait_log '^edge: close l=smtp c=127\.0\.0\.2:[0-9]+ .*why=connect_failed'
	# Without refuse, a denied client is reset at once.
	run python3 -c 'import socket, sys
try:
    c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5, source_address=("127.0.0.3", 0))
    print("read %r" % c.recv(100))
except ConnectionResetError:
    print("reset")' "$(edge_port plain)"
	[ "$output" = reset ]
}

@test "max_rate_per_ip refuses the N+1th connection in the window and admits again after it" {
	b1=$(free_port)
	spawn socat "TCP-LISTEN:$b1,bind=127.0.0.1,reuseaddr,fork" SYSTEM:'echo 220 up'
	wait_listen "$b1"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1
smtp.max_rate_per_ip = 3/s"
	start_edge edge.conf
	burst() {
		python3 -c 'import socket, sys
out = []
for i in range(int(sys.argv[3])):
    try:
        c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5, source_address=(sys.argv[2], 0))
        out.append("ok" if c.recv(100).startswith(b"220") else "refused")
    except ConnectionResetError:
        out.append("refused")
print(" ".join(out))' "$(edge_port smtp)" "$@"
	}
	# A burst of three, then the fourth within the second is refused.
	run burst 127.0.0.2 4
	[ "$output" = "ok ok ok refused" ]
	wait_log '^edge: close l=smtp c=127\.0\.0\.2:[0-9]+ .*why=rate_limit$'
	# Another client has a bucket of its own.
	run burst 127.0.0.3 1
	[ "$output" = ok ]
	# A token comes back every third of a second.
	sleep 0.5
	run burst 127.0.0.2 1
	[ "$output" = ok ]
}

@test "a flood from more clients than the rate table holds evicts, never grows it, and a client is still served" {
	b1=$(free_port)
	spawn socat "TCP-LISTEN:$b1,bind=127.0.0.1,reuseaddr,fork" SYSTEM:'echo 220 up'
	wait_listen "$b1"
	st=$(free_port)
	conf "max_conns = 64
status.listen = 127.0.0.1:$st
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1
smtp.max_rate_per_ip = 1/m"
	start_edge edge.conf
	p=$(edge_port smtp)
	# 1,500 clients fill the 1,024 buckets (and warm the buffer pool)...
	run python3 "$T/lib/flood.py" "$p" 0 1500
	[ "$output" = "ok 1500 refused 0" ]
	rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$EDGE_PID/status")
	# ...3,000 more new ones each take the bucket seen longest ago.
	run python3 "$T/lib/flood.py" "$p" 1500 3000
	[ "$output" = "ok 3000 refused 0" ]
	rss1=$(awk '/^VmRSS/ { print $2 }' "/proc/$EDGE_PID/status")
	[ "$rss1" -le $((rss0 + 64)) ]
	m=$(curl -fsS "http://127.0.0.1:$st/metrics")
	ev=$(printf '%s\n' "$m" | sed -n 's/^edge_rate_evictions_total \([0-9]*\)$/\1/p')
	[ "$ev" -ge 3000 ]
	# The first client's bucket was evicted: it starts afresh.
	run python3 "$T/lib/flood.py" "$p" 0 1
	[ "$output" = "ok 1 refused 0" ]
	# A client seen again at once is still limited.
	run python3 "$T/lib/flood.py" "$p" 0 1
	[ "$output" = "ok 0 refused 1" ]
}

@test "deny_file and allow_file: DROP lines and comments load; a bad line names file:line; a reload re-reads them, a broken file is refused" {
	b1=$(free_port)
	spawn socat "TCP-LISTEN:$b1,bind=127.0.0.1,reuseaddr,fork" SYSTEM:'echo 220 up'
	wait_listen "$b1"
	printf '; Spamhaus DROP List\n127.0.0.0/29 ; SBL1\n\n127.0.0.9 # one\n' > drop.txt
	printf '127.0.0.0/24\n' > allow.txt
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1
smtp.deny_file = $BATS_TEST_TMPDIR/drop.txt
smtp.allow_file = $BATS_TEST_TMPDIR/allow.txt"
	start_edge edge.conf
	grep -q 'listening smtp on .* deny_file=2 allow_file=1$' edge.log
	p=$(edge_port smtp)
	greet1() {
		timeout 5 socat -u "TCP:127.0.0.1:$p,bind=$1" - 2> /dev/null | head -n 1 || true
	}
	[ -z "$(greet1 127.0.0.2)" ]
	[ -z "$(greet1 127.0.0.9)" ]
	[ "$(greet1 127.0.0.10)" = "220 up" ]
	# 127.0.1.1 is in no allow entry or file: refused.
	[ -z "$(greet1 127.0.1.1)" ]
	[ "$(close_lines | grep -c 'why=denied')" -eq 3 ]
	# A reload with the files as they were changes nothing.
	kill -HUP "$EDGE_PID"
	wait_log '^edge: reload ok '
	! grep -q '^edge: reload changed smtp' edge.log
	# A reload re-reads the file: 127.0.0.10 is listed now.  It merges
	# with 127.0.0.9 (still 2 ranges), and the reload says what changed.
	printf '127.0.0.10/32\n' >> drop.txt
	kill -HUP "$EDGE_PID"
	wait_for 10 bash -c "[ \$(grep -c '^edge: reload ok' edge.log) -eq 2 ]"
	grep -q '^edge: reload changed smtp: deny_file$' edge.log
	grep -q 'listening smtp on .* deny_file=2 allow_file=1$' edge.log
	[ -z "$(greet1 127.0.0.10)" ]
	# A broken file refuses the reload; the old lists stay.
	printf '127.0.0.300\n' >> drop.txt
	kill -HUP "$EDGE_PID"
	wait_log "reload failed: $BATS_TEST_TMPDIR/drop.txt:6: \"127.0.0.300\" is not an address or CIDR"
	[ -z "$(greet1 127.0.0.10)" ]
	[ "$(greet1 127.0.0.11)" = "220 up" ]
	# edge -t says where: the file and line, or the config line.
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[[ "$stderr" == "edge: $BATS_TEST_TMPDIR/drop.txt:6: \"127.0.0.300\" is not an address or CIDR"* ]]
	rm drop.txt
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = "edge: edge.conf:3: smtp.deny_file: $BATS_TEST_TMPDIR/drop.txt: No such file or directory" ]
}

# metrics PORT: the status page, checked by Prometheus' own parser; prints
# "name{labels} value" lines.
metrics() {
	curl -fsS "http://127.0.0.1:$1/metrics" > page
	/usr/bin/python3 - page <<'EOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %s" % (s.name, labels, repr(float(s.value))))
EOF
}

@test "status endpoint: Prometheus text whose counters match the traffic" {
	up=$(free_port) st=$(free_port)
	head -c 123456 /dev/urandom > sent
	sink "$up" got
	conf "status.listen = 127.0.0.1:$st
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$up
smtp.deny = 127.0.0.2
dead.listen = 127.0.0.1:0
dead.upstream = 127.0.0.1:$(free_port)"
	start_edge edge.conf
	grep -q "^edge: status on 127.0.0.1:$st$" edge.log
	socat -u OPEN:sent "TCP:127.0.0.1:$(edge_port smtp)"
	sunk got
	wait_log 'l=smtp .*why=eof$'
	run greet "$(edge_port smtp)" 127.0.0.2
	run greet "$(edge_port dead)"
	wait_log 'l=dead .*why=connect_failed'
	metrics "$st" > m
	cat m
	grep -qx 'edge_connections_total{listener="smtp"} 2.0' m
	grep -qx 'edge_connections_active{listener="smtp"} 0.0' m
	grep -qx 'edge_bytes_total{direction="up",listener="smtp"} 123456.0' m
	grep -qx 'edge_bytes_total{direction="down",listener="smtp"} 0.0' m
	grep -qx 'edge_connections_refused_total{listener="smtp",reason="denied"} 1.0' m
	grep -qx 'edge_connections_closed_total{listener="smtp",why="eof"} 1.0' m
	grep -qx 'edge_connect_failures_total{listener="dead"} 1.0' m
	grep -qx 'edge_connections_closed_total{listener="dead",why="connect_failed"} 1.0' m
	grep -qx 'edge_dns_failures_total{listener="smtp"} 0.0' m
	grep -qx 'edge_listener_up{listener="dead"} 1.0' m
	grep -qx 'edge_info{version="0.1.0"} 1.0' m
	grep -q '^edge_uptime_seconds{} [0-9]' m
	# Not found and wrong method, as HTTP says.
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$st/nope")" = 404 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$st/metrics")" = 405 ]
}

@test "status endpoint: a silent client does not stall the loop or other scrapes" {
	b1=$(free_port) st=$(free_port)
	banner "$b1" "220 one"
	conf "status.listen = 127.0.0.1:$st
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	for i in 1 2 3 4 5 6 7 8 9 10; do
		spawn socat -u "TCP:127.0.0.1:$st" CREATE:/dev/null
	done
	[ "$(greet "$(edge_port smtp)")" = "$(printf '220 one\nx')" ]
	# All eight slots are held now; scrapes wait for the 5 s deadline.
	run timeout 15 curl -fsS "http://127.0.0.1:$st/metrics"
	[ "$status" -eq 0 ]
	[[ "$output" == *'edge_connections_total{listener="smtp"} 1'* ]]
}

@test "edge probe: 0 when the status endpoint answers 200, 1 otherwise" {
	b1=$(free_port) st=$(free_port) none=$(free_port)
	banner "$b1" "220 one"
	conf "status.listen = 127.0.0.1:$st
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	run "$EDGE" probe "127.0.0.1:$st"
	[ "$status" -eq 0 ]
	run "$EDGE" probe "localhost:$st"
	[ "$status" -eq 0 ]
	run -1 "$EDGE" probe "127.0.0.1:$none"
	[[ "$output" == "edge: probe 127.0.0.1:$none: connect: Connection refused" ]]
	# A mail port answers with a banner, not HTTP 200.
	run -1 "$EDGE" probe "127.0.0.1:$b1"
	[[ "$output" == "edge: probe 127.0.0.1:$b1: answered: 220 one" ]]
	run -2 "$EDGE" probe nonsense
}

@test "SIGUSR1 writes the counters to the log" {
	b1=$(free_port)
	banner "$b1" "220 one"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$b1"
	start_edge edge.conf
	[ "$(greet "$(edge_port smtp)")" = "$(printf '220 one\nx')" ]
	wait_log 'why=eof$'
	kill -USR1 "$EDGE_PID"
	wait_log '^edge: stats l=smtp active=0 total=1 denied=0 per_ip_limit=0 up=2 down=10 dns_failures=0 connect_failures=0 eof=1$'
	grep -Eq '^edge: stats uptime=[0-9]+s conns=0 max_conns=[0-9]+ buffers=[0-9]+ small_buffers=[0-9]+ buffer_kb=[0-9]+ reloads=0 reload_failures=0$' edge.log
}
