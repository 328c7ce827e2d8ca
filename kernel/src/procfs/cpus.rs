//! CPU lists: `/sys/devices/system/cpu/online` and `possible` ("0-3,5").
//!
//! Perf opens one event per online CPU; a per-CPU BPF map hands user space
//! one value per possible CPU.

/// Online CPUs.
pub fn online_cpus() -> Result<Vec<u32>, String> {
    cpu_list("/sys/devices/system/cpu/online")
}

/// Possible CPUs (including those that may come online later).
pub fn possible_cpus() -> Result<Vec<u32>, String> {
    cpu_list("/sys/devices/system/cpu/possible")
}

fn cpu_list(path: &str) -> Result<Vec<u32>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    parse_cpu_list(text.trim()).ok_or_else(|| format!("cannot parse CPU list {text:?} in {path}"))
}

/// Parse a kernel CPU list ("0-3,5").
pub fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5"), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("x"), None);
        assert!(!online_cpus().unwrap().is_empty());
        assert!(possible_cpus().unwrap().len() >= online_cpus().unwrap().len());
    }
}
