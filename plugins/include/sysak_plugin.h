/* SPDX-License-Identifier: MIT */
/*
 * sysak_plugin.h - the sysak plugin ABI. This header is the source of truth;
 * the Rust mirror (plugins/sysak-plugin/src/abi.rs) is checked against it by
 * a test that compiles this file.
 *
 * A plugin is a shared object that exports one function:
 *
 *     const struct sysak_plugin *sysak_plugin_descriptor(void);
 *
 * returning a pointer to a static descriptor. sysak loads plugins with
 * RTLD_NOW | RTLD_LOCAL, checks the descriptor's abi_version and struct_size,
 * and calls run() with the arguments that follow the plugin's name on the
 * command line (argv[0] is the plugin name). run() returns the process exit
 * status, following sysak's convention:
 *   0 ran and found nothing wrong, 1 ran and found a problem,
 *   2 usage error, 3 environment error (not root, missing kernel feature).
 *
 * Compatibility rules:
 *   - abi_version changes only on incompatible changes; sysak refuses a
 *     version it does not know.
 *   - New fields are only ever appended. struct_size tells the other side
 *     how much of the struct the writer knew about: sysak refuses a plugin
 *     descriptor smaller than the version's minimum, and a plugin must check
 *     host->struct_size before touching a field appended after version 1.
 *   - All strings are NUL-terminated UTF-8 and owned by their writer.
 *
 * Write output to stdout (one JSON document when host->format is
 * SYSAK_FORMAT_JSON), diagnostics through host->log or to stderr.
 */
#ifndef SYSAK_PLUGIN_H
#define SYSAK_PLUGIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SYSAK_PLUGIN_ABI_VERSION 1u

/* The exported entry symbol's name, for dlsym(). */
#define SYSAK_PLUGIN_ENTRY "sysak_plugin_descriptor"

/* Output format the user chose with --format. */
enum sysak_format {
	SYSAK_FORMAT_TABLE = 0,
	SYSAK_FORMAT_JSON = 1,
};

enum sysak_log_level {
	SYSAK_LOG_ERROR = 0,
	SYSAK_LOG_WARN = 1,
	SYSAK_LOG_INFO = 2,
	SYSAK_LOG_DEBUG = 3,
};

/* Descriptor flags. */
#define SYSAK_PLUGIN_EXPERIMENTAL (1u << 0) /* listed only by `sysak list --all` */
#define SYSAK_PLUGIN_NEEDS_ROOT   (1u << 1) /* sysak refuses to run it unprivileged */

/* What sysak hands the plugin: read-only, valid for the duration of run(). */
struct sysak_host {
	uint32_t abi_version;         /* SYSAK_PLUGIN_ABI_VERSION of the host */
	uint32_t struct_size;         /* sizeof(struct sysak_host) of the host */
	uint32_t format;              /* enum sysak_format */
	uint32_t reserved;            /* zero */
	const char *host_version;     /* sysak's version, e.g. "0.1.0" */
	/* Print one diagnostic line to stderr, prefixed with the plugin name. */
	void (*log)(const struct sysak_host *host, uint32_t level, const char *msg);
};

/* What the plugin hands sysak: static, lives as long as the library. */
struct sysak_plugin {
	uint32_t abi_version;         /* SYSAK_PLUGIN_ABI_VERSION the plugin was built with */
	uint32_t struct_size;         /* sizeof(struct sysak_plugin) the plugin was built with */
	const char *name;             /* command name: [a-z0-9][a-z0-9_-]* */
	const char *summary;          /* one line for `sysak list` */
	const char *category;         /* e.g. "memory", "cpu", "io", "net", "misc" */
	uint32_t flags;               /* SYSAK_PLUGIN_* */
	uint32_t reserved;            /* zero */
	int (*run)(const struct sysak_host *host, int argc, const char *const *argv);
};

/* Helper for plugin authors: fills the two header fields. */
#define SYSAK_PLUGIN_HEADER \
	.abi_version = SYSAK_PLUGIN_ABI_VERSION, .struct_size = sizeof(struct sysak_plugin)

const struct sysak_plugin *sysak_plugin_descriptor(void);

#ifdef __cplusplus
}
#endif

#endif /* SYSAK_PLUGIN_H */
