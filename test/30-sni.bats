#!/usr/bin/env bats
# SNI fan-out: route a TLS connection by its server_name without
# terminating TLS, then replay the exact bytes read to the chosen upstream.

load helpers

# route_conf: four sinks, one per kind of route, and a default.
route_conf() {
	conf "web.listen = 127.0.0.1:0
web.sni = mta-sts.*          127.0.0.1:$P1
web.sni = *.example.net      127.0.0.1:$P2
web.sni = exact.example.org  127.0.0.1:$P3
web.upstream = 127.0.0.1:$P4
web.sni_timeout = ${1:-5s}
web.proxy = ${2:-off}"
}

four_sinks() {
	P1=$(free_port); P2=$(free_port); P3=$(free_port); P4=$(free_port)
	sink "$P1" got1
	sink "$P2" got2
	sink "$P3" got3
	sink "$P4" got4
}

hello() {
	python3 "$T/lib/hello.py" write "$@"
}

send() {
	python3 "$T/lib/hello.py" send "$(edge_port web)" "$@"
}

@test "exact, *.suffix and prefix.* routes, case-insensitive; the rest to the default" {
	four_sinks
	route_conf
	start_edge edge.conf
	hello h1 --sni MTA-STS.Example.COM
	hello h2 --sni a.b.example.net
	hello h3 --sni exact.example.org.
	hello h4 --sni example.net
	for i in 1 2 3 4; do send "h$i"; done
	sunk got1 got2 got3 got4
	# Each upstream received exactly the bytes its client sent.
	for i in 1 2 3 4; do cmp "h$i" "got$i"; done
	grep -q "sni=mta-sts.example.com alpn=- r=mta-sts.\* u=127.0.0.1:$P1 " edge.log
	grep -q "sni=a.b.example.net alpn=- r=\*.example.net u=127.0.0.1:$P2 " edge.log
	grep -q "sni=exact.example.org alpn=- r=exact.example.org u=127.0.0.1:$P3 " edge.log
	grep -q "sni=example.net alpn=- r=default u=127.0.0.1:$P4 " edge.log
}

@test "no SNI, and bytes that are not TLS, go to the default route" {
	four_sinks
	route_conf
	start_edge edge.conf
	hello h0
	send h0
	sunk got4
	cmp h0 got4
	grep -q "sni=- alpn=- r=default u=127.0.0.1:$P4 up=$(stat -c %s h0) " edge.log
}

@test "an HTTP request on the TLS port goes to the default, byte for byte" {
	P4=$(free_port)
	sink "$P4" got4
	conf "web.listen = 127.0.0.1:0
web.sni = mta-sts.* 127.0.0.1:9
web.upstream = 127.0.0.1:$P4"
	start_edge edge.conf
	printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' > req
	send req
	sunk got4
	cmp req got4
}

@test "a ClientHello sent one byte per write is routed and replayed intact" {
	four_sinks
	route_conf
	start_edge edge.conf
	hello h --sni mta-sts.example.com --pad 200
	send h --bytewise
	sunk got1
	cmp h got1
}

@test "a 6 KB ClientHello over several records and segments is routed intact" {
	four_sinks
	route_conf
	start_edge edge.conf
	hello h --sni www.example.net --pad 6000 --records 4
	[ "$(stat -c %s h)" -gt 6000 ]
	send h
	sunk got2
	cmp h got2
}

@test "a ClientHello split across two TLS records is routed intact" {
	four_sinks
	route_conf
	start_edge edge.conf
	hello h --sni exact.example.org --records 2
	send h
	sunk got3
	cmp h got3
}

@test "with proxy = v2 the header goes first, then the peeked bytes" {
	four_sinks
	route_conf 5s v2
	start_edge edge.conf
	hello h --sni exact.example.org
	send h
	sunk got3
	[ "$(head -c 16 got3 | od -An -tx1 | tr -d ' \n')" = "0d0a0d0a000d0a515549540a2111000c" ]
	tail -c +29 got3 > rest
	cmp h rest
}

@test "a stalled ClientHello is closed at sni_timeout while others are served" {
	four_sinks
	route_conf 1s
	start_edge edge.conf
	hello h --sni exact.example.org
	head -c 40 h > partial
	# The slow client sends 40 bytes and then nothing.
	spawn socat -u OPEN:partial,ignoreeof "TCP:127.0.0.1:$(edge_port web)"
	send h
	sunk got3
	cmp h got3
	! grep -q why=sni_timeout edge.log
	wait_log 'sni=- alpn=- r=- u=- up=40 down=0 t=1\.[0-9]+s why=sni_timeout$'
}

