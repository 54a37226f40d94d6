#!/usr/bin/env bats
# The upstream name is resolved for every connection, IPv4 first, with
# fallback to the next address; a slow DNS server delays only the
# connections waiting on it.  edge runs in a private mount namespace with
# its own /etc/hosts (and /etc/resolv.conf), or in a network namespace.

load helpers

# start_edge_hosts: edge with ./hosts as its /etc/hosts, and a resolver
# that refuses at once (nothing listens on 127.0.0.1:53 here).
start_edge_hosts() {
	need_root
	echo 'nameserver 127.0.0.1' > resolv.conf
	start_edge edge.conf "$T/lib/with-hosts.sh" "$BATS_TEST_TMPDIR/hosts" \
		"$BATS_TEST_TMPDIR/resolv.conf"
}

name_conf() {
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = up.test:$1
smtp.prefer = $2
smtp.proxy = off"
}

@test "a name with ::1 and 127.0.0.1 connects over IPv4 first (prefer=ipv4)" {
	up=$(free_port)
	printf '::1 up.test\n127.0.0.1 up.test\n' > hosts
	sink "$up" got
	name_conf "$up" ipv4
	start_edge_hosts
	printf 'v4' | socat -u - "TCP:127.0.0.1:$(edge_port smtp)"
	wait_log "u=127.0.0.1:$up up=2 .*why=eof"
	sunk got
	[ "$(cat got)" = v4 ]
	# IPv4 answered first: ::1 was never tried.
	! grep -q '^edge: retry' edge.log
}

@test "prefer=ipv6 tries ::1 first, then falls back to 127.0.0.1" {
	up=$(free_port)
	printf '127.0.0.1 up.test\n::1 up.test\n' > hosts
	sink "$up" got
	name_conf "$up" ipv6
	start_edge_hosts
	printf 'fb' | socat -u - "TCP:127.0.0.1:$(edge_port smtp)"
	wait_log "u=127.0.0.1:$up up=2 .*why=eof"
	sunk got
	[ "$(cat got)" = fb ]
	grep -q "^edge: retry l=smtp c=127.0.0.1:[0-9]* u=\[::1\]:$up err=\"Connection refused\"$" edge.log
}

@test "prefer=system keeps the resolver's order and still falls back" {
	up=$(free_port)
	printf '::1 up.test\n127.0.0.1 up.test\n' > hosts
	sink "$up" got
	name_conf "$up" system
	start_edge_hosts
	printf 'sy' | socat -u - "TCP:127.0.0.1:$(edge_port smtp)"
	wait_log "u=127.0.0.1:$up up=2 .*why=eof"
	# glibc sorts ::1 first (RFC 6724); edge keeps that order.
	grep -q "^edge: retry l=smtp .* u=\[::1\]:$up " edge.log
}

@test "a changed address is followed on the next connection, no restart" {
	up=$(free_port)
	echo '127.0.0.2 up.test' > hosts
	sink "$up" got2 127.0.0.2
	sink "$up" got3 127.0.0.3
	name_conf "$up" ipv4
	start_edge_hosts
	port=$(edge_port smtp)
	printf 'one' | socat -u - "TCP:127.0.0.1:$port"
	wait_log "u=127.0.0.2:$up up=3 .*why=eof"
	# Rewrite in place: the bind mount follows the inode.
	echo '127.0.0.3 up.test' | tee hosts > /dev/null
	printf 'two' | socat -u - "TCP:127.0.0.1:$port"
	wait_log "u=127.0.0.3:$up up=3 .*why=eof"
	sunk got2 got3
	[ "$(cat got2)" = one ]
	[ "$(cat got3)" = two ]
}

@test "a name that does not resolve closes the client with why=dns_failed" {
	up=$(free_port)
	echo '127.0.0.1 other.test' > hosts
	name_conf "$up" ipv4
	start_edge_hosts
	run timeout 10 socat -u "TCP:127.0.0.1:$(edge_port smtp)" STDOUT
	[ "$output" = "" ]
	wait_log '^edge: close l=smtp c=127.0.0.1:[0-9]+ sni=- r=- u=- up=0 down=0 t=[0-9.]+s why=dns_failed err="[^"]+"$'
}

