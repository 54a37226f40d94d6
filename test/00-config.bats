#!/usr/bin/env bats
# edge -t: what an operator sees for a good file and for each kind of
# mistake (file:line: key: problem), exit codes, ${VAR:-default}.

load helpers

@test "edge -t accepts the sample config, lists its listeners, exits 0" {
	run --separate-stderr "$EDGE" -t -c "$T/../edge.conf"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"edge: listener smtp on [::]:25 (v4+v6) -> stalwart.tail7b1641.ts.net:25 proxy=v2"* ]]
	[[ "$stderr" == *"edge.conf: ok, 6 listeners"* ]]
	[[ "$stderr" == *"edge: route web sni=mta-sts.* -> stalwart.tail7b1641.ts.net:443"* ]]
	[[ "$stderr" == *"edge: route web sni=(other) -> 127.0.0.1:8443 sni_timeout=5000ms"* ]]
}

@test "\${VAR} from the environment replaces the default" {
	STALWART=mail.internal.example run --separate-stderr "$EDGE" -t -c "$T/../edge.conf"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"-> mail.internal.example:993 proxy=v2"* ]]
	[[ "$stderr" != *stalwart.tail7b1641* ]]
}

@test "an unset \${VAR} without a default is an error naming it" {
	conf 'smtp.listen = :2525
smtp.upstream = ${EDGE_NOT_SET_ANYWHERE}:25'
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = 'edge: edge.conf:2: smtp.upstream: ${EDGE_NOT_SET_ANYWHERE} is not set (write ${EDGE_NOT_SET_ANYWHERE:-default} to give a default)' ]
}

@test "a bad duration names file, line, key and value" {
	conf '# mail
smtp.listen     = :2525
smtp.upstream   = mx.example:25
smtp.idle_timeout = 30x'
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = 'edge: edge.conf:4: smtp.idle_timeout: "30x" is not a duration (e.g. 30m, 1800s, 500ms; at most 7 days)' ]
}

@test "unknown key, duplicate key, bad port: each refused with its line" {
	conf 'smtp.listen = :2525
smtp.upstream = mx.example:25
smtp.proxi = v2'
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[[ "$stderr" == 'edge: edge.conf:3: smtp.proxi: unknown listener key (known: listen, upstream,'* ]]

	conf 'smtp.listen = :2525
smtp.upstream = mx.example:25
smtp.listen = :2526'
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = 'edge: edge.conf:3: smtp.listen: already set on line 1' ]

	conf 'smtp.listen = :65536
smtp.upstream = mx.example:25'
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = 'edge: edge.conf:1: smtp.listen: "65536" is not a port (0-65535)' ]
}

@test "a listener without upstream, and two listeners on one address" {
	conf 'smtp.listen = :2525
smtp.proxy = v2'
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = 'edge: edge.conf:1: smtp.upstream: not set (a listener needs listen and upstream, or sni routes)' ]

	conf 'smtp.listen = :2525
smtp.upstream = mx.example:25
imap.listen = 127.0.0.1:2525
imap.upstream = mx.example:143'
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = 'edge: edge.conf:3: imap.listen: "127.0.0.1:2525" is already used by smtp (line 1)' ]
}

@test "an upstream that is edge's own listen address is refused: it would loop" {
	# The sample pointed at this box itself: :25 listens on 127.0.0.1 too.
	STALWART=127.0.0.1 run --separate-stderr "$EDGE" -t -c "$T/../edge.conf"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *'edge.conf:27: smtp.upstream: ":25" (127.0.0.1:25) is where smtp listens (line 26): every connection would come back into edge' ]]
	STALWART=::1 run --separate-stderr "$EDGE" -t -c "$T/../edge.conf"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *'edge.conf:27: smtp.upstream: ":25" ([::1]:25) is where smtp listens (line 26): every connection would come back into edge' ]]

	# An sni route, and another listener's address.
	conf 'web.listen = 0.0.0.0:4443
web.upstream = 127.0.0.1:8443
web.sni = mta-sts.* 127.0.0.9:4443'
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = 'edge: edge.conf:3: web.sni: "127.0.0.9:4443" (127.0.0.9:4443) is where web listens (line 1): every connection would come back into edge' ]
	conf 'a.listen = 127.0.0.1:2525
a.upstream = 127.0.0.1:2526
b.listen = 127.0.0.1:2526
b.upstream = 127.0.0.1:2525'
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = 'edge: edge.conf:2: a.upstream: "127.0.0.1:2526" (127.0.0.1:2526) is where b listens (line 3): every connection would come back into edge' ]

	# Not a loop: another address on the same port, or another port.
	conf 'a.listen = 127.0.0.1:2525
a.upstream = 127.0.0.2:2525
b.listen = 0.0.0.0:2526
b.upstream = [::1]:2526
c.listen = [::]:2527
c.upstream = 127.0.0.1:2527
d.listen = :2528
d.upstream = 127.0.0.1:2529'
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 0 ]
}

@test "upstream_host writes the host once; :PORT upstreams use it" {
	conf 'upstream_host = ${MAILHOST:-mx.example}
smtp.listen = 127.0.0.1:2525
smtp.upstream = :25
imap.listen = 127.0.0.1:1143
imap.upstream = :143'
	MAILHOST=10.9.8.7 run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"listener smtp on 127.0.0.1:2525 -> 10.9.8.7:25 "* ]]
	[[ "$stderr" == *"listener imap on 127.0.0.1:1143 -> 10.9.8.7:143 "* ]]
}

@test "a missing file and a bad flag exit 2; -h exits 0" {
	run --separate-stderr "$EDGE" -t -c ./nope.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = 'edge: ./nope.conf: No such file or directory' ]
	run "$EDGE" -q
	[ "$status" -eq 2 ]
	run "$EDGE" -h
	[ "$status" -eq 0 ]
	[[ "$output" == *"usage: edge"* ]]
}

@test "a config error at start-up stops edge with exit 2 before binding" {
	conf 'smtp.listen = 127.0.0.1:0
smtp.upstream = mx.example:25
max_conns = lots'
	run --separate-stderr "$EDGE" -c edge.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = 'edge: edge.conf:3: max_conns: "lots" is not a number from 1 to 1000000' ]
}
