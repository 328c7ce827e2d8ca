/* The allocation-heavy workload of the memleak benchmark: N SysV message
 * round trips (msgsnd allocates a msg_msg, msgrcv frees it). Prints the
 * elapsed seconds. Usage: msgloop N TEXT_BYTES */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <time.h>
int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	size_t text = argc > 2 ? (size_t)atol(argv[2]) : 48;
	struct { long mtype; char mtext[4096]; } m = { 1, { 0 } };
	struct timespec a, b;
	int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (q < 0 || text > sizeof(m.mtext)) { perror("msgget"); return 1; }
	memset(m.mtext, 'x', text);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		if (msgsnd(q, &m, text, 0) || msgrcv(q, &m, text, 0, 0) < 0) { perror("msg"); break; }
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	msgctl(q, IPC_RMID, NULL);
	printf("%.3f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}
