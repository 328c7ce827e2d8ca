// SPDX-License-Identifier: MIT
/*
 * oomkill - a sysak plugin in C: the OOM-kill history in the kernel log.
 *
 * Reads /dev/kmsg (the structured kernel log, Linux 3.5+) without blocking
 * and pairs the kernel's two OOM records per kill:
 *   oom-kill:constraint=...,oom_memcg=...,task_memcg=...,task=...,pid=N,uid=N   (4.14+)
 *   [Memory cgroup ]Out of memory: Killed process N (comm) total-vm:NkB, anon-rss:NkB, ...
 * Kernels before 4.14 print only the second line; those kills have no
 * constraint or cgroup. Only what is still in the log ring buffer can be
 * reported: the count says so. Exit status 1 when a kill is found.
 *
 * Build: cc -shared -fPIC -O2 -Wall -I../../include -o oomkill.so oomkill.c
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sysak_plugin.h"

#define MAX_KILLS 256 /* newest kept: the log ring holds far fewer */

struct oom_kill {
	unsigned long long ts_us;   /* microseconds since boot */
	long pid;
	char comm[64];
	char constraint[32];
	char memcg[256];            /* cgroup whose limit was hit ("/" for global) */
	char task_memcg[256];
	unsigned long total_vm_kb, anon_rss_kb, file_rss_kb, shmem_rss_kb;
	int global;                 /* "Out of memory" vs "Memory cgroup out of memory" */
};

static struct oom_kill kills[MAX_KILLS];
static unsigned nkills, dropped;

/* Copy the value of "key=" from a comma-separated oom-kill record. */
static void field(const char *rec, const char *key, char *out, size_t len)
{
	const char *p = strstr(rec, key);
	size_t n;

	out[0] = '\0';
	if (!p)
		return;
	p += strlen(key);
	n = strcspn(p, ",\n");
	if (n >= len)
		n = len - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

static struct oom_kill *slot(void)
{
	if (nkills == MAX_KILLS) {
		memmove(kills, kills + 1, sizeof(kills[0]) * (MAX_KILLS - 1));
		nkills--;
		dropped++;
	}
	memset(&kills[nkills], 0, sizeof(kills[0]));
	return &kills[nkills++];
}

/* A pending oom-kill: record waiting for its "Killed process" line. */
static struct oom_kill *pending_for(long pid)
{
	for (unsigned i = nkills; i-- > 0;)
		if (kills[i].pid == pid && kills[i].comm[0] == '\0')
			return &kills[i];
	return NULL;
}

static void parse_record(unsigned long long ts_us, const char *msg)
{
	const char *killed;

	if (!strncmp(msg, "oom-kill:", 9)) {
		struct oom_kill *k = slot();
		char pid[32];

		k->ts_us = ts_us;
		field(msg, "constraint=", k->constraint, sizeof(k->constraint));
		field(msg, "oom_memcg=", k->memcg, sizeof(k->memcg));
		field(msg, "task_memcg=", k->task_memcg, sizeof(k->task_memcg));
		field(msg, ",pid=", pid, sizeof(pid));
		k->pid = strtol(pid, NULL, 10);
		k->comm[0] = '\0'; /* filled by the Killed process line */
		return;
	}
	killed = strstr(msg, "ut of memory: Killed process ");
	if (killed) {
		long pid = strtol(killed + 29, NULL, 10);
		struct oom_kill *k = pending_for(pid);
		const char *open = strchr(killed, '('), *close = open ? strchr(open, ')') : NULL;
		const char *p;

		if (!k) {
			k = slot();
			k->ts_us = ts_us;
			k->pid = pid;
		}
		k->global = strncmp(msg, "Memory cgroup", 13) != 0;
		if (open && close && close > open) {
			size_t n = (size_t)(close - open - 1);
			if (n >= sizeof(k->comm))
				n = sizeof(k->comm) - 1;
			memcpy(k->comm, open + 1, n);
			k->comm[n] = '\0';
		} else {
			snprintf(k->comm, sizeof(k->comm), "?");
		}
		if ((p = strstr(killed, "total-vm:")))
			k->total_vm_kb = strtoul(p + 9, NULL, 10);
		if ((p = strstr(killed, "anon-rss:")))
			k->anon_rss_kb = strtoul(p + 9, NULL, 10);
		if ((p = strstr(killed, "file-rss:")))
			k->file_rss_kb = strtoul(p + 9, NULL, 10);
		if ((p = strstr(killed, "shmem-rss:")))
			k->shmem_rss_kb = strtoul(p + 10, NULL, 10);
	}
}

/* Read every record in the ring: "prio,seq,ts_us,flags;message\n dict". */
static int read_kmsg(const struct sysak_host *host, const char *path)
{
	char buf[8192];
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "cannot open %s: %s%s", path, strerror(errno),
			 errno == EACCES || errno == EPERM ? " (run as root)" : "");
		host->log(host, SYSAK_LOG_ERROR, msg);
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		unsigned long long ts_us = 0;
		char *msg;

		if (n < 0 && errno == EPIPE)
			continue; /* records overwritten while reading: go on */
		if (n <= 0)
			break;
		buf[n] = '\0';
		msg = strchr(buf, ';');
		if (!msg)
			continue;
		*msg++ = '\0';
		sscanf(buf, "%*u,%*u,%llu", &ts_us);
		msg[strcspn(msg, "\n")] = '\0';
		parse_record(ts_us, msg);
	}
	close(fd);
	return 0;
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_json(void)
{
	printf("{\"kills\": [");
	for (unsigned i = 0; i < nkills; i++) {
		const struct oom_kill *k = &kills[i];
		printf("%s\n  {\"time_s\": %llu.%06llu, \"pid\": %ld, \"comm\": ", i ? "," : "",
		       k->ts_us / 1000000, k->ts_us % 1000000, k->pid);
		json_string(k->comm);
		printf(", \"scope\": \"%s\", \"constraint\": ", k->global ? "global" : "memcg");
		json_string(k->constraint);
		printf(", \"memcg\": ");
		json_string(k->memcg);
		printf(", \"task_memcg\": ");
		json_string(k->task_memcg);
		printf(", \"total_vm_bytes\": %lu, \"anon_rss_bytes\": %lu, \"file_rss_bytes\": %lu, "
		       "\"shmem_rss_bytes\": %lu}",
		       k->total_vm_kb * 1024, k->anon_rss_kb * 1024, k->file_rss_kb * 1024,
		       k->shmem_rss_kb * 1024);
	}
	printf("%s], \"count\": %u, \"dropped\": %u}\n", nkills ? "\n" : "", nkills, dropped);
}