# dns_ns TIMEOUT SERVER ARGS...: a network namespace with only lo, whose
# /etc/resolv.conf points at test/lib/SERVER (a DNS server on 127.0.0.1,
# given ARGS) with TIMEOUT seconds per query.  Sets NETNS and NS (the exec
# prefix).
dns_ns() {
	local timeout=$1 server=$2
	shift 2
	need_root
	NETNS="edge-test-$$-$BATS_TEST_NUMBER"
	ip netns add "$NETNS"
	ip -n "$NETNS" link set lo up
	mkdir -p "/etc/netns/$NETNS"
	printf 'nameserver 127.0.0.1\noptions timeout:%s attempts:1\n' "$timeout" > "/etc/netns/$NETNS/resolv.conf"
	NS="ip netns exec $NETNS"
	spawn $NS python3 "$T/lib/$server" "$@"
	wait_for 10 $NS sh -c 'ss -Hlun | grep -q 127.0.0.1:53'
}

# slow_dns_ns DELAY NAME=IP...: dns_ns with a server that answers each
# query DELAY seconds late.
slow_dns_ns() {
	dns_ns 15 slowdns.py "$@" "$BATS_TEST_TMPDIR/dns.log"
}

@test "a slow DNS server does not delay another listener's traffic" {
	slow_dns_ns 2 slow.test=127.0.0.1
	spawn $NS socat -u TCP-LISTEN:2001,bind=127.0.0.1,reuseaddr CREATE:got-slow
	writes got-slow
	spawn $NS socat -u TCP-LISTEN:2002,bind=127.0.0.1,reuseaddr CREATE:got-fast
	writes got-fast
	wait_for 10 $NS sh -c 'ss -Hltn | grep -q :2002'
	conf 'slow.listen = 127.0.0.1:2525
slow.upstream = slow.test:2001
fast.listen = 127.0.0.1:2526
fast.upstream = localhost:2002'
	start_edge edge.conf $NS
	# The slow lookup goes first and holds one resolver thread.
	spawn $NS sh -c 'printf slow | socat -u - TCP:127.0.0.1:2525'
	wait_log 'query slow.test 1' dns.log
	$NS sh -c 'printf fast | socat -u - TCP:127.0.0.1:2526'
	wait_log 'l=fast .* up=4 .*why=eof'
	# The fast connection finished while the slow one still waited on DNS.
	! grep -q 'l=slow' edge.log
	sunk got-fast
	[ "$(cat got-fast)" = fast ]
	# The slow one is answered late, and still connects over IPv4.
	wait_log 'l=slow .*u=127.0.0.1:2001 up=4 .*why=eof' edge.log 20
	sunk got-slow
	[ "$(cat got-slow)" = slow ]
}

@test "a lookup slower than dns_timeout closes the client with why=dns_timeout" {
	slow_dns_ns 5 slow.test=127.0.0.1
	conf 'dns_timeout = 500ms
slow.listen = 127.0.0.1:2525
slow.upstream = slow.test:2001'
	start_edge edge.conf $NS
	run $NS timeout 10 socat -u TCP:127.0.0.1:2525 STDOUT
	[ "$output" = "" ]
	wait_log '^edge: close l=slow c=127.0.0.1:[0-9]+ sni=- r=- u=- up=0 down=0 t=0\.[5-9][0-9]*s why=dns_timeout$'
	# The late answer is dropped; edge goes on serving.
	wait_log 'query slow.test 28' dns.log 20
	run $NS timeout 10 socat -u TCP:127.0.0.1:2525 STDOUT
	[ "$(grep -c why=dns_timeout edge.log)" -eq 2 ]
}

