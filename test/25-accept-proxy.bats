#!/usr/bin/env bats
# Accepting PROXY v1/v2 from a trusted balancer: real senders in front
# (HAProxy send-proxy-v2 and send-proxy, nginx stream proxy_protocol), real
# readers behind (HAProxy accept-proxy, the exact bytes at a sink); the
# client the header names is the client everywhere; untrusted, slow and
# malformed headers are refused or closed, and edge keeps serving.

load helpers

# hap_back PORT: HAProxy reading PROXY on PORT, logging the client it was
# told of to hap-back.log.
hap_back() {
	hap_reader "$1" hap-back.log "hap ci=%ci cp=%cp bytes=%U"
}

# lb_edge UP PROXY ACCEPT [LINES]: edge with listener lb reading ACCEPT
# headers from 127.0.0.1 and relaying to 127.0.0.1:UP with PROXY, plus
# LINES of config.
lb_edge() {
	conf "lb.listen = 127.0.0.1:0
lb.accept_proxy = $3
lb.accept_proxy_from = 127.0.0.1
lb.upstream = 127.0.0.1:$1
lb.proxy = $2
${4:-}"
	start_edge edge.conf
}

# hap_front PORT EDGEPORT send-proxy|send-proxy-v2: a balancer on
# 127.0.0.1:PORT and [::1]:PORT sending PROXY to edge.
hap_front() {
	cat > hap-front.cfg <<-EOF2
		defaults
		  mode tcp
		  timeout connect 5s
		  timeout client 10s
		  timeout server 10s
		listen lb
		  bind 127.0.0.1:$1
		  bind [::1]:$1
		  server edge 127.0.0.1:$2 $3
	EOF2
	spawn haproxy -db -f hap-front.cfg
	wait_listen "$1"
}

pp() {
	python3 "$T/lib/pp.py" "$@"
}

@test "behind HAProxy send-proxy-v2 and send-proxy, the server behind edge sees the original client, IPv4 and IPv6" {
	hb=$(free_port)
	hap_back "$hb"
	conf "lb2.listen = 127.0.0.1:0
lb2.accept_proxy = v2
lb2.accept_proxy_from = 127.0.0.1
lb2.upstream = 127.0.0.1:$hb
lb2.proxy = v2
lb1.listen = 127.0.0.1:0
lb1.accept_proxy = v1
lb1.accept_proxy_from = 127.0.0.1
lb1.upstream = 127.0.0.1:$hb
lb1.proxy = v1"
	start_edge edge.conf
	f2=$(free_port)
	hap_front "$f2" "$(edge_port lb2)" send-proxy-v2
	f1=$(free_port)
	cp hap-front.cfg hap-front2.cfg
	cat > hap-front1.cfg <<-EOF2
		defaults
		  mode tcp
		  timeout connect 5s
		  timeout client 10s
		  timeout server 10s
		listen lb1
		  bind 127.0.0.1:$f1
		  server edge 127.0.0.1:$(edge_port lb1) send-proxy
	EOF2
	spawn haproxy -db -f hap-front1.cfg
	wait_listen "$f1"
	printf 'four' | socat -u - "TCP4:127.0.0.1:$f2,bind=127.0.0.2"
	printf 'sixsix' | socat -u - "TCP6:[::1]:$f2"
	printf 'one' | socat -u - "TCP4:127.0.0.1:$f1,bind=127.0.0.3"
	wait_log "^hap ci=127.0.0.2 " hap-back.log
	wait_log "^hap ci=::1 " hap-back.log
	wait_log "^hap ci=127.0.0.3 " hap-back.log
	# Both hops carried the client's own port: edge's log names it, with
	# the balancer in via=.
	wait_log 'close l=lb2 c=\[::1\]:'
	wait_log 'close l=lb1 c=127\.0\.0\.3:'
	c4=$(close_lines | sed -n 's/.* l=lb2 c=127\.0\.0\.2:\([0-9]*\) via=127\.0\.0\.1:[0-9]* .*/\1/p')
	c6=$(close_lines | sed -n 's/.* l=lb2 c=\[::1\]:\([0-9]*\) via=127\.0\.0\.1:[0-9]* .*/\1/p')
	c1=$(close_lines | sed -n 's/.* l=lb1 c=127\.0\.0\.3:\([0-9]*\) via=127\.0\.0\.1:[0-9]* .*/\1/p')
	[ -n "$c4" ] && [ -n "$c6" ] && [ -n "$c1" ]
	grep -qx "hap ci=127.0.0.2 cp=$c4 bytes=4" hap-back.log
	grep -qx "hap ci=::1 cp=$c6 bytes=6" hap-back.log
	grep -qx "hap ci=127.0.0.3 cp=$c1 bytes=3" hap-back.log
}

