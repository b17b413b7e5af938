//! How usage reads on screen: the footer under an answer's step and the chat's totals in the
//! winbar. Short forms (`1.2k`, `$0.004`), as people glance at them.

use crate::model::usage::Usage;

/// `340`, `1.2k`, `12k`, `1.5M`.
pub fn tokens(n: u64) -> String {
    let short = |v: f64, unit: &str| {
        if v < 10.0 {
            format!("{:.1}{unit}", v).replace(".0", "")
        } else {
            format!("{:.0}{unit}", v)
        }
    };
    match n {
        0..=999 => n.to_string(),
        1000..=999_999 => short(n as f64 / 1000.0, "k"),
        _ => short(n as f64 / 1_000_000.0, "M"),
    }
}

/// `$0.0018`, `$0.004`, `$0.12`, `$3.40`.
pub fn cost(c: f64) -> String {
    if c >= 1.0 {
        format!("${c:.2}")
    } else if c >= 0.01 {
        format!("${c:.3}")
    } else {
        // Two significant digits for small amounts, without trailing zeros.
        let s = format!("{c:.4}");
        format!("${}", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// `1.2k in · 340 out · $0.0018 · 5% ctx` (cost and fill only when known).
pub fn footer(u: &Usage) -> String {
    let mut parts = vec![
        format!("{} in", tokens(u.tokens_in())),
        format!("{} out", tokens(u.tokens_out())),
    ];
    if u.cost > 0.0 {
        parts.push(cost(u.cost));
    }
    if let Some(f) = u.fill() {
        parts.push(format!("{f}% ctx"));
    }
    parts.join(" · ")
}

/// A chat's totals for the winbar: `1.5k tok · $0.0036 · 5% ctx`; empty before any step.
pub fn totals(u: &Usage) -> String {
    if u.steps == 0 {
        return String::new();
    }
    let mut parts = vec![format!("{} tok", tokens(u.tokens()))];
    if u.cost > 0.0 {
        parts.push(cost(u.cost));
    }
    if let Some(f) = u.fill() {
        parts.push(format!("{f}% ctx"));
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        assert_eq!(
            [340, 1000, 1200, 12_400, 1_500_000].map(tokens),
            ["340", "1k", "1.2k", "12k", "1.5M"]
        );
        assert_eq!(
            [0.00178, 0.004, 0.1234, 3.4].map(cost),
            ["$0.0018", "$0.004", "$0.123", "$3.40"]
        );
    }
}
