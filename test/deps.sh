#!/bin/sh
# Install what building and testing edge needs on Debian 12 (run as root).
# nginx (with its stream module) and HAProxy are test peers and benchmark
# peers; no system instance of them is started.
# Postfix is preseeded so that no system mail server is configured or run;
# the tests start their own from a private config directory.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
echo "postfix postfix/main_mailer_type select No configuration" |
	debconf-set-selections
apt-get install -y -qq --no-install-recommends \
	make gcc libc6-dev clang bats socat swaks postfix python3 iproute2 \
	util-linux procps curl python3-prometheus-client musl-tools systemd \
	haproxy nginx libnginx-mod-stream \
	> /dev/null
