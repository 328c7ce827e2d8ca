/* Links against a symbol nothing defines: RTLD_NOW must fail at load. */
#include "sysak_plugin.h"
extern int sysak_symbol_that_does_not_exist(void);
static int run(const struct sysak_host *h, int argc, const char *const *argv) { (void)h; (void)argc; (void)argv; return sysak_symbol_that_does_not_exist(); }
static const struct sysak_plugin d = { SYSAK_PLUGIN_HEADER, .name = "unresolved", .summary = "x", .category = "misc", .run = run };
const struct sysak_plugin *sysak_plugin_descriptor(void) { return &d; }