@test "behind nginx stream proxy_protocol (accept_proxy = any), the server behind edge sees the original client" {
	[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] ||
		skip "nginx with the stream module is not installed"
	hb=$(free_port)
	hap_back "$hb"
	conf "lb.listen = 127.0.0.1:0
lb.accept_proxy = any
lb.accept_proxy_from = 127.0.0.0/8
lb.upstream = 127.0.0.1:$hb
lb.proxy = v2"
	start_edge edge.conf
	ng=$(free_port)
	mkdir -p nginx
	cat > nginx/nginx.conf <<-EOF2
		load_module /usr/lib/nginx/modules/ngx_stream_module.so;
		daemon off;
		worker_processes 1;
		pid $BATS_TEST_TMPDIR/nginx/nginx.pid;
		error_log $BATS_TEST_TMPDIR/nginx/error.log;
		events { worker_connections 64; }
		stream {
		  server {
		    listen 127.0.0.1:$ng;
		    proxy_pass 127.0.0.1:$(edge_port lb);
		    proxy_protocol on;
		  }
		}
	EOF2
	spawn nginx -p "$BATS_TEST_TMPDIR/nginx" -e "$BATS_TEST_TMPDIR/nginx/error.log" -c "$BATS_TEST_TMPDIR/nginx/nginx.conf"
	wait_listen "$ng"
	printf 'hello' | socat -u - "TCP4:127.0.0.1:$ng,bind=127.0.0.5"
	wait_log "^hap ci=127.0.0.5 .* bytes=5$" hap-back.log
	wait_log 'close l=lb c=127\.0\.0\.5:[0-9]+ via=127\.0\.0\.1:[0-9]+ .*why=eof'
}

@test "allow/deny and max_conns_per_ip act on the client the header names, not the balancer" {
	hb=$(free_port)
	banner "$hb" 220-up
	conf "lb.listen = 127.0.0.1:0
lb.accept_proxy = v2
lb.accept_proxy_from = 127.0.0.1
lb.deny = 127.0.0.3
lb.max_conns_per_ip = 1
lb.upstream = 127.0.0.1:$hb"
	start_edge edge.conf
	f=$(free_port)
	hap_front "$f" "$(edge_port lb)" send-proxy-v2
	# One client holds its one connection open...
	spawn socat -u "TCP4:127.0.0.1:$f,bind=127.0.0.2" OPEN:held.out,creat
	wait_for 10 grep -q 220-up held.out
	# ...its second is refused, another client is served, a denied one
	# is refused: all three come from the same balancer.
	run socat -u "TCP4:127.0.0.1:$f,bind=127.0.0.2" -
	wait_log 'close l=lb c=127\.0\.0\.2:[0-9]+ via=127\.0\.0\.1:[0-9]+ .*why=per_ip_limit'
	out=$(timeout 5 socat -u "TCP4:127.0.0.1:$f,bind=127.0.0.4" - | head -n 1 || true)
	[ "$out" = 220-up ]
	run socat -u "TCP4:127.0.0.1:$f,bind=127.0.0.3" -
	wait_log 'close l=lb c=127\.0\.0\.3:[0-9]+ via=127\.0\.0\.1:[0-9]+ .*why=denied'
	! close_lines | grep -q 'c=127\.0\.0\.4.*why=\(denied\|per_ip_limit\)'
}

