//! `/etc/sysak/sysak.toml`: site configuration.
//!
//! Looked up in this order: the file named by `--config FILE`, then by the
//! `SYSAK_CONFIG` environment variable, then `/etc/sysak/sysak.toml`. The
//! default file may be absent; a named one must exist. A bad file is an error
//! naming the file, the line and the key: a typo must never be ignored.
//!
//! ```toml
//! [plugins]
//! dirs = ["/usr/lib64/sysak/plugins"]   # shared-object plugins
//! libexec_dir = "/usr/libexec/sysak"    # external sysak-<name> programs
//!
//! [output]
//! format = "table"                      # or "json": the default of --format
//! lang = "en"                           # or "zh": table labels
//! ```
//!
//! Tool sections (`[memleak]`, ...) are kept as TOML tables for the tools.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The default configuration file.
pub const DEFAULT_PATH: &str = "/etc/sysak/sysak.toml";
/// The default shared-object plugin directory.
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib64/sysak/plugins";
/// The default directory for external `sysak-<name>` programs.
pub const DEFAULT_LIBEXEC_DIR: &str = "/usr/libexec/sysak";

/// `[plugins]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Directories searched for `*.so` plugins after `$SYSAK_PLUGIN_PATH`.
    #[serde(default = "default_plugin_dirs")]
    pub dirs: Vec<PathBuf>,
    /// Directory searched for `sysak-<name>` programs before `$PATH`.
    #[serde(default = "default_libexec_dir")]
    pub libexec_dir: PathBuf,
}

fn default_plugin_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from(DEFAULT_PLUGIN_DIR)]
}

fn default_libexec_dir() -> PathBuf {
    PathBuf::from(DEFAULT_LIBEXEC_DIR)
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig { dirs: default_plugin_dirs(), libexec_dir: default_libexec_dir() }
    }
}

/// `[output]`: defaults for every tool's output.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// `format = "table" | "json"`: the default of `--format`.
    pub format: Option<crate::output::Format>,
    /// `lang = "en" | "zh"`: table labels (default: from the locale).
    pub lang: Option<crate::i18n::Lang>,
}

/// The whole configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Where the configuration came from (`None`: built-in defaults).
    pub path: Option<PathBuf>,
    /// `[plugins]`.
    pub plugins: PluginConfig,
    /// `[output]`.
    pub output: OutputConfig,
    tools: toml::Table,
}

sysak_kernel::message_error!(
    /// The configuration file is unreadable or wrong.
    ConfigError
);

impl Config {
    /// Load from `explicit` (`--config`), else `$SYSAK_CONFIG`, else the
    /// default path if it exists, else built-in defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let named = explicit.map(Path::to_path_buf).or_else(|| std::env::var_os("SYSAK_CONFIG").map(PathBuf::from));
        let path = match named {
            Some(path) => path,
            None if Path::new(DEFAULT_PATH).exists() => PathBuf::from(DEFAULT_PATH),
            None => return Ok(Config::default()),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError(format!("cannot read config {}: {e}", path.display())))?;
        Config::parse(&text, &path)
    }

    /// Parse configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        // Two passes: the typed one (no `flatten`, which would lose the
        // spans that give errors their line numbers), then the section names.
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            plugins: PluginConfig,
            #[serde(default)]
            output: OutputConfig,
        }
        let file: File = toml::from_str(text).map_err(|e| describe(path, text, &e))?;
        let mut tools: toml::Table = text.parse().map_err(|e| describe(path, text, &e))?;
        tools.remove("plugins");
        tools.remove("output");
        Ok(Config { path: Some(path.to_owned()), plugins: file.plugins, output: file.output, tools })
    }

    /// Deserialize the `[name]` section of a tool; defaults when absent.
    /// Errors name the file, the section and the key.
    pub fn tool_section<T: serde::de::DeserializeOwned + Default>(&self, name: &str) -> Result<T, ConfigError> {
        let Some(value) = self.tools.get(name) else { return Ok(T::default()) };
        let file = self.path.as_deref().unwrap_or(Path::new("config")).display().to_string();
        T::deserialize(value.clone()).map_err(|e| ConfigError(format!("{file}: [{name}]: {}", e.message())))
    }

    /// Names of the top-level sections other than `[plugins]` and `[output]`, for the
    /// dispatcher to check against its tools.
    pub fn tool_sections(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }
}

/// "FILE:LINE: message" from a toml error with a span. For an unknown key
/// toml's span covers the whole table, so the key's own line is looked up
/// inside it.
fn describe(path: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
    let message = err.message().trim();
    // Counted in bytes: a span may end inside a multi-byte character.
    let line_at = |offset: usize| text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1;
    let line = err.span().map(|span| {
        let key = message.strip_prefix("unknown field `").and_then(|m| m.split('`').next());
        let table = text.get(span.start.min(text.len())..span.end.min(text.len())).unwrap_or("");
        let key_offset = key.and_then(|key| {
            let mut offset = 0;
            table.split_inclusive('\n').find_map(|l| {
                let found = l.trim_start().starts_with(key).then_some(offset);
                offset += l.len();
                found
            })
        });
        match key_offset {
            Some(offset) => line_at(span.start + offset),
            None => line_at(span.start),
        }
    });
    match line {
        Some(line) => ConfigError(format!("{}:{line}: {message}", path.display())),
        None => ConfigError(format!("{}: {message}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_plugins_section() {
        let c = Config::parse("", Path::new("c.toml")).unwrap();
        assert_eq!(c.plugins.dirs, vec![PathBuf::from(DEFAULT_PLUGIN_DIR)]);
        assert_eq!(c.plugins.libexec_dir, PathBuf::from(DEFAULT_LIBEXEC_DIR));
    }

    #[test]
    fn plugin_dirs_are_read() {
        let c = Config::parse("[plugins]\ndirs = [\"/a\", \"/b\"]\n", Path::new("c.toml")).unwrap();
        assert_eq!(c.plugins.dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    }

    #[test]
    fn output_defaults_are_read_and_checked() {
        let c = Config::parse("[output]\nformat = \"json\"\nlang = \"zh\"\n", Path::new("c.toml")).unwrap();
        assert_eq!((c.output.format, c.output.lang), (Some(crate::output::Format::Json), Some(crate::i18n::Lang::Zh)));
        let err = Config::parse("[output]\nformat = \"xml\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.0.starts_with("c.toml:2:"), "{}", err.0);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let err = Config::parse("# c\n[plugins]\ndirz = []\n", Path::new("/etc/s.toml")).unwrap_err();
        assert!(err.0.starts_with("/etc/s.toml:3: unknown field `dirz`"), "{}", err.0);
        let err = Config::parse("[plugins]\n\ndirs = [1\n", Path::new("s.toml")).unwrap_err();
        assert!(err.0.starts_with("s.toml:3:"), "{}", err.0);
    }
}