static void print_table(void)
{
	if (!nkills) {
		printf("no OOM kills in the kernel log\n");
		return;
	}
	printf("%14s %8s %-16s %-6s %-18s %10s %-s\n", "TIME(s)", "PID", "COMM", "SCOPE",
	       "CONSTRAINT", "ANON-RSS", "MEMCG");
	for (unsigned i = 0; i < nkills; i++) {
		const struct oom_kill *k = &kills[i];
		printf("%7llu.%06llu %8ld %-16s %-6s %-18s %9luK %s\n", k->ts_us / 1000000,
		       k->ts_us % 1000000, k->pid, k->comm, k->global ? "global" : "memcg",
		       k->constraint[0] ? k->constraint : "-", k->anon_rss_kb,
		       k->memcg[0] ? k->memcg : "-");
	}
	if (dropped)
		printf("(%u older kills not shown)\n", dropped);
}

static int run(const struct sysak_host *host, int argc, const char *const *argv)
{
	const char *path = "/dev/kmsg";

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: sysak oomkill [--kmsg FILE] [--format table|json]\n\n"
			       "OOM kills still in the kernel log: who was killed, in which memory\n"
			       "cgroup, under which constraint, and how much memory it held.\n"
			       "Exit status 1 when the log holds at least one kill.\n");
			return 0;
		} else if (!strcmp(argv[i], "--kmsg") && i + 1 < argc) {
			path = argv[++i];
		} else {
			char msg[256];
			snprintf(msg, sizeof(msg), "unknown argument '%s' (see --help)", argv[i]);
			host->log(host, SYSAK_LOG_ERROR, msg);
			return 2;
		}
	}
	if (read_kmsg(host, path) < 0)
		return 3;
	/* An oom-kill record whose "Killed process" line is gone keeps comm "?". */
	for (unsigned i = 0; i < nkills; i++)
		if (!kills[i].comm[0])
			snprintf(kills[i].comm, sizeof(kills[i].comm), "?");
	if (host->format == SYSAK_FORMAT_JSON)
		print_json();
	else
		print_table();
	fflush(stdout);
	return nkills ? 1 : 0;
}

static const struct sysak_plugin descriptor = {
	SYSAK_PLUGIN_HEADER,
	.name = "oomkill",
	.summary = "OOM-kill history from the kernel log: who, which cgroup, how much memory",
	.category = "memory",
	.flags = SYSAK_PLUGIN_NEEDS_ROOT,
	.run = run,
};

const struct sysak_plugin *sysak_plugin_descriptor(void)
{
	return &descriptor;
}
