#!/usr/bin/env bats
# The splice(2) relay: the bytes of an established connection move
# through a pipe per direction (edge_spliced_bytes_total says so), pipes
# are held only while bytes are in flight, the pool is bounded and, once
# it is used up, connections relay through buffers.  The rest of the suite
# runs on this path too (splice = auto is the default); `make
# test-nosplice` runs it all again with the path compiled out.

load helpers

setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
	: > pids
	# A build without splice has nothing to show here.
	if [ -n "${EDGE_NO_SPLICE:-}" ]; then
		skip "built with -DNO_SPLICE"
	fi
}

# metric NAME: a sample of the status endpoint (NAME with its labels).
metric() {
	curl -s "http://127.0.0.1:$STATUS/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

relay_conf() {
	STATUS=$(free_port)
	conf "status.listen = 127.0.0.1:$STATUS
$2
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$1"
}

@test "splice: 20 MB each way at once go through pipes, byte for byte; counts exact; no pipe held after" {
	up=$(free_port)
	head -c 20000000 /dev/urandom > a
	head -c 20000000 /dev/urandom > b
	spawn socat -b 262144 -t 30 "TCP-LISTEN:$up,bind=127.0.0.1,reuseaddr" OPEN:b\!\!CREATE:got-a
	writes got-a
	wait_listen "$up"
	relay_conf "$up"
	start_edge edge.conf
	socat -b 262144 -t 30 OPEN:a\!\!CREATE:got-b "TCP:127.0.0.1:$(edge_port smtp)"
	wait_log 'why=eof'
	sunk got-a
	cmp a got-a
	cmp b got-b
	close_lines | grep -q ' up=20000000 down=20000000 '
	# A stream goes through a pipe once a read comes big (16 KB): all but
	# the first reads of each direction.
	spliced=$(metric edge_spliced_bytes_total)
	[ "$spliced" -gt 36000000 ] && [ "$spliced" -le 40000000 ]
	[ "$(metric 'edge_bytes_total{listener="smtp",direction="up"}')" -eq 20000000 ]
	[ "$(metric 'edge_pipes{state="busy"}')" -eq 0 ]
	grep -Eq '^edge: start .* pipes=256 ' edge.log
}

@test "splice = off: the same bytes through buffers, none through a pipe" {
	up=$(free_port)
	head -c 5000000 /dev/urandom > sent
	sink "$up" got
	relay_conf "$up" "splice = off"
	start_edge edge.conf
	socat -u OPEN:sent "TCP:127.0.0.1:$(edge_port smtp)"
	wait_log 'why=eof'
	sunk got
	cmp sent got
	[ "$(metric edge_spliced_bytes_total)" -eq 0 ]
	# A reload turns it on for new connections.
	sed -i 's/^splice = off$/splice = auto/' edge.conf
	kill -HUP "$EDGE_PID"
	wait_log '^edge: reload ok'
	sink "$up" got2
	socat -b 262144 -u OPEN:sent "TCP:127.0.0.1:$(edge_port smtp)"
	wait_for 10 bash -c "[ \$(grep -c 'why=eof' edge.log) -eq 2 ]"
	sunk got2
	cmp sent got2
	[ "$(metric edge_spliced_bytes_total)" -gt 0 ]
}

@test "splice: what edge handles itself (the PROXY header, bytes sent before it) arrives first and in order" {
	up=$(free_port)
	head -c 3000000 /dev/urandom > sent
	sink "$up" got
	relay_conf "$up" ""
	printf 'smtp.proxy = v2\n' >> edge.conf
	start_edge edge.conf
	socat -u OPEN:sent "TCP:127.0.0.1:$(edge_port smtp)"
	wait_log 'why=eof'
	sunk got
	# The header, then every byte, in order.
	head -c 12 got | cmp - <(printf '\r\n\r\n\0\r\nQUIT\n')
	hlen=$((16 + $(od -An -tu1 -j14 -N1 got) * 256 + $(od -An -tu1 -j15 -N1 got)))
	tail -c +$((hlen + 1)) got | cmp - sent
	close_lines | grep -q ' up=3000000 down=0 '
}

@test "splice: idle connections and small messages hold no pipe; a stalled bulk reader holds one, bounded, and the stream resumes intact" {
	up=$(free_port)
	spawn "$T/../bench/load" serve "$up" echo
	wait_listen "$up"
	relay_conf "$up"
	start_edge edge.conf
	port=$(edge_port smtp)
	cat > idle.py <<'PY'
import socket, sys, time
held = []
for i in range(100):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"hello %d\n" % i)
    held.append(s)
for i, s in enumerate(held):
    assert s.recv(100) == b"hello %d\n" % i
open("ready", "w").close()
time.sleep(60)
PY
	spawn python3 idle.py "$port"
	wait_for 20 test -e ready
	[ "$(metric edge_connections_active'{listener="smtp"}')" -eq 100 ]
	[ "$(metric 'edge_pipes{state="busy"}')" -eq 0 ]
	# A few bytes at a time are cheaper through read() and write().
	[ "$(metric edge_spliced_bytes_total)" -eq 0 ]
	# A reader that stops: edge holds a pipe with bytes in it (no more than
	# a pipe takes), then delivers all once it reads again.
	# 80 MB: more than every socket buffer on the way can hold (loopback
	# grows each to a few MB).
	head -c 80000000 /dev/urandom > sent
	cat > stall.py <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
data = open("sent", "rb").read()
s.setblocking(False)
sent = 0
t = time.time()
while sent < len(data) and time.time() - t < 3:
    try:
        sent += s.send(data[sent:sent + 65536])
    except BlockingIOError:
        time.sleep(0.01)
open("stalled", "w").write(str(sent))
time.sleep(2)
s.setblocking(True)
got = bytearray()
import threading
def rest():
    s.sendall(data[sent:])
    s.shutdown(socket.SHUT_WR)
th = threading.Thread(target=rest); th.start()
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    got += d
th.join()
open("echoed.part", "wb").write(got)
import os
os.rename("echoed.part", "echoed")
PY
	spawn python3 stall.py "$port"
	wait_for 20 test -s stalled
	# Stuck with bytes to send: edge has stopped reading, not buffered it.
	[ "$(cat stalled)" -lt 80000000 ]
	busy=$(metric 'edge_pipes{state="busy"}')
	[ "$busy" -ge 1 ] && [ "$busy" -le 2 ]
	wait_for 30 test -s echoed
	cmp sent echoed
	wait_for 10 bash -c "[ \$(curl -s http://127.0.0.1:$STATUS/metrics | awk '\$1 == \"edge_pipes{state=\\\"busy\\\"}\" { print \$2 }') -eq 0 ]"
}

