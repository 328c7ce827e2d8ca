//! Table labels in the user's language: English by default; Chinese, with
//! the original sysak's labels (未释放内存汇总, 次数, 标记次数, 函数, 泄漏函数,
//! 相似object数量, …), with `--lang zh`, `[output] lang = "zh"`, or a
//! `zh_*` locale in LC_ALL / LC_MESSAGES / LANG. JSON keys and values never
//! change with the language: scripts parse them.

use clap::{Arg, ArgMatches};
use serde::Deserialize;

/// A language for labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Simplified Chinese.
    Zh,
}

/// English label -> Chinese label. Labels not listed stay English.
const ZH: &[(&str, &str)] = &[
    ("outstanding allocations", "未释放内存汇总"),
    ("count", "次数"),
    ("marked", "标记次数"),
    ("function", "函数"),
    ("leak function", "泄漏函数"),
    ("similar objects", "相似object数量"),
    ("scanned objects", "扫描object数量"),
    ("representative object", "代表object地址"),
    ("bytes", "字节"),
    ("max age", "最长存活"),
    ("pages", "页数"),
    ("areas", "区域数"),
    ("growth", "增长"),
    ("stock", "存量"),
    ("cache", "slab缓存"),
    ("tracer", "跟踪方式"),
    ("scan", "扫描"),
    ("unavailable", "不可用"),
    ("verdict", "结论"),
    ("none", "无"),
    ("slab (unreclaimable)", "slab（不可回收）"),
    ("alloc pages", "页面分配"),
    ("over threshold", "超过阈值"),
    ("stack of", "调用栈"),
    ("warning", "警告"),
    ("confidence", "可信度"),
];

impl Lang {
    /// Parse a word (`en`, `zh`) or a locale (`zh_CN.UTF-8`).
    pub fn parse(word: &str) -> Option<Lang> {
        let word = word.to_ascii_lowercase();
        if word == "zh" || word.starts_with("zh_") || word.starts_with("zh-") {
            Some(Lang::Zh)
        } else if word == "en" || word.starts_with("en_") || word == "c" || word == "posix" || word.starts_with("c.") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// `--lang`, else `configured` (`[output] lang`), else the locale,
    /// else English.
    pub fn resolve(matches: &ArgMatches, configured: Option<Lang>) -> Lang {
        if let Some(lang) = matches.try_get_one::<String>("lang").ok().flatten().and_then(|w| Lang::parse(w)) {
            return lang;
        }
        if let Some(lang) = configured {
            return lang;
        }
        Lang::from_locale(|name| std::env::var(name).ok())
    }

    /// The first of LC_ALL, LC_MESSAGES, LANG that is set decides (POSIX
    /// precedence).
    pub fn from_locale(env: impl Fn(&str) -> Option<String>) -> Lang {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .into_iter()
            .find_map(|name| env(name).filter(|v| !v.is_empty()))
            .and_then(|v| Lang::parse(&v))
            .unwrap_or_default()
    }

    /// The label for `english` in this language.
    pub fn label(self, english: &'static str) -> &'static str {
        match self {
            Lang::En => english,
            Lang::Zh => ZH.iter().find(|(en, _)| *en == english).map(|(_, zh)| *zh).unwrap_or(english),
        }
    }
}

/// Columns a string takes in a terminal: CJK ideographs, fullwidth forms
/// and their punctuation take two (East Asian Wide/Fullwidth), the rest one.
pub fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115f
            | 0x2e80..=0x303e
            | 0x3041..=0x33ff
            | 0x3400..=0x4dbf
            | 0x4e00..=0x9fff
            | 0xa000..=0xa4cf
            | 0xac00..=0xd7a3
            | 0xf900..=0xfaff
            | 0xfe30..=0xfe4f
            | 0xff00..=0xff60
            | 0xffe0..=0xffe6 => 2,
            _ => 1,
        })
        .sum()
}

/// `text` left-aligned in `width` terminal columns.
pub fn pad(text: &str, width: usize) -> String {
    format!("{text}{}", " ".repeat(width.saturating_sub(display_width(text))))
}

/// The `--lang en|zh` argument.
pub fn lang_arg() -> Arg {
    Arg::new("lang")
        .long("lang")
        .value_name("LANG")
        .value_parser(["en", "zh"])
        .help("Table labels in English or Chinese [default: from the locale]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_precedence_and_labels() {
        let env =
            |pairs: &'static [(&'static str, &'static str)]| move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string());
        assert_eq!(Lang::from_locale(env(&[("LANG", "zh_CN.UTF-8")])), Lang::Zh);
        assert_eq!(Lang::from_locale(env(&[("LC_ALL", "C"), ("LANG", "zh_CN.UTF-8")])), Lang::En);
        assert_eq!(Lang::from_locale(env(&[("LC_MESSAGES", "zh_TW.UTF-8"), ("LANG", "en_US.UTF-8")])), Lang::Zh);
        assert_eq!(Lang::from_locale(env(&[])), Lang::En);
        assert_eq!(Lang::Zh.label("marked"), "标记次数");
        assert_eq!(Lang::Zh.label("leak function"), "泄漏函数");
        assert_eq!(Lang::En.label("marked"), "marked");
        assert_eq!(Lang::Zh.label("no such label"), "no such label");
        assert_eq!(display_width("slab（不可回收）"), 4 + 2 * 6);
        assert_eq!(pad("页面分配", 10), "页面分配  ");
    }
}
