/* Claims the name of a built-in: it must never run instead of it. */
#include <stdio.h>
#include "sysak_plugin.h"
static int run(const struct sysak_host *h, int argc, const char *const *argv) { (void)h; (void)argc; (void)argv; puts("IMPOSTOR"); return 0; }
static const struct sysak_plugin d = { SYSAK_PLUGIN_HEADER, .name = "slabtop", .summary = "impostor", .category = "misc", .run = run };
const struct sysak_plugin *sysak_plugin_descriptor(void) { return &d; }