@test "a listener without upstream closes unmatched names and non-TLS" {
	P1=$(free_port)
	sink "$P1" got1
	conf "web.listen = 127.0.0.1:0
web.sni = mta-sts.* 127.0.0.1:$P1"
	start_edge edge.conf
	grep -q '^edge: route web sni=(other) -> (close)' edge.log
	hello h --sni www.example.org
	run send h
	[ "$output" = "" ]
	wait_log 'sni=www.example.org alpn=- r=- u=- up=[0-9]+ down=0 t=[0-9.]+s why=no_route$'
	printf 'HELO x\r\n' > smtp
	run send smtp
	wait_log 'sni=- alpn=- r=- u=- up=8 down=0 t=[0-9.]+s why=not_tls$'
}

@test "a ClientHello larger than the peek buffer is closed, not routed" {
	four_sinks
	route_conf
	start_edge edge.conf
	# A record header promising 16 KiB of handshake that never ends.
	python3 -c 'import sys; sys.stdout.buffer.write(b"\x16\x03\x01\x40\x00\x01\xff\xff\xff" + b"\x00" * 17000)' > big
	run send big
	wait_log 'why=sni_too_big$'
	[ ! -s got4 ]
}

@test "real TLS: openssl s_client reaches the backend its SNI names" {
	command -v openssl > /dev/null || skip "openssl is not installed"
	for n in mta default; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-nodes -keyout "$n.key" -out "$n.crt" -days 2 \
			-subj "/CN=$n.backend.test" 2> /dev/null
	done
	PA=$(free_port); PB=$(free_port)
	spawn openssl s_server -quiet -accept "127.0.0.1:$PA" -cert mta.crt -key mta.key -www
	spawn openssl s_server -quiet -accept "127.0.0.1:$PB" -cert default.crt -key default.key -www
	wait_listen "$PA"
	wait_listen "$PB"
	conf "web.listen = 127.0.0.1:0
web.sni = mta-sts.* 127.0.0.1:$PA
web.upstream = 127.0.0.1:$PB"
	start_edge edge.conf
	subject() {
		openssl s_client -connect "127.0.0.1:$(edge_port web)" "$@" < /dev/null 2> /dev/null |
			openssl x509 -noout -subject
	}
	run subject -servername MTA-STS.example.com
	[[ "$output" == *"CN = mta.backend.test"* ]]
	run subject -servername www.example.com
	[[ "$output" == *"CN = default.backend.test"* ]]
	run subject -noservername
	[[ "$output" == *"CN = default.backend.test"* ]]
	grep -q 'sni=mta-sts.example.com alpn=[^ ]* r=mta-sts.\*' edge.log
}

# tls_backend NAME PORT [ALPN]: a self-signed openssl s_server for NAME.
tls_backend() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$1.key" -out "$1.crt" -days 2 \
		-subj "/CN=$1.backend.test" 2> /dev/null
	spawn openssl s_server -quiet -accept "127.0.0.1:$2" -cert "$1.crt" \
		-key "$1.key" -www ${3:+-alpn "$3"}
	wait_listen "$2"
}

# subject PORT ARGS...: the certificate subject s_client gets through edge.
subject() {
	local p=$1
	shift
	openssl s_client -connect "127.0.0.1:$p" "$@" < /dev/null 2> /dev/null |
		openssl x509 -noout -subject
}