@test "a scan through the balancer: the close lines of clients refused once their header names them are rate-limited, and counted" {
	hb=$(free_port) st=$(free_port)
	lb_edge "$hb" off v2 "lb.deny = 203.0.113.0/24
status.listen = 127.0.0.1:$st"
	# 60 clients of a denied network, one after another, through one
	# balancer (127.0.0.1): each a PROXY v2 header naming 203.0.113.7.
	pp "$(edge_port lb)" v2 --times 60 > results
	[ "$(grep -c . results)" -eq 60 ]
	wait_log '^edge: refused suppressed=[0-9]+ lines in [0-9.]+s \(at most 10 a second\)$' edge.log 5
	shown=$(grep -c '^edge: close l=lb c=203\.0\.113\.7:40000 via=127\.0\.0\.1:[0-9]* .*why=denied$' edge.log)
	hidden=$(sed -n 's/^edge: refused suppressed=\([0-9]*\) .*/\1/p' edge.log |
		awk '{ s += $1 } END { print s + 0 }')
	[ "$((shown + hidden))" -eq 60 ]
	[ "$shown" -le 20 ]
	# The counters count every one.
	curl -fsS "http://127.0.0.1:$st/metrics" |
		grep -q '^edge_connections_refused_total{listener="lb",reason="denied"} 60$'
	kill -0 "$EDGE_PID"
}

@test "a connection from outside accept_proxy_from is refused before any read" {
	up=$(free_port)
	sink "$up" up.bin
	conf "lb.listen = 127.0.0.1:0
lb.accept_proxy = v2
lb.accept_proxy_from = 127.0.0.9 10.0.0.0/8
lb.upstream = 127.0.0.1:$up"
	start_edge edge.conf
	run pp "$(edge_port lb)" v2 hello --from 127.0.0.1
	[[ "$output" == "reset 0" || "$output" == "eof 0" ]]
	wait_log '^edge: close l=lb c=127\.0\.0\.1:[0-9]+ sni=- r=- u=- up=0 down=0 t=0\.000s why=proxy_untrusted$'
	# Nothing was relayed: the sink still waits for its one connection.
	[ ! -s up.bin ]
	listening "$up"
}

@test "a header sent one byte at a time works, and the bytes after it go upstream behind edge's own header" {
	up=$(free_port)
	sink "$up" up.bin
	lb_edge "$up" v1 v2
	run pp "$(edge_port lb)" v2 'EHLO client.example' --bytewise
	[ "$output" = "eof 0" ]
	sunk up.bin
	[ "$(cat up.bin)" = "$(printf 'PROXY TCP4 203.0.113.7 198.51.100.2 40000 25\r\nEHLO client.example')" ]
	# up= counts the client's 19 bytes, not the balancer's header.
	wait_log 'close l=lb c=203\.0\.113\.7:40000 via=127\.0\.0\.1:[0-9]+ .*up=19 .*why=eof'
}

@test "TCP6 and v1 headers name the client; a v2 header is refused on a v1 listener" {
	up=$(free_port)
	sink "$up" up.bin
	up2=$(free_port)
	sink "$up2" up2.bin
	conf "six.listen = 127.0.0.1:0
six.accept_proxy = any
six.accept_proxy_from = 127.0.0.1
six.upstream = 127.0.0.1:$up
six.proxy = v2
one.listen = 127.0.0.1:0
one.accept_proxy = v1
one.accept_proxy_from = 127.0.0.1
one.upstream = 127.0.0.1:$up2
one.proxy = v1"
	start_edge edge.conf
	run pp "$(edge_port six)" v2-6 x
	[ "$output" = "eof 0" ]
	sunk up.bin
	# edge's own v2 header: TCP6, 2001:db8::7 port 40000 to 2001:db8::1:25.
	[ "$(od -An -tx1 -N52 up.bin | tr -d ' \n')" = "0d0a0d0a000d0a515549540a212100242001$(printf '0db8%024x' 7)20010db8$(printf '%024x' 1)9c400019" ]
	run pp "$(edge_port one)" v1 y
	[ "$output" = "eof 0" ]
	sunk up2.bin
	[ "$(cat up2.bin)" = "$(printf 'PROXY TCP4 203.0.113.8 198.51.100.2 40001 25\r\ny')" ]
	run pp "$(edge_port one)" v2 z
	wait_log 'close l=one c=127\.0\.0\.1:[0-9]+ .*why=proxy_bad'
}

