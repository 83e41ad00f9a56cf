/* The application: `ready`, waits for a line on stdin (the test attaches meanwhile), then
 * hands CALLS struct data with known values to process(), the uprobe's target. */
#include <stdio.h>
#include <string.h>
#include "data.h"

volatile long sink;

NOIPA void process(struct data *d)
{
	sink += d->a + DATA_B(d) + d->name[0];
}

int main(void)
{
	char line[16];

	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (int i = 0; i < CALLS; i++) {
		struct data d;

		memset(&d, 0, sizeof(d));
		DATA_FILL(&d, i);
		d.a = A(i);
		DATA_B(&d) = B(i);
		snprintf(d.name, sizeof(d.name), "call-%d", i);
		process(&d);
	}
	printf("%ld\n", sink);
	return 0;
}
