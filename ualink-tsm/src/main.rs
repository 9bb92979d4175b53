//! The `ualink-tsm` command: `serve` (the mTLS service over a pod), `demo` (the whole
//! lifecycle in seconds), `bring-up`, and the provider subcommands that drive a running
//! service (`tenant add`, `vpod create`, `window add`, `offboard`, `devices`, `status`,
//! `reattest`, `rotate`, `lock`, `provision`).
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
