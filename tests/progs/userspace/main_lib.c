/* Built once against libfoo v1; run with either version through LD_LIBRARY_PATH. */
#include <stdio.h>
#include "foo.h"

#define CALLS 3

int main(void)
{
	char line[16];
	long sum = 0;

	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (int i = 0; i < CALLS; i++) {
		struct data *d = foo_new(i);

		if (!d)
			return 1;
		sum += foo_process(d);
		foo_free(d);
	}
	printf("%ld\n", sum);
	return 0;
}