@test "PROXY per route: HAProxy reads the header a route sends while TLS completes end to end; the route without proxy= sends none" {
	command -v openssl > /dev/null || skip "openssl is not installed"
	PA=$(free_port); PB=$(free_port); PH=$(free_port)
	tls_backend mta "$PA"
	tls_backend default "$PB"
	# HAProxy in front of the mail server's TLS: it reads the header.
	hap_reader "$PH" hap.log "hap ci=%ci cp=%cp" "$PA"
	conf "web.proxy = off
web.listen = 127.0.0.1:0
web.sni = mta-sts.* 127.0.0.1:$PH proxy=v2
web.upstream = 127.0.0.1:$PB"
	start_edge edge.conf
	grep -q "^edge: route web sni=mta-sts.\* -> 127.0.0.1:$PH proxy=v2$" edge.log
	grep -q "^edge: route web sni=(other) -> 127.0.0.1:$PB sni_timeout=5000ms proxy=off$" edge.log
	run subject "$(edge_port web)" -servername mta-sts.example.com
	[[ "$output" == *"CN = mta.backend.test"* ]]
	# The default route sent no header: s_server would have failed TLS.
	run subject "$(edge_port web)" -servername www.example.com
	[[ "$output" == *"CN = default.backend.test"* ]]
	wait_log "^hap ci=127.0.0.1 cp=[0-9]+$" hap.log
	cp=$(close_lines | sed -n 's/.* c=127\.0\.0\.1:\([0-9]*\) sni=mta-sts\.example\.com .*/\1/p')
	grep -qx "hap ci=127.0.0.1 cp=$cp" hap.log
}

@test "routes on SNI and ALPN: s_client -alpn acme-tls/1 and -alpn h2 with the same name reach different backends" {
	command -v openssl > /dev/null || skip "openssl is not installed"
	PA=$(free_port); PB=$(free_port); PC=$(free_port)
	tls_backend acme "$PA" acme-tls/1
	tls_backend web "$PB" h2,http/1.1
	tls_backend other "$PC"
	conf "web.listen = 127.0.0.1:0
web.sni = mail.example.com 127.0.0.1:$PA alpn=acme-tls/1 proxy=off
web.sni = *.example.com    127.0.0.1:$PB alpn=h2,http/1.1
web.upstream = 127.0.0.1:$PC"
	start_edge edge.conf
	p=$(edge_port web)
	run subject "$p" -servername mail.example.com -alpn acme-tls/1
	[[ "$output" == *"CN = acme.backend.test"* ]]
	run subject "$p" -servername mail.example.com -alpn h2
	[[ "$output" == *"CN = web.backend.test"* ]]
	run subject "$p" -servername mail.example.com -alpn foo,http/1.1
	[[ "$output" == *"CN = web.backend.test"* ]]
	# No protocol the routes list, or none at all: the default.
	run subject "$p" -servername mail.example.com -alpn foo
	[[ "$output" == *"CN = other.backend.test"* ]]
	run subject "$p" -servername mail.example.com
	[[ "$output" == *"CN = other.backend.test"* ]]
	wait_log "sni=mail\.example\.com alpn=acme-tls/1 r=mail\.example\.com u=127\.0\.0\.1:$PA "
	wait_log "sni=mail\.example\.com alpn=h2 r=\*\.example\.com u=127\.0\.0\.1:$PB "
	wait_log "sni=mail\.example\.com alpn=foo r=default u=127\.0\.0\.1:$PC "
	wait_log "sni=mail\.example\.com alpn=- r=default u=127\.0\.0\.1:$PC "
}

@test "ALPN malformed every way is closed as not TLS, never routed; a protocol is never written raw; ECH is visible" {
	four_sinks
	conf "web.listen = 127.0.0.1:0
web.sni = mta-sts.* 127.0.0.1:$P1
web.sni = *.example.net 127.0.0.1:$P2 alpn=h2"
	start_edge edge.conf
	# The ALPN extension's body: an empty list, an empty name, a name past
	# the list, a list past the extension, a name twice, bytes after it.
	for h in 0000 000100 0003056832 0009026832 0006026832026832 000302683200; do
		hello "bad.$h" --sni mta-sts.example.com --alpn-hex "$h"
		run send "bad.$h"
	done
	# Each send returned once edge closed, after writing its close line.
	[ "$(close_lines | grep -c 'sni=- alpn=- r=- u=- .*why=not_tls$')" -eq 6 ]
	[ ! -s got1 ]
	# A protocol with a space, '=', '"', '\', a newline and a byte outside
	# ASCII is escaped: it cannot forge a field or a line.
	hello evil --sni mta-sts.example.com --alpn-hex 000c0b69207a3d31ff22222e0a5c
	run send evil
	wait_log 'sni=mta-sts\.example\.com alpn=i\\x20z\\x3d1\\xff\\x22\\x22\.\\x0a\\x5c r=mta-sts\.\* '
	! grep -q ' z=1' edge.log
	! grep -v '^edge: ' edge.log
	hello ech --sni a.example.net --alpn h2 --ech
	run send ech
	wait_log 'sni=a\.example\.net alpn=h2 ech=1 r=\*\.example\.net '
}
