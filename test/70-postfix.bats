#!/usr/bin/env bats
# One SMTP transaction end to end: swaks -> edge (proxy = v2) -> Postfix
# reading PROXY v2 (smtpd_upstream_proxy_protocol = haproxy).  Postfix
# runs from a private config directory as PID 1 of its own PID namespace.

load helpers

start_postfix() {
	local d=$BATS_TEST_TMPDIR/pf
	need_root
	command -v postfix > /dev/null || skip "postfix is not installed"
	mkdir -p "$d/queue" "$d/data"
	chown postfix "$d/data"
	# Postfix opens data/ as its own user: let it through bats's 0700 dirs.
	chmod a+x "$BATS_RUN_TMPDIR" "$BATS_RUN_TMPDIR/test" "$BATS_TEST_TMPDIR"
	cat > "$d/main.cf" <<-EOF
		compatibility_level = 3.6
		queue_directory = $d/queue
		data_directory = $d/data
		mail_owner = postfix
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		myhostname = pf.test
		mydestination = example.test
		local_recipient_maps =
		local_transport = discard:
		default_transport = discard:
		maillog_file = $d/maillog
		maillog_file_prefixes = $d
		smtpd_client_port_logging = yes
		smtpd_upstream_proxy_protocol = haproxy
	EOF
	cat > "$d/master.cf" <<-EOF
		127.0.0.1:$1 inet n - n - - smtpd
		pickup    unix  n - n 60  1 pickup
		cleanup   unix  n - n -   0 cleanup
		qmgr      unix  n - n 300 1 qmgr
		rewrite   unix  - - n -   - trivial-rewrite
		bounce    unix  - - n -   0 bounce
		defer     unix  - - n -   0 bounce
		trace     unix  - - n -   0 bounce
		verify    unix  - - n -   1 verify
		proxymap  unix  - - n -   - proxymap
		error     unix  - - n -   - error
		retry     unix  - - n -   - error
		discard   unix  - - n -   - discard
		anvil     unix  - - n -   1 anvil
		scache    unix  - - n -   1 scache
		postlog   unix-dgram n - n - 1 postlogd
	EOF
	postfix -c "$d" check 2> /dev/null
	spawn unshare --pid --fork postfix -c "$d" start-fg
	MAILLOG=$d/maillog
	wait_listen "$1" || { cat "$MAILLOG"; return 1; }
}

@test "swaks through edge: Postfix records the client's own address" {
	up=$(free_port)
	start_postfix "$up"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$up
smtp.proxy = v2"
	start_edge edge.conf
	run swaks --server "127.0.0.1:$(edge_port smtp)" --local-interface 127.0.0.2 \
		--from sender@client.test --to someone@example.test \
		--helo client.test --timeout 20
	[ "$status" -eq 0 ]
	[[ "$output" == *"<-  220 pf.test ESMTP"* ]]
	[[ "$output" == *"<-  250 2.0.0 Ok: queued as "* ]]
	wait_log 'why=eof'
	cport=$(close_lines | sed -n 's/.* c=127\.0\.0\.2:\([0-9]*\) .*/\1/p')
	[ -n "$cport" ]
	# Postfix saw 127.0.0.2 and the client's port, not edge's own address.
	wait_log "postfix/smtpd\[[0-9]+\]: connect from [^ ]*\[127\.0\.0\.2\]:$cport$" "$MAILLOG"
	wait_log "client=[^ ]*\[127\.0\.0\.2\]:$cport$" "$MAILLOG"
	! grep -q 'connect from [^ ]*\[127\.0\.0\.1\]' "$MAILLOG"
}

@test "without the PROXY header Postfix refuses: the header is what it reads" {
	up=$(free_port)
	start_postfix "$up"
	conf "smtp.listen = 127.0.0.1:0
smtp.upstream = 127.0.0.1:$up
smtp.proxy = off"
	start_edge edge.conf
	run swaks --server "127.0.0.1:$(edge_port smtp)" --local-interface 127.0.0.2 \
		--from sender@client.test --to someone@example.test --timeout 20
	[ "$status" -ne 0 ]
	[[ "$output" != *"queued as"* ]]
}