@test "a LOCAL header (a health check) is relayed with the balancer's own address" {
	up=$(free_port)
	sink "$up" up.bin
	lb_edge "$up" v1 v2
	p=$(edge_port lb)
	run pp "$p" v2-local ping
	[ "$output" = "eof 0" ]
	sunk up.bin
	[[ "$(cat up.bin)" =~ ^PROXY\ TCP4\ 127\.0\.0\.1\ 127\.0\.0\.1\ [0-9]+\ $p$'\r'$'\n'ping$ ]]
}

@test "a stalled header is closed at accept_proxy_timeout while others are served" {
	up=$(free_port)
	banner "$up" 220-up
	lb_edge "$up" off v2 "lb.accept_proxy_timeout = 1s"
	p=$(edge_port lb)
	spawn python3 "$T/lib/pp.py" "$p" v2-half
	run pp "$p" v2 quit
	[[ "$output" == "eof "* ]]
	[ "${output#eof }" -gt 0 ]
	wait_log 'close l=lb c=203\.0\.113\.7:40000 .*why=eof'
	wait_log 'close l=lb c=127\.0\.0\.1:[0-9]+ sni=- r=- u=- up=0 down=0 t=1\.[0-9]+s why=proxy_timeout' edge.log 5
}

@test "garbage, a v1 line ending in a bare LF and a v2 length past the cap are closed at once; edge keeps serving" {
	up=$(free_port)
	banner "$up" 220-up
	lb_edge "$up" off any "lb.accept_proxy_timeout = 20s"
	p=$(edge_port lb)
	for k in garbage v1-lf v2-huge; do
		run timeout 5 python3 "$T/lib/pp.py" "$p" "$k" --stall
		[[ "$output" == "eof 0" || "$output" == "reset 0" ]]
	done
	[ "$(close_lines | grep -c 'why=proxy_bad')" -eq 3 ]
	# None waited for the timeout.
	! close_lines | grep 'why=proxy_bad' | grep -qv 't=0\.'
	run pp "$p" v1 quit
	[[ "$output" == "eof "* ]] && [ "${output#eof }" -gt 0 ]
}

@test "accept_proxy needs accept_proxy_from, and edge -t shows both" {
	conf "lb.listen = 127.0.0.1:2525
lb.accept_proxy = v2
lb.upstream = mx.example:25"
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = "edge: edge.conf:2: lb.accept_proxy: on, but lb.accept_proxy_from is not set (edge reads a PROXY header only from the balancers it names)" ]
	conf "lb.listen = 127.0.0.1:2525
lb.accept_proxy_from = 10.0.0.0/8
lb.upstream = mx.example:25"
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 2 ]
	[ "$stderr" = "edge: edge.conf:2: lb.accept_proxy_from: set, but lb.accept_proxy is off" ]
	conf "accept_proxy_timeout = 3s
lb.listen = 127.0.0.1:2525
lb.accept_proxy = any
lb.accept_proxy_from = 10.0.0.0/8 192.0.2.10
lb.upstream = mx.example:25"
	run --separate-stderr "$EDGE" -t -c edge.conf
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"listener lb on 127.0.0.1:2525 -> mx.example:25 proxy=off prefer=ipv4 connect_timeout=5000ms idle_timeout=1800000ms accept_proxy=any accept_proxy_from=2 accept_proxy_timeout=3000ms"* ]]
}
