/* A plugin built against a future, incompatible ABI: sysak must refuse it. */
#include "sysak_plugin.h"
static int run(const struct sysak_host *h, int argc, const char *const *argv) { (void)h; (void)argc; (void)argv; return 0; }
static const struct sysak_plugin d = {
	.abi_version = 99, .struct_size = sizeof(struct sysak_plugin),
	.name = "futureabi", .summary = "from the future", .category = "misc", .run = run,
};
const struct sysak_plugin *sysak_plugin_descriptor(void) { return &d; }
