/* A descriptor claiming to be smaller than ABI version 1's struct. */
#include "sysak_plugin.h"
static int run(const struct sysak_host *h, int argc, const char *const *argv) { (void)h; (void)argc; (void)argv; return 0; }
static const struct sysak_plugin d = {
	.abi_version = SYSAK_PLUGIN_ABI_VERSION, .struct_size = 16,
	.name = "shorty", .summary = "truncated", .category = "misc", .run = run,
};
const struct sysak_plugin *sysak_plugin_descriptor(void) { return &d; }
