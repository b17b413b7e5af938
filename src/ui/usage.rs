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

/// One step as the report counts it.
#[derive(Clone, Debug)]
pub struct Step {
    pub session: String,
    pub agent: String,
    pub model: String,
    /// Unix seconds; None for steps stored before boo recorded it (they count in "all").
    pub at: Option<u64>,
    pub usage: Usage,
}

const BAR: usize = 24;

/// Rows of one grouping, largest first, with a bar scaled to the largest (by cost, or by
/// tokens when nothing was priced).
fn group(steps: &[&Step], key: impl Fn(&Step) -> &str) -> Vec<String> {
    let mut sums: Vec<(String, Usage)> = Vec::new();
    for s in steps {
        let k = key(s);
        match sums.iter_mut().find(|(n, _)| n == k) {
            Some((_, u)) => u.add(&s.usage),
            None => sums.push((k.to_string(), s.usage)),
        }
    }
    let priced = sums.iter().any(|(_, u)| u.cost > 0.0);
    let size = |u: &Usage| if priced { u.cost } else { u.tokens() as f64 };
    sums.sort_by(|a, b| size(&b.1).total_cmp(&size(&a.1)));
    let max = sums.first().map(|(_, u)| size(u)).unwrap_or(0.0);
    let width = sums
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0)
        .min(32);
    sums.iter()
        .map(|(name, u)| {
            let n = if max > 0.0 {
                (size(u) / max * BAR as f64).round() as usize
            } else {
                0
            };
            let bar = format!("{}{}", "█".repeat(n.max(1)), "·".repeat(BAR - n.max(1)));
            let name: String = name.chars().take(width).collect();
            format!(
                "    {name:<width$}  {bar}  {} in · {} out · {} · {} steps",
                tokens(u.tokens_in()),
                tokens(u.tokens_out()),
                cost(u.cost),
                u.steps
            )
        })
        .collect()
}

/// The `:Boo usage` buffer: today (since `today`, the local midnight in unix seconds), the
/// last 7 days and all, each by session, agent and model.
pub fn report(steps: &[Step], now: u64, today: u64) -> Vec<String> {
    let mut out = vec![
        "boo usage: tokens and cost by session, agent and model".to_string(),
        String::new(),
    ];
    let week = now.saturating_sub(7 * 24 * 3600);
    let periods: [(&str, Option<u64>); 3] = [
        ("Today", Some(today)),
        ("Last 7 days", Some(week)),
        ("All", None),
    ];
    for (title, since) in periods {
        let picked: Vec<&Step> = steps
            .iter()
            .filter(|s| since.is_none_or(|t| s.at.is_some_and(|a| a >= t)))
            .collect();
        let mut total = Usage::default();
        for s in &picked {
            total.add(&s.usage);
        }
        out.push(format!(
            "{title}: {} tokens · {}",
            tokens(total.tokens()),
            cost(total.cost)
        ));
        if picked.is_empty() {
            out.push("    (nothing)".to_string());
        } else {
            for (by, key) in [
                (
                    "session",
                    (|s: &Step| s.session.as_str()) as fn(&Step) -> &str,
                ),
                ("agent", |s: &Step| s.agent.as_str()),
                ("model", |s: &Step| s.model.as_str()),
            ] {
                out.push(format!("  by {by}"));
                out.extend(group(&picked, key));
            }
        }
        out.push(String::new());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_groups_by_period_with_bars() {
        let u = |c: f64| Usage {
            input: 100,
            cost: c,
            steps: 1,
            ..Default::default()
        };
        let step = |session: &str, at, c| Step {
            session: session.into(),
            agent: "opencode".into(),
            model: "p/m".into(),
            at,
            usage: u(c),
        };
        let now = 10_000_000;
        let steps = [
            step("new", Some(now - 10), 0.02),
            step("old", Some(now - 30 * 24 * 3600), 0.01),
            step("older", None, 0.01),
        ];
        let r = report(&steps, now, now - 3600).join("\n");
        let today = &r[r.find("Today").unwrap()..r.find("Last 7").unwrap()];
        assert!(today.contains("new") && !today.contains("old"), "{r}");
        assert!(
            r.contains(&format!("    new    {}", "█".repeat(BAR))),
            "{r}"
        );
        assert!(
            r.contains(&format!(
                "    old    {}{}",
                "█".repeat(BAR / 2),
                "·".repeat(BAR / 2)
            )),
            "{r}"
        );
        assert!(r.contains("All: 300 tokens · $0.04"), "{r}");
    }

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
