//! `cargo run -p ualink-policy --example check_policy -- DIR`: loads a policy bundle the way
//! the TSM and the auditor do (every load-time check) and prints its digest and decisions,
//! or the error with its file and line.

fn main() -> std::process::ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: check_policy DIR");
        return std::process::ExitCode::from(2);
    };
    match ualink_policy::PolicyBundle::load(&dir) {
        Ok(b) => {
            println!("sha384:{}", b.digest_hex());
            for k in b.decision_kinds() {
                println!("  {k}: package {}", k.package());
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{dir}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
