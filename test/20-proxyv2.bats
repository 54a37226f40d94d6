#!/usr/bin/env bats
# The exact PROXY header bytes an upstream receives, before any relayed
# byte: v2 for an IPv4 client, an IPv6 client, an IPv4 client on a
# dual-stack listener; v1; nothing at all with proxy = off.  And a real
# consumer, HAProxy with accept-proxy, reading them.

load helpers

SIG='0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a'

# hex16 N: N as two hex bytes "hh ll".
hex16() {
	printf '%02x %02x' $(($1 >> 8)) $(($1 & 255))
}

# hexdump FILE: all bytes as one line of "hh hh ...".
hexdump() {
	od -An -v -tx1 "$1" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//'
}

# client_port: the client port edge logged for the one connection.
client_port() {
	close_lines | sed -n 's/.* c=[^ ]*:\([0-9]*\) .*/\1/p' | head -n 1
}

pp_conf() {
	conf "smtp.listen = $1
smtp.upstream = 127.0.0.1:$2
smtp.proxy = $3"
}

@test "v2 for an IPv4 client: 28 bytes, then the client's bytes" {
	up=$(free_port)
	sink "$up" got
	pp_conf 127.0.0.1:0 "$up" v2
	start_edge edge.conf
	port=$(edge_port smtp)
	printf 'EHLO x\r\n' | socat -u - "TCP:127.0.0.1:$port,bind=127.0.0.2"
	wait_log 'why=eof'
	sunk got
	want="$SIG 21 11 00 0c 7f 00 00 02 7f 00 00 01 $(hex16 "$(client_port)") $(hex16 "$port") 45 48 4c 4f 20 78 0d 0a"
	[ "$(hexdump got)" = "$want" ]
}

@test "v2 for an IPv6 client: 52 bytes with both IPv6 addresses" {
	up=$(free_port)
	sink "$up" got
	pp_conf '[::1]:0' "$up" v2
	start_edge edge.conf
	port=$(edge_port smtp)
	printf 'a' | socat -u - "TCP6:[::1]:$port"
	wait_log 'why=eof'
	sunk got
	one='00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01'
	want="$SIG 21 21 00 24 $one $one $(hex16 "$(client_port)") $(hex16 "$port") 61"
	[ "$(hexdump got)" = "$want" ]
}

@test "v2 for an IPv4 client on a dual-stack listener is TCP4, not mapped" {
	up=$(free_port)
	sink "$up" got
	pp_conf ':0' "$up" v2
	start_edge edge.conf
	grep -q 'listening smtp on \[::\]:[0-9]* (v4+v6)' edge.log
	port=$(edge_port smtp)
	printf 'b' | socat -u - "TCP4:127.0.0.1:$port,bind=127.0.0.3"
	wait_log 'c=127.0.0.3:[0-9]+ .*why=eof'
	sunk got
	want="$SIG 21 11 00 0c 7f 00 00 03 7f 00 00 01 $(hex16 "$(client_port)") $(hex16 "$port") 62"
	[ "$(hexdump got)" = "$want" ]
}

@test "v1 sends one text line before the client's bytes" {
	up=$(free_port)
	sink "$up" got
	pp_conf 127.0.0.1:0 "$up" v1
	start_edge edge.conf
	port=$(edge_port smtp)
	printf 'EHLO x\r\n' | socat -u - "TCP:127.0.0.1:$port,bind=127.0.0.2"
	wait_log 'why=eof'
	sunk got
	[ "$(cat got)" = "$(printf 'PROXY TCP4 127.0.0.2 127.0.0.1 %s %s\r\nEHLO x\r\n' "$(client_port)" "$port")" ]
}

@test "proxy = off sends the client's bytes and nothing else" {
	up=$(free_port)
	sink "$up" got
	pp_conf 127.0.0.1:0 "$up" off
	start_edge edge.conf
	printf 'EHLO x\r\n' | socat -u - "TCP:127.0.0.1:$(edge_port smtp)"
	wait_log 'why=eof'
	sunk got
	[ "$(hexdump got)" = "45 48 4c 4f 20 78 0d 0a" ]
}

@test "the header is sent for a client that sends nothing and leaves" {
	up=$(free_port)
	sink "$up" got
	pp_conf 127.0.0.1:0 "$up" v2
	start_edge edge.conf
	socat -u /dev/null "TCP:127.0.0.1:$(edge_port smtp)"
	wait_log 'why=eof'
	sunk got
	[ "$(stat -c %s got)" -eq 28 ]
}

@test "a PROXY line sent by the client arrives after ours, as data" {
	up=$(free_port)
	sink "$up" got
	pp_conf 127.0.0.1:0 "$up" v1
	start_edge edge.conf
	port=$(edge_port smtp)
	printf 'PROXY TCP4 6.6.6.6 127.0.0.1 1 25\r\n' |
		socat -u - "TCP:127.0.0.1:$port,bind=127.0.0.2"
	wait_log 'why=eof'
	sunk got
	[ "$(head -n 1 got)" = "$(printf 'PROXY TCP4 127.0.0.2 127.0.0.1 %s %s\r' "$(client_port)" "$port")" ]
	[ "$(sed -n 2p got)" = "$(printf 'PROXY TCP4 6.6.6.6 127.0.0.1 1 25\r')" ]
}

@test "HAProxy accept-proxy reads edge's v2 and v1: the clients' own addresses" {
	hap=$(free_port)
	hap_reader "$hap" hap.log "hap ci=%ci cp=%cp fi=%fi fp=%fp bytes=%U"
	conf "v2.listen = :0
v2.upstream = 127.0.0.1:$hap
v2.proxy = v2
v1.listen = 127.0.0.1:0
v1.upstream = 127.0.0.1:$hap
v1.proxy = v1"
	start_edge edge.conf
	p2=$(edge_port v2) p1=$(edge_port v1)
	printf 'four' | socat -u - "TCP4:127.0.0.1:$p2,bind=127.0.0.2"
	printf 'six' | socat -u - "TCP6:[::1]:$p2"
	printf 'one' | socat -u - "TCP4:127.0.0.1:$p1,bind=127.0.0.3"
	wait_log "^hap ci=127.0.0.3 " hap.log
	wait_log "^hap ci=::1 " hap.log
	wait_log "^hap ci=127.0.0.2 " hap.log
	# Each line names the client and the edge address it reached, with
	# the ports edge logged: HAProxy took them from edge's header.
	c4=$(close_lines | sed -n 's/.* l=v2 c=127\.0\.0\.2:\([0-9]*\) .*/\1/p')
	c6=$(close_lines | sed -n 's/.* l=v2 c=\[::1\]:\([0-9]*\) .*/\1/p')
	c1=$(close_lines | sed -n 's/.* l=v1 c=127\.0\.0\.3:\([0-9]*\) .*/\1/p')
	grep -qx "hap ci=127.0.0.2 cp=$c4 fi=127.0.0.1 fp=$p2 bytes=4" hap.log
	grep -qx "hap ci=::1 cp=$c6 fi=::1 fp=$p2 bytes=3" hap.log
	grep -qx "hap ci=127.0.0.3 cp=$c1 fi=127.0.0.1 fp=$p1 bytes=3" hap.log
}
