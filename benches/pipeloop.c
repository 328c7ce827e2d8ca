/* Page-allocation-heavy workload: write 64 KiB into a pipe and read it
 * back, N times (each round allocates and frees 16 pages). Prints the
 * elapsed seconds. Usage: pipeloop N */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	static char buf[65536];
	int fd[2];
	struct timespec a, b;

	if (pipe(fd))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		if (write(fd[1], buf, sizeof buf) != sizeof buf)
			return 1;
		for (size_t got = 0; got < sizeof buf;) {
			ssize_t r = read(fd[0], buf, sizeof buf - got);
			if (r <= 0)
				return 1;
			got += r;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.6f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}
