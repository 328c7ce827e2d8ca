//! Births against deaths: is a stock of alike objects born faster than it
//! dies?
//!
//! Births `B` are the window's allocations that look like the stock and are
//! still outstanding; they are counted over the allocation phase (`T_a`
//! seconds: the window less its free-only part). Deaths `D` are counted on
//! the members followed, one in `m` of them (`m` = 1 when every member is),
//! over the `T` seconds they were followed: from the scan that took them,
//! before the window, to the re-read after it. Both are Poisson counts, `B ~ Poisson(b·T_a)`
//! and `D ~ Poisson(d·T/m)`. If the stock dies as fast as it is born
//! (`b = d`), then given `N = B + D`, `B` is `Binomial(N, p0)` with
//! `p0 = T_a / (T_a + T/m)`: the conditional test of two Poisson rates
//! (Przyborowski and Wilenski, 1940). The p-value is `P(X ≥ B)`, summed
//! exactly; a leak needs it below [`ALPHA`]. A sample (`m > 1`) raises
//! `p0`, so the same births and deaths prove less: one death seen stands for
//! `m`.
//!
//! The seed's rate, worked: one leaked record every 3 s, the default 60 s
//! window with 20 % free-only, `T_a` = 48 s: about 16–20 births. With no
//! member dying and every member followed, `p0` = 48 / (48 + 60) = 0.444 and
//! `p` = 0.444^20 ≈ 1e-7 (0.444^16 ≈ 2e-6): a leak. With 1 in 4 followed
//! (a stock of 600 000 and 262 144 followed in the kernel), `p0` = 48 /
//! (48 + 15) = 0.762 and `p` = 0.762^20 ≈ 0.004: still a leak. With 1 in 16,
//! `p0` = 0.928 and `p` ≈ 0.22: a sample that thin cannot tell 20 births
//! from 20 deaths, and the verdict says so instead of guessing.
//!
//! The net rate `B/T_a − m·D/T` is reported with a one-sided 99 % lower
//! bound from the Poisson variances, `B/T_a² + m²·(D+1)/T²` (`D+1`: no
//! death seen still leaves room for a few).

use serde::Serialize;

/// A stock born faster than it dies beyond this p-value is a leak.
pub const ALPHA: f64 = 0.01;
/// Below this p-value the evidence alone is strong.
pub const STRONG: f64 = 1e-6;
/// z of a one-sided 99 % bound.
const Z_99: f64 = 2.326;

/// Births and deaths of one stock over one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Counts {
    /// Alike allocations of the window still outstanding.
    pub births: u64,
    /// Seconds births were counted over (the allocation phase).
    pub alloc_s: f64,
    /// Deaths seen among the members followed.
    pub deaths: u64,
    /// Seconds deaths were counted over: from the scan that took the
    /// members to the re-read.
    pub deaths_s: f64,
    /// One member in this many was followed.
    pub every: u64,
}

impl Counts {
    /// The deaths of the whole stock, estimated from the sample.
    pub fn deaths_estimate(&self) -> u64 {
        self.deaths * self.every
    }

    /// `P(B ≥ births)` if the stock died as fast as it is born.
    pub fn p_value(&self) -> f64 {
        if self.alloc_s <= 0.0 || self.deaths_s <= 0.0 || self.births == 0 {
            return 1.0;
        }
        let p0 = self.alloc_s / (self.alloc_s + self.deaths_s / self.every as f64);
        binomial_upper_tail(self.births + self.deaths, self.births, p0)
    }

    /// Births per second minus deaths per second.
    pub fn net_per_s(&self) -> f64 {
        self.birth_rate() - self.death_rate()
    }

    /// A one-sided 99 % lower bound of [`Counts::net_per_s`].
    pub fn net_per_s_lower(&self) -> f64 {
        let m = self.every as f64;
        let variance =
            self.births as f64 / self.alloc_s.max(1e-9).powi(2) + m * m * (self.deaths + 1) as f64 / self.deaths_s.max(1e-9).powi(2);
        self.net_per_s() - Z_99 * variance.sqrt()
    }

    fn birth_rate(&self) -> f64 {
        if self.alloc_s > 0.0 {
            self.births as f64 / self.alloc_s
        } else {
            0.0
        }
    }

