//! Test-only: a seeded random generator and mutators of JSON and bytes, so the parsers of agent
//! output are fed random, truncated and garbage input reproducibly (the seed is in the message).

use serde_json::{json, Map, Value};

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Strings that make text handling interesting: multi-byte characters, the tag opencode's
/// text carries, line ends, an empty string.
const ODD: &[&str] = &[
    "",
    "é",
    "日本",
    "🦀",
    "<dcp-message-id>",
    "</dcp-message-id>",
    "<dcp-",
    "\r\n",
    "\u{0}",
    "data: x",
];

fn random_string(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(4) {
        s.push_str(ODD[rng.below(ODD.len())]);
    }
    s
}

/// Any JSON value, small.
pub fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 2 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(2)),
        2 => json!(rng.next() as i64),
        3 => json!(-1.5),
        4 => json!(u64::MAX),
        5 => json!(random_string(rng)),
        6 => Value::Array(
            (0..rng.below(3))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut m = Map::new();
            for _ in 0..rng.below(3) {
                m.insert(random_string(rng), random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
    }
}

/// A copy of `v` with some nodes replaced by random values, dropped, or (strings) cut short.
// The rng decides and then mutates in one closure: `filter` + `map` would borrow it twice.
#[allow(clippy::filter_map_bool_then)]
pub fn mutate(v: &Value, rng: &mut Rng) -> Value {
    if rng.chance(12) {
        return random_value(rng, 0);
    }
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter_map(|(k, x)| (!rng.chance(10)).then(|| (k.clone(), mutate(x, rng))))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter_map(|x| (!rng.chance(10)).then(|| mutate(x, rng)))
                .collect(),
        ),
        Value::String(s) if rng.chance(5) => {
            let cut = s
                .char_indices()
                .map(|(i, _)| i)
                .nth(rng.below(s.chars().count() + 1));
            let mut t = s[..cut.unwrap_or(s.len())].to_string();
            t.push_str(&random_string(rng));
            json!(t)
        }
        _ => v.clone(),
    }
}

/// A line of text mutated as bytes: cut, a byte flipped, or garbage appended (kept valid UTF-8
/// by lossy conversion, as a caller reading lines would get).
pub fn mutate_line(line: &str, rng: &mut Rng) -> String {
    let mut b = line.as_bytes().to_vec();
    match rng.below(4) {
        0 => b.truncate(rng.below(b.len() + 1)),
        1 if !b.is_empty() => {
            let i = rng.below(b.len());
            b[i] = rng.next() as u8;
        }
        2 => b.extend((0..rng.below(16)).map(|_| rng.next() as u8)),
        _ => {}
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Runs `body` for `runs` seeds; a panic names the seed that caused it.
pub fn for_seeds(runs: u64, body: impl Fn(&mut Rng) + std::panic::RefUnwindSafe) {
    for seed in 1..=runs {
        let r = std::panic::catch_unwind(|| body(&mut Rng::new(seed)));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("panicked with seed {seed}: {msg}");
        }
    }
}
