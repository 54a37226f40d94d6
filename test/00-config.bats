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