@test "splice: the pool is bounded; 300 clients that stop reading hold at most its 256 pipes and a new client is still relayed" {
	up=$(free_port)
	# Small socket buffers on every side (the source's own, edge's by
	# socket_buffer, the clients' in stuck.py): with the kernel's autotuned
	# ones, 300 stalled downloads hold several GB and reach the host's TCP
	# memory limit (tcp_mem), after which every transfer crawls.
	spawn python3 "$T/lib/source.py" "$up" 65536
	wait_listen "$up"
	up2=$(free_port)
	sink "$up2" got
	STATUS=$(free_port)
	conf "max_conns = 400
socket_buffer = 64k
status.listen = 127.0.0.1:$STATUS
dl.listen = 127.0.0.1:0
dl.upstream = 127.0.0.1:$up
ok.listen = 127.0.0.1:0
ok.upstream = 127.0.0.1:$up2"
	start_edge edge.conf
	# Each download runs for 2 MB (long enough to go through a pipe), then
	# its client stops reading.
	spawn /usr/bin/python3 "$T/lib/stuck.py" "$(edge_port dl)" 300 65536 2000000
	wait_for 90 test -e ready
	# The streams that stalled in a pipe hold one each, never more than
	# the pool (which stream stalls in a pipe and which in a buffer depends
	# on its last read: on a quiet machine all 256 pipes are taken).
	[ "$(metric 'edge_pipes{state="max"}')" -eq 256 ]
	busy=$(metric 'edge_pipes{state="busy"}')
	echo "pipes busy: $busy"
	[ "$busy" -ge 1 ] && [ "$busy" -le 256 ]
	[ "$(metric edge_connections_active'{listener="dl"}')" -eq 300 ]
	head -c 3000000 /dev/urandom > data
	timeout 30 socat -u OPEN:data "TCP:127.0.0.1:$(edge_port ok)"
	wait_log "^edge: close l=ok .* up=3000000 down=0 .*why=eof$" edge.log 30
	sunk got
	cmp data got
	[ "$(metric 'edge_pipes{state="busy"}')" -le 256 ]
}

@test "splice: a low open-file limit leaves fewer pipes, not fewer connections" {
	up=$(free_port)
	banner "$up" "220 hi"
	STATUS=$(free_port)
	conf "max_conns = 12
status.listen = 127.0.0.1:$STATUS
smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$up"
	start_edge edge.conf prlimit --nofile=80:80
	# 80 fds: 24 for the connections, 49 spare (3 stdio, 4 pipes, 1
	# listener, 32, 9 status), 7 left: 3 pipe pairs.
	grep -Eq '^edge: start .* max_conns=12 pipes=3 ' edge.log
	! grep -q 'lowered' edge.log
	head -c 2000000 /dev/urandom > sent
	for i in 1 2 3 4 5 6; do
		spawn bash -c "(sleep 1; cat sent) | socat -t 10 - TCP:127.0.0.1:$(edge_port smtp) > got$i"
	done
	for i in 1 2 3 4 5 6; do
		wait_for 20 bash -c "[ \$(stat -c %s got$i) -ge 2000007 ]"
		cmp <(printf '220 hi\n'; cat sent) got$i
	done
}
