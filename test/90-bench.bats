#!/usr/bin/env bats
# The benchmark's smoke mode: edge only, tiny sizes, every workload.  It
# proves the harness still runs; its figures are not judged here (timings
# on shared machines are noise: make bench compares against the peers).

load helpers

@test "bench/run --smoke runs every workload against edge and prints its tables" {
	[ -x "$T/../bench/load" ] || skip "bench/load is not built (make bench/load)"
	run env EDGE="$EDGE" timeout 120 "$T/../bench/run" --smoke --out smoke.md
	echo "$output"
	[ "$status" -eq 0 ]
	for section in "1. Throughput" "2. Connection rate" "3. Latency" \
	    "4. Concurrency cost" "5. 100 concurrent streams" "6a. PROXY v2" \
	    "6b. PROXY v2"; do
		grep -q "^### $section" smoke.md
	done
	# Every edge row has figures, and no connection failed.
	[ "$(grep -c '^| edge' smoke.md)" -ge 9 ]
	! grep -E '^\| edge [^|]*\|.*\| nan' smoke.md
	grep -A4 '^### 2. Connection rate' smoke.md | grep '^| edge' |
		awk -F'|' '{ exit ($7 + 0 != 0) }'
}
