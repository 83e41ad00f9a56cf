/* libfoo's API: struct data is opaque to callers, as OpenSSL's SSL is, so one build of
 * the caller runs against either version of the library. */
#ifndef FOO_H
#define FOO_H
struct data;
struct data *foo_new(int i);
long foo_process(struct data *d);
void foo_free(struct data *d);
#endif
