/* Prints what the host handed it, so tests can check argv, format and log. */
#include <stdio.h>
#include "sysak_plugin.h"
static int run(const struct sysak_host *h, int argc, const char *const *argv) {
	printf("format=%u abi=%u size=%u version=%s argc=%d", h->format, h->abi_version, h->struct_size, h->host_version, argc);
	for (int i = 0; i < argc; i++) printf(" [%s]", argv[i]);
	printf("\n");
	fflush(stdout);
	h->log(h, SYSAK_LOG_WARN, "logged through the host");
	return argc > 1 ? 7 : 0;
}
static const struct sysak_plugin d = { SYSAK_PLUGIN_HEADER, .name = "echoargs", .summary = "echo arguments", .category = "misc", .flags = SYSAK_PLUGIN_EXPERIMENTAL, .run = run };
const struct sysak_plugin *sysak_plugin_descriptor(void) { return &d; }
