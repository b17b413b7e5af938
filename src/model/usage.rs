//! Token usage and cost, read from the `step-finish` items opencode's steps leave in a
//! transcript (`meta.tokens`, `meta.cost`, `meta.context_limit`, optionally `meta.context`). The transcript is the
//! record, so usage is persisted with it and survives restarts without a table of its own.

use serde_json::Value as Json;

use super::transcript::Transcript;
use super::ItemKind;

/// Usage of one step, or summed over several.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// Input tokens not read from the cache.
    pub input: u64,
    /// Output tokens without reasoning.
    pub output: u64,
    pub reasoning: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    /// Dollars.
    pub cost: f64,
    /// Tokens in the model's context after the last step, and its window (0 = unknown).
    pub context: u64,
    pub context_limit: u64,
    /// Steps summed.
    pub steps: u64,
}

fn num(v: &Json, ptr: &str) -> u64 {
    v.pointer(ptr).and_then(Json::as_u64).unwrap_or(0)
}

impl Usage {
    /// The usage of a `step-finish` item's meta; None for any other item.
    pub fn of_step(meta: &Json) -> Option<Usage> {
        if meta.get("type").and_then(Json::as_str) != Some("step-finish") {
            return None;
        }
        let t = meta.get("tokens")?;
        let mut u = Usage {
            input: num(t, "/input"),
            output: num(t, "/output"),
            reasoning: num(t, "/reasoning"),
            cache_read: num(t, "/cache/read"),
            cache_write: num(t, "/cache/write"),
            cost: meta.get("cost").and_then(Json::as_f64).unwrap_or(0.0),
            context: 0,
            context_limit: num(meta, "/context_limit"),
            steps: 1,
        };
        // An ACP agent may say how full the context is; else the step's tokens are.
        u.context = meta
            .get("context")
            .and_then(Json::as_u64)
            .unwrap_or_else(|| u.tokens());
        Some(u)
    }

    /// The prompt as the model read it: fresh input plus cache reads and writes.
    pub fn tokens_in(&self) -> u64 {
        self.input + self.cache_read + self.cache_write
    }

    /// What the model wrote, reasoning included.
    pub fn tokens_out(&self) -> u64 {
        self.output + self.reasoning
    }

    pub fn tokens(&self) -> u64 {
        self.tokens_in() + self.tokens_out()
    }

    /// Context fill in percent, when the window is known.
    pub fn fill(&self) -> Option<u64> {
        (self.context_limit > 0)
            .then(|| (self.context * 100 + self.context_limit / 2) / self.context_limit)
    }

    /// Adds a later step: counts and cost add up, the context is the later one's.
    pub fn add(&mut self, o: &Usage) {
        self.input += o.input;
        self.output += o.output;
        self.reasoning += o.reasoning;
        self.cache_read += o.cache_read;
        self.cache_write += o.cache_write;
        self.cost += o.cost;
        self.steps += o.steps;
        if o.steps > 0 {
            self.context = o.context;
            self.context_limit = o.context_limit;
        }
    }

    /// A chat's totals: every step of its transcript.
    pub fn of_transcript(t: &Transcript) -> Usage {
        let mut total = Usage::default();
        for it in t.items().filter(|i| i.kind == ItemKind::Info) {
            if let Some(u) = Usage::of_step(&it.meta) {
                total.add(&u);
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_step_splits_into_in_out_and_fill() {
        let meta = json!({"type": "step-finish", "cost": 0.00178, "context_limit": 32000,
            "tokens": {"input": 1000, "output": 300, "reasoning": 40, "cache": {"read": 200, "write": 0}}});
        let u = Usage::of_step(&meta).expect("a step");
        assert_eq!(
            (u.tokens_in(), u.tokens_out(), u.fill()),
            (1200, 340, Some(5))
        );
        let mut total = u;
        total.add(&u);
        assert_eq!(
            (total.tokens(), total.steps, total.fill()),
            (3080, 2, Some(5))
        );
        assert!(Usage::of_step(&json!({"type": "queued"})).is_none());
    }
}
