#!/bin/sh
# with-hosts.sh HOSTS RESOLV CMD...: run CMD in a private mount namespace
# where HOSTS is /etc/hosts and RESOLV is /etc/resolv.conf.  The mounts
# follow the files' inodes: rewrite them in place to change answers.
hosts=$1 resolv=$2
shift 2
exec unshare -m --propagation private -- sh -c '
	mount --bind "$1" /etc/hosts &&
	mount --bind "$2" /etc/resolv.conf &&
	shift 2 && exec "$@"' with-hosts "$hosts" "$resolv" "$@"