@test "a name that resolves to edge's own listener is refused as a loop, never dialled" {
	# A network namespace whose lo also holds 10.9.9.9: an address of
	# "this host" that is not loopback, like a VPS's public address.
	need_root
	NETNS="edge-test-$$-$BATS_TEST_NUMBER"
	ip netns add "$NETNS"
	ip -n "$NETNS" link set lo up
	ip -n "$NETNS" addr add 10.9.9.9/32 dev lo
	NS="ip netns exec $NETNS"
	printf '10.9.9.9 self.test\n127.0.0.5 lo.test\n127.0.0.1 mixed.test\n127.0.0.2 mixed.test\n' > hosts
	echo 'nameserver 127.0.0.1' > resolv.conf
	spawn $NS socat -u TCP-LISTEN:2003,bind=127.0.0.2,reuseaddr CREATE:got
	writes got
	wait_for 10 $NS sh -c 'ss -Hltn | grep -q 127.0.0.2:2003'
	conf 'a.listen = :2001
a.upstream = self.test:2001
b.listen = 0.0.0.0:2002
b.upstream = lo.test:2002
c.listen = 127.0.0.1:2003
c.upstream = mixed.test:2003
c.proxy = off'
	start_edge edge.conf $NS "$T/lib/with-hosts.sh" "$BATS_TEST_TMPDIR/hosts" \
		"$BATS_TEST_TMPDIR/resolv.conf"
	run $NS timeout 10 socat -u TCP:127.0.0.1:2001 STDOUT
	[ "$output" = "" ]
	wait_log '^edge: close l=a c=127.0.0.1:[0-9]+ sni=- r=- u=10.9.9.9:2001 up=0 down=0 t=[0-9.]+s why=loop err="a loop: edge itself listens there \(a on \[::\]:2001\)"$'
	run $NS timeout 10 socat -u TCP:127.0.0.1:2002 STDOUT
	[ "$output" = "" ]
	wait_log '^edge: close l=b .* u=127.0.0.5:2002 .*why=loop err="a loop: edge itself listens there \(b on 0.0.0.0:2002\)"$'
	# With another address to try, edge skips its own and goes on.
	$NS sh -c 'printf mixed | socat -u - TCP:127.0.0.1:2003'
	wait_log '^edge: close l=c .* u=127.0.0.2:2003 up=5 .*why=eof$'
	grep -q '^edge: retry l=c c=127.0.0.1:[0-9]* u=127.0.0.1:2003 err="a loop: edge itself listens there (c on 127.0.0.1:2003)"$' edge.log
	sunk got
	[ "$(cat got)" = mixed ]
	# Three clients, three close lines: no connection came back to edge.
	[ "$(close_lines | wc -l)" -eq 3 ]
	! grep -q 'c=10.9.9.9\|c=127.0.0.5\|u=127.0.0.1:2003 up' edge.log
}

# ctl_dns_ns: dns_ns with a server that does what ./mode says
# (test/lib/ctldns.py).
ctl_dns_ns() {
	dns_ns 5 ctldns.py "$BATS_TEST_TMPDIR/mode" "$BATS_TEST_TMPDIR/dns.log"
}

# one_conn PORT: one connection through edge; prints what came back.
one_conn() {
	$NS timeout 10 socat -u "TCP:127.0.0.1:$1" STDOUT 2> /dev/null || true
}

@test "serve-stale: a failed or timed-out lookup uses the last good answer until dns_stale passes; a new answer is followed at once" {
	ctl_dns_ns
	echo "answer mx.stale.test 127.0.0.1" > mode
	spawn $NS socat TCP-LISTEN:2001,bind=127.0.0.1,reuseaddr,fork SYSTEM:'echo one'
	spawn $NS socat TCP-LISTEN:2001,bind=127.0.0.2,reuseaddr,fork SYSTEM:'echo two'
	wait_for 10 $NS sh -c 'ss -Hltn | grep -q 127.0.0.2:2001'
	conf 'dns_timeout = 1s
dns_stale = 4s
status.listen = 127.0.0.1:9901
smtp.listen = 127.0.0.1:2525
smtp.upstream = mx.stale.test:2001'
	start_edge edge.conf $NS
	[ "$(one_conn 2525)" = one ]
	good=$SECONDS	# the last good answer, give or take a second
	wait_log 'close l=smtp .* u=127\.0\.0\.1:2001 up=0 down=4 .*why=eof'
	# A reload keeps the answer of a name still in use.
	kill -HUP "$EDGE_PID"
	wait_log '^edge: reload ok '
	# The server stops answering: the lookup times out, the last answer
	# serves; then SERVFAIL, then NXDOMAIN: the same.
	for m in drop servfail nxdomain; do
		echo "$m" > mode
		[ "$(one_conn 2525)" = one ]
		wait_log "query mx.stale.test 1 $m" dns.log
	done
	[ "$(close_lines | grep -c 'u=127\.0\.0\.1:2001 stale=[0-9]s up=0 down=4 .*why=eof')" -eq 3 ]
	! close_lines | grep -q 'why=dns_'
	m=$($NS curl -fsS http://127.0.0.1:9901/metrics)
	[[ "$m" == *'edge_dns_stale_total{listener="smtp"} 3'* ]]
	# Past dns_stale (4s) since that answer, a failure closes as before.
	d=$((good + 6 - SECONDS))
	[ "$d" -le 0 ] || sleep "$d"
	[ -z "$(one_conn 2525)" ]
	wait_log 'close l=smtp .* u=- up=0 down=0 .*why=dns_failed'
	# A new answer is followed at once, and is the one kept.
	echo "answer mx.stale.test 127.0.0.2" > mode
	[ "$(one_conn 2525)" = two ]
	echo servfail > mode
	[ "$(one_conn 2525)" = two ]
	wait_log 'u=127\.0\.0\.2:2001 stale=0s up=0 down=4 .*why=eof'
}
