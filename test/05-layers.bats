#!/usr/bin/env bats
# The layering check (test/layers.sh) on objects of the test's own: it must
# pass a clean stack and fail on an upward call, a cycle and an export
# without its file's prefix.  make test runs it on edge's own objects.

load helpers

layers() {
	sh "$T/layers.sh" "$@"
}

obj() {
	printf '%s\n' "$2" > "$1.c"
	cc -c -o "$1.o" "$1.c"
}

@test "the layering check passes calls that only go down" {
	obj top 'int mid_f(void); int main(void) { return mid_f(); }'
	obj mid 'int low_f(void); int mid_f(void) { return low_f(); }'
	obj low 'int low_f(void) { return 0; }'
	run layers "top / mid / low" "top:top_ mid:mid_ low:low_"
	[ "$status" -eq 0 ]
	[[ "$output" == "layers: 2 calls between 3 files, all downward" ]]
}

@test "the layering check fails a call up the layers and names it" {
	obj top 'int mid_f(void); int main(void) { return mid_f(); }'
	obj mid 'int mid_f(void) { return 0; }'
	obj low 'int mid_f(void); int low_f(void) { return mid_f(); }'
	run layers "top / mid / low" "top:top_ mid:mid_ low:low_"
	[ "$status" -ne 0 ]
	[[ "$output" == *"layers: low calls mid, which is not below it"* ]]
}

@test "the layering check fails calls across one layer and a cycle" {
	obj a 'int b_f(void); int a_f(void) { return b_f(); }'
	obj b 'int a_f(void); int b_f(void) { return a_f(); }'
	run layers "a b" "a:a_ b:b_"
	[ "$status" -ne 0 ]
	[[ "$output" == *"layers: a calls b, which is not below it"* ]]
	[[ "$output" == *"layers: a cycle: "* ]]
}

@test "the layering check fails an export without its file's prefix" {
	obj top 'int low_f(void); int main(void) { return low_f(); }'
	obj low 'int low_f(void) { return 0; } int helper(void) { return 1; }'
	run layers "top / low" "top:top_ low:low_"
	[ "$status" -ne 0 ]
	[[ "$output" == *"layers: low.o exports helper, without its prefix (low_)"* ]]
}
