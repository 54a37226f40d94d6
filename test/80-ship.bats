#!/usr/bin/env bats
# Shipping: the static musl binary run the way a FROM scratch container
# runs it, make install, the systemd unit, the Dockerfile's promises.

load helpers

REPO=$BATS_TEST_DIRNAME/..

need_musl() {
	command -v musl-gcc > /dev/null ||
		skip "needs musl-gcc (apt-get install musl-tools) to build the static binary"
}

@test "static binary in an empty root: resolves from /etc/hosts, PROXY v2, uid 65534, stops on SIGTERM" {
	need_root
	need_musl
	make -s -C "$REPO" static STATIC="$BATS_TEST_TMPDIR/edge.static" > /dev/null
	# Static: no program interpreter, no shared libraries.
	! readelf -l edge.static | grep -q INTERP
	up=$(free_port) st=$(free_port) port=$(free_port)
	# Exactly what a scratch image holds, plus the two files Docker injects.
	mkdir -p root/etc/edge
	cp edge.static root/edge
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n127.0.0.1\tstalwart.internal\n' > root/etc/hosts
	printf 'nameserver 127.0.0.11\noptions ndots:0\n' > root/etc/resolv.conf
	printf '%s\n' "user = 65534:65534" "status.listen = 127.0.0.1:$st" \
		"upstream_host = \${STALWART:-nowhere.invalid}" \
		"smtp.listen = 127.0.0.1:$port" "smtp.upstream = :$up" \
		"smtp.proxy = v2" > root/etc/edge/edge.conf
	[ "$(find root -type f | wc -l)" -eq 4 ]
	sink "$up" got
	spawn env -i STALWART=stalwart.internal "$(command -v chroot)" root /edge -c /etc/edge/edge.conf 2>> edge.log
	EDGE_PID=$SPAWNED
	wait_log '^edge: start '
	grep -q '^edge: user uid=65534 gid=65534$' edge.log
	grep -Eq '^Uid:\s+65534\s+65534\s+65534\s+65534$' "/proc/$EDGE_PID/status"
	[ "$(readlink "/proc/$EDGE_PID/root")" = "$BATS_TEST_TMPDIR/root" ]
	printf 'EHLO scratch\r\n' | socat -u - "TCP:127.0.0.1:$port,bind=127.0.0.3"
	sunk got
	wait_log "u=127.0.0.1:$up up=14 down=0 .*why=eof$"
	# The header: v2 signature, PROXY TCP4, 12 address bytes, from the
	# client's 127.0.0.3 to the listener; then the client's bytes.
	/usr/bin/python3 - "$port" <<'PY'
import socket, struct, sys
d = open("got", "rb").read()
assert d[:12] == b"\r\n\r\n\x00\r\nQUIT\n", d[:12]
assert d[12:16] == b"\x21\x11\x00\x0c", d[12:16]
src, dst = socket.inet_ntoa(d[16:20]), socket.inet_ntoa(d[20:24])
sport, dport = struct.unpack("!HH", d[24:28])
assert (src, dst, dport) == ("127.0.0.3", "127.0.0.1", int(sys.argv[1])), (src, dst, dport)
assert d[28:] == b"EHLO scratch\r\n", d[28:]
PY
	# The image's HEALTHCHECK, from inside the same empty root.
	chroot root /edge probe "127.0.0.1:$st"
	kill -TERM "$EDGE_PID"
	rc=0
	wait "$EDGE_PID" || rc=$?
	[ "$rc" -eq 0 ]
	grep -q '^edge: stopped closed=0$' edge.log
}

@test "make install honours PREFIX and DESTDIR; systemd-analyze verify accepts the units" {
	command -v systemd-analyze > /dev/null ||
		skip "needs systemd-analyze (apt-get install systemd)"
	make -s -C "$REPO" install DESTDIR="$BATS_TEST_TMPDIR/stage" PREFIX=/opt/edge > /dev/null
	[ -x stage/opt/edge/bin/edge ]
	[ -f stage/opt/edge/share/doc/edge/edge.conf ]
	unit=stage/opt/edge/lib/systemd/system/edge.service
	grep -qx 'ExecStart=/opt/edge/bin/edge -c /etc/edge/edge.conf' "$unit"
	# Installed where its paths are real, the unit verifies cleanly.
	make -s -C "$REPO" install PREFIX="$BATS_TEST_TMPDIR/usr" > /dev/null
	unit=$BATS_TEST_TMPDIR/usr/lib/systemd/system/edge.service
	grep -qx "ExecStart=$BATS_TEST_TMPDIR/usr/bin/edge -c /etc/edge/edge.conf" "$unit"
	run systemd-analyze verify "$unit" "${unit%.service}.socket"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	grep -qx "ExecReload=$BATS_TEST_TMPDIR/usr/bin/edge reload \$MAINPID" "$unit"
	grep -qx 'Type=notify' "$unit"
	grep -qx 'NotifyAccess=all' "$unit"
	grep -qx 'AmbientCapabilities=CAP_NET_BIND_SERVICE' "$unit"
	grep -qx 'DynamicUser=yes' "$unit"
}

@test "Dockerfile: scratch final stage, the mail ports and 443, health check on the status endpoint" {
	df=$REPO/Dockerfile
	[ "$(grep -c '^FROM ' "$df")" -eq 2 ]
	[ "$(grep '^FROM ' "$df" | tail -n 1)" = "FROM scratch" ]
	grep -qx 'EXPOSE 25 465 587 143 993 443' "$df"
	grep -qx 'STOPSIGNAL SIGTERM' "$df"
	grep -q 'CMD \["/edge", "probe", "127.0.0.1:9901"\]' "$df"
	# The build stage copies every source file make static compiles.
	copied=$(sed -n '/^COPY Makefile/,/\.\/$/p' "$df" | tr -d '\\')
	for f in edge.h $(sed -n 's/^SRC *= *//p' "$REPO/Makefile"); do
		[[ " $copied " == *" $f "* ]] || { echo "not copied: $f"; false; }
	done
	# Every port the sample config listens on is exposed.
	for p in $(sed -n 's/^[a-z_-]*\.listen *= *:\([0-9]*\).*/\1/p' "$REPO/edge.conf"); do
		grep -q "^EXPOSE .*\b$p\b" "$df"
	done
	# The config the build stage writes passes edge -t and drops root.
	cp "$REPO/edge.conf" image.conf
	sed -n "s/.*printf '\(.*\)' >> edge.conf.*/\1/p" "$df" | xargs -0 printf >> image.conf
	run "$EDGE" -t -c image.conf
	[ "$status" -eq 0 ]
	grep -qx 'user = 65534:65534' image.conf
	grep -qx 'status.listen = 127.0.0.1:9901' image.conf
	# Compose takes the upstream name from .env.
	grep -q 'STALWART: ${STALWART:?' "$REPO/docker-compose.yml"
	grep -q '^STALWART=' "$REPO/.env.example"
}
