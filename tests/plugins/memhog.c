/* Touches argv[1] bytes of anonymous memory, says "ready", then sleeps:
 * a process with a known memory footprint for the cgroup tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
	size_t bytes = argc > 1 ? strtoull(argv[1], NULL, 10) : 0;
	char *p = malloc(bytes);
	if (!p) return 1;
	memset(p, 'x', bytes);
	printf("ready\n");
	fflush(stdout);
	sleep(60);
	return p[bytes / 2] == 'x' ? 0 : 1;
}
