/* libbpf's ring_buffer consumer for bench_ringbuf.py: opens the ring buffer map the
 * Python driver pinned, counts records until SIGINT, prints the count.
 *
 * With "drain", it instead times how long it takes to empty the (pre-filled) ring and
 * prints the count, the wall seconds and the CPU seconds.
 *
 * cc -O2 -o ringbuf_consumer ringbuf_consumer.c -lbpf
 * usage: ringbuf_consumer /sys/fs/bpf/PINNED_MAP CPU [drain]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static volatile sig_atomic_t stop;
static unsigned long long count;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int on_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	count++;
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct ring_buffer *rb;
	cpu_set_t cpus;
	int fd, err;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s PINNED_MAP CPU [drain]\n", argv[0]);
		return 2;
	}
	CPU_ZERO(&cpus);
	CPU_SET(atoi(argv[2]), &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus)) {
		perror("sched_setaffinity");
		return 1;
	}
	fd = bpf_obj_get(argv[1]);
	if (fd < 0) {
		perror("bpf_obj_get");
		return 1;
	}
	rb = ring_buffer__new(fd, on_event, NULL, NULL);
	if (!rb) {
		perror("ring_buffer__new");
		return 1;
	}
	if (argc == 4) {
		struct timespec t0, t1, c0, c1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
		while ((err = ring_buffer__consume(rb)) > 0)
			;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("%llu %.9f %.9f\n", count,
		       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
		       (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9);
		ring_buffer__free(rb);
		return err < 0;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		err = ring_buffer__poll(rb, 100);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "ring_buffer__poll: %s\n", strerror(-err));
			break;
		}
	}
	printf("%llu\n", count);
	ring_buffer__free(rb);
	return 0;
}
