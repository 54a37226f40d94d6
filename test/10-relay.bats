#!/usr/bin/env bats
# Bytes both ways, byte for byte; half-close each way; resets propagate;
# the mail server's banner reaches a client that has sent nothing.

load helpers

plain_conf() {
	conf "max_conns = 64
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$1
smtp.proxy = off"
}

@test "10 MB client to upstream arrive intact" {
	up=$(free_port)
	head -c 10000000 /dev/urandom > sent
	sink "$up" got
	plain_conf "$up"
	start_edge edge.conf
	socat -u OPEN:sent "TCP:127.0.0.1:$(edge_port smtp)"
	wait_log 'why=eof'
	sunk got
	cmp sent got
	close_lines | grep -q ' up=10000000 down=0 '
}

@test "10 MB upstream to client arrive intact" {
	up=$(free_port)
	head -c 10000000 /dev/urandom > sent
	source_file "$up" sent
	plain_conf "$up"
	start_edge edge.conf
	socat -u "TCP:127.0.0.1:$(edge_port smtp)" CREATE:got
	cmp sent got
	wait_log 'why=eof'
	close_lines | grep -q ' up=0 down=10000000 '
}

@test "10 MB each way at once arrive intact" {
	up=$(free_port)
	head -c 10000000 /dev/urandom > a
	head -c 10000000 /dev/urandom > b
	spawn socat -t 30 "TCP-LISTEN:$up,bind=127.0.0.1,reuseaddr" OPEN:b\!\!CREATE:got-a
	writes got-a
	wait_listen "$up"
	plain_conf "$up"
	start_edge edge.conf
	socat -t 30 OPEN:a\!\!CREATE:got-b "TCP:127.0.0.1:$(edge_port smtp)"
	wait_log 'why=eof'
	sunk got-a
	cmp a got-a
	cmp b got-b
}

@test "FIN from client still lets upstream finish its reply" {
	up=$(free_port)
	spawn socat "TCP-LISTEN:$up,bind=127.0.0.1,reuseaddr" \
		"SYSTEM:cat > $BATS_TEST_TMPDIR/request; sleep 0.2; echo reply-after-eof"
	wait_listen "$up"
	plain_conf "$up"
	start_edge edge.conf
	run bash -c "printf 'QUIT\r\n' | socat -t 10 - TCP:127.0.0.1:$(edge_port smtp)"
	[ "$status" -eq 0 ]
	[ "$output" = "reply-after-eof" ]
	[ "$(cat request)" = "$(printf 'QUIT\r\n')" ]
	wait_log 'why=eof'
}

@test "FIN from upstream still lets the client send afterwards" {
	up=$(free_port)
	echo "220 banner then FIN" > banner
	spawn socat -t 10 "TCP-LISTEN:$up,bind=127.0.0.1,reuseaddr" \
		OPEN:banner\!\!CREATE:late
	writes late
	wait_listen "$up"
	plain_conf "$up"
	start_edge edge.conf
	run socat -t 10 "SYSTEM:cat > $BATS_TEST_TMPDIR/got; echo sent-after-fin" \
		"TCP:127.0.0.1:$(edge_port smtp)"
	[ "$status" -eq 0 ]
	[ "$(cat got)" = "220 banner then FIN" ]
	wait_log 'why=eof'
	sunk late
	[ "$(cat late)" = "sent-after-fin" ]
}

@test "the banner reaches a client that sends nothing" {
	up=$(free_port)
	banner "$up" "220 mx.example ESMTP"
	plain_conf "$up"
	start_edge edge.conf
	run timeout 10 socat -u -T 1 "TCP:127.0.0.1:$(edge_port smtp)" STDOUT
	[ "$output" = "220 mx.example ESMTP" ]
	wait_log 'up=0 down=21 .*why=idle|up=0 down=21 .*why=eof'
}

@test "an upstream reset reaches the client as a reset and is logged" {
	up=$(free_port)
	spawn python3 "$T/lib/rst.py" server "$up"
	wait_listen "$up"
	plain_conf "$up"
	start_edge edge.conf
	run python3 "$T/lib/rst.py" client "$(edge_port smtp)"
	[ "$output" = "got 5 bytes then reset" ]
	wait_log 'why=reset err="upstream: Connection reset by peer"'
}

@test "a client reset closes the upstream side" {
	up=$(free_port)
	spawn socat "TCP-LISTEN:$up,bind=127.0.0.1,reuseaddr" "SYSTEM:cat > $BATS_TEST_TMPDIR/got; echo eof >> $BATS_TEST_TMPDIR/got"
	wait_listen "$up"
	plain_conf "$up"
	start_edge edge.conf
	python3 "$T/lib/rst.py" reset-client "$(edge_port smtp)"
	wait_log 'why=reset err="client: Connection reset by peer"'
	# The upstream saw the bytes sent before the reset, then its end.
	wait_for 10 grep -q eof got
	[ "$(head -n 1 got)" = "hello" ]
}

@test "upstream down: the client is closed and the log says why" {
	up=$(free_port)
	plain_conf "$up"
	start_edge edge.conf
	run timeout 10 socat -u "TCP:127.0.0.1:$(edge_port smtp)" STDOUT
	[ "$output" = "" ]
	wait_log "^edge: close l=smtp c=127.0.0.1:[0-9]+ sni=- r=- u=127.0.0.1:$up up=0 down=0 t=[0-9.]+s why=connect_failed err=\"Connection refused\"$"
}

@test "SIGTERM with nothing open exits 0 at once" {
	up=$(free_port)
	banner "$up" "220 hi"
	plain_conf "$up"
	start_edge edge.conf
	kill -TERM "$EDGE_PID"
	rc=0
	wait "$EDGE_PID" || rc=$?
	[ "$rc" -eq 0 ]
	grep -q '^edge: drain signal=TERM conns=0 timeout=8000ms$' edge.log
	grep -q '^edge: stopped closed=0$' edge.log
}

@test "both sockets of a relayed connection probe with keepalive after 2 min, not 2 h" {
	up=$(free_port)
	banner "$up" "220 hi"
	plain_conf "$up"
	start_edge edge.conf
	port=$(edge_port smtp)
	spawn socat -u "TCP:127.0.0.1:$port" CREATE:held
	wait_for 10 grep -q 220 held
	# Edge's end of the client connection (on Linux it inherits the
	# options from the listener) and its end of the upstream connection:
	# keepalive armed, first probe due within 2 minutes.
	ss -tnoH state established "( sport = :$port )" > client_side
	ss -tnoH state established "( dport = :$up )" > upstream_side
	grep -Eq 'timer:\(keepalive,(1min[0-9]+sec|2min|[0-9]+sec),0\)' client_side
	grep -Eq 'timer:\(keepalive,(1min[0-9]+sec|2min|[0-9]+sec),0\)' upstream_side
}