    fn death_rate(&self) -> f64 {
        if self.deaths_s > 0.0 {
            self.deaths_estimate() as f64 / self.deaths_s
        } else {
            0.0
        }
    }
}

/// `P(X ≥ k)` for `X ~ Binomial(n, p)`, summed in log space (no underflow
/// for the millions of events a busy stock can show).
fn binomial_upper_tail(n: u64, k: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    let (ln_p, ln_q) = (p.ln(), (1.0 - p).ln());
    // ln P(X = i) by the recurrence P(i+1)/P(i) = (n-i)/(i+1) · p/q.
    let step = |ln_term: f64, i: u64| ln_term + ((n - i) as f64 / (i + 1) as f64).ln() + ln_p - ln_q;
    let ln_first = (0..k).fold(n as f64 * ln_q, step);
    // Sum the tail as max · Σ e^(term − max), rescaled when a larger term
    // comes: constant memory however many terms.
    let (mut ln_term, mut max, mut scaled_sum) = (ln_first, ln_first, 1.0f64);
    for i in k..n {
        ln_term = step(ln_term, i);
        if ln_term > max {
            scaled_sum = scaled_sum * (max - ln_term).exp() + 1.0;
            max = ln_term;
        } else {
            scaled_sum += (ln_term - max).exp();
            if ln_term < max - 50.0 {
                break; // past the peak: the rest adds less than e^-50 of the sum
            }
        }
    }
    (max + scaled_sum.ln()).exp().min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(births: u64, deaths: u64, every: u64) -> Counts {
        Counts { births, alloc_s: 48.0, deaths, deaths_s: 60.0, every }
    }

    #[test]
    fn binomial_tail_matches_known_values() {
        assert!((binomial_upper_tail(10, 5, 0.5) - 0.623_046_875).abs() < 1e-9);
        assert!((binomial_upper_tail(20, 20, 0.444_444) - 0.444_444f64.powi(20)).abs() < 1e-15);
        assert_eq!(binomial_upper_tail(5, 0, 0.3), 1.0);
        assert_eq!(binomial_upper_tail(5, 6, 0.3), 0.0);
        // Large n: the mean of Binomial(1e6, 0.5) is exceeded half the time.
        let half = binomial_upper_tail(1_000_000, 500_000, 0.5);
        assert!((half - 0.5).abs() < 0.01, "{half}");
    }

    /// The module's worked example: the seed's rate is named with every
    /// member followed and with 1 in 4, not with 1 in 16.
    #[test]
    fn the_seeds_rate_is_a_leak_when_followed_closely_enough() {
        let p = counts(20, 0, 1).p_value();
        assert!(p < 1e-6, "{p}");
        assert!(counts(16, 0, 1).p_value() < STRONG * 10.0);
        let p4 = counts(20, 0, 4).p_value();
        assert!(p4 < ALPHA && p4 > 1e-3, "{p4}");
        let p16 = counts(20, 0, 16).p_value();
        assert!(p16 > 0.1, "{p16}");
    }

    #[test]
    fn turnover_is_not_significant() {
        // Born and dying at 100 a second: 4800 births in 48 s, 6000 deaths in 60 s.
        let c = counts(4800, 6000, 1);
        assert!(c.p_value() > 0.3, "{}", c.p_value());
        assert!(c.net_per_s().abs() < 1.0 && c.net_per_s_lower() < 0.0);
        // The same through a 1 in 8 sample.
        assert!(counts(4800, 750, 8).p_value() > 0.1);
        // A leak on top of turnover: a fifth more births than deaths.
        let leak = counts(5800, 6000, 1);
        assert!(leak.p_value() < 1e-6 && leak.net_per_s_lower() > 0.0, "{}", leak.p_value());
    }

    #[test]
    fn nothing_born_proves_nothing() {
        assert_eq!(counts(0, 0, 1).p_value(), 1.0);
        assert_eq!(Counts { alloc_s: 0.0, ..counts(10, 0, 1) }.p_value(), 1.0);
        assert_eq!(counts(3, 2, 4).deaths_estimate(), 8);
    }
}
