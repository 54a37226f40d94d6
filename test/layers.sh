#!/bin/sh
# SPDX-License-Identifier: ISC
# The layering check (make check-layers, part of make test).  Reads which
# object calls which from the objects' own symbols (nm -P) and fails on a
# call that runs up or across the layers, on a cycle, and on an exported
# symbol without its file's prefix.
#
#   test/layers.sh "edge / status poll / ... / addr" "addr:sa_,cidr_ ..."
#
# $1: the files by layer, top first, layers split by "/": a file may call
# only files on later layers.  $2: each file's export prefixes (main is
# allowed in the top layer).  The objects are FILE.o in the current
# directory.
set -eu
layers=$1
prefixes=$2
tmp=${TMPDIR:-/tmp}/edge-layers.$$
trap 'rm -f "$tmp".*' EXIT

# rank: FILE LAYER (0 = top)
echo "$layers" | tr '/' '\n' | awk '{ for (i = 1; i <= NF; i++) print $i, NR - 1 }' > "$tmp.rank"
# defs: SYMBOL FILE; uses: FILE SYMBOL
: > "$tmp.defs"
: > "$tmp.uses"
for f in $(awk '{ print $1 }' "$tmp.rank"); do
	[ -f "$f.o" ] || { echo "layers: $f.o is not built" >&2; exit 1; }
	nm -P -g "$f.o" | awk -v f="$f" '$2 == "U" { print f, $1 >> "'"$tmp.uses"'"; next }
	    { print $1, f >> "'"$tmp.defs"'" }'
done
# calls: FROM TO, from undefined symbols resolved against the definitions.
awk 'NR == FNR { def[$1] = $2; next } ($2 in def) && def[$2] != $1 { print $1, def[$2] }' \
    "$tmp.defs" "$tmp.uses" | sort -u > "$tmp.calls"

awk -v prefixes="$prefixes" '
FILENAME == ARGV[1] { rank[$1] = $2; next }
FILENAME == ARGV[2] { file[$1] = $2; next }
{ calls[++n] = $1 " " $2; out[$1] = out[$1] " " $2 }
END {
	bad = 0
	for (i = 1; i <= n; i++) {
		split(calls[i], c, " ")
		if (rank[c[2]] <= rank[c[1]]) {
			printf "layers: %s calls %s, which is not below it\n", c[1], c[2]
			bad = 1
		}
	}
	# Cycles, whatever the layers say: a depth-first search.
	for (f in rank)
		if (!done[f] && cycle(f, f))
			bad = 1
	# Exports: every global symbol a file defines has one of its prefixes.
	np = split(prefixes, p, " ")
	for (i = 1; i <= np; i++) {
		split(p[i], kv, ":")
		pre[kv[1]] = kv[2]
	}
	for (s in file) {
		f = file[s]
		if (s == "main" && rank[f] == 0)
			continue
		nk = split(pre[f], k, ",")
		ok = 0
		for (j = 1; j <= nk; j++)
			if (index(s, k[j]) == 1)
				ok = 1
		if (!ok) {
			printf "layers: %s.o exports %s, without its prefix (%s)\n", f, s, pre[f]
			bad = 1
		}
	}
	exit bad
}
function cycle(f, path,    m, t, i, r) {
	if (onpath[f]) {
		printf "layers: a cycle: %s\n", path
		return 1
	}
	if (done[f])
		return 0
	onpath[f] = 1
	m = split(out[f], t, " ")
	r = 0
	for (i = 1; i <= m && !r; i++)
		r = cycle(t[i], path " -> " t[i])
	onpath[f] = 0
	done[f] = 1
	return r
}' "$tmp.rank" "$tmp.defs" "$tmp.calls" || exit 1

echo "layers: $(wc -l < "$tmp.calls" | tr -d ' ') calls between $(wc -l < "$tmp.rank" | tr -d ' ') files, all downward"
