//! `boo-fake-model`: runs the scripted OpenAI-compatible model (see `boo_testkit::fake_model`
//! for the scenario markers), prints its base URL on stdout and serves until killed.

use std::io::Write;

fn main() {
    let model = boo_testkit::fake_model::FakeModel::start();
    println!("{}", model.base_url());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
