/* libfoo.so.1, built as v1 or (-DV2) v2: the same API over a struct data that changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data.h"
#include "foo.h"

struct data *foo_new(int i)
{
	struct data *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	DATA_FILL(d, i);
	d->a = A(i);
	DATA_B(d) = B(i);
	snprintf(d->name, sizeof(d->name), "lib-%d", i);
	return d;
}

NOIPA long foo_process(struct data *d)
{
	return d->a + DATA_B(d) + d->name[0];
}

void foo_free(struct data *d)
{
	free(d);
}
