/* SPDX-License-Identifier: ISC */
/*
 * A plain main() for the fuzz targets: feed each file named on the command
 * line to LLVMFuzzerTestOneInput(), so that the corpus runs in `make test`
 * under any compiler, without libFuzzer.  A target reports a broken
 * contract by aborting.
 */
#include <stdio.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
main(int argc, char **argv)
{
	static unsigned char buf[1 << 20];
	FILE *f;
	size_t n;
	int i;

	for (i = 1; i < argc; i++) {
		if ((f = fopen(argv[i], "rb")) == NULL) {
			perror(argv[i]);
			return 1;
		}
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("%s: replayed %d inputs\n", argv[0], argc - 1);
	return 0;
}
