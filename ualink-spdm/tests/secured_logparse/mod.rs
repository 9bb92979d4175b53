//! Reads a libspdm requester debug log (`tests/data/*.req.log`) into an ordered list of events:
//! the key-schedule inputs (DHE secret or PSK, th1/th2 hashes, key-update actions), every
//! derived value libspdm printed, and every SPDM message with the session it was sent in.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

/// One thing the log says happened, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// `libspdm_generate_session_handshake_key[SID]`: a new session's key schedule starts.
    HandshakeStart(u32),
    /// `libspdm_generate_session_data_key[SID]`.
    DataStart(u32),
    /// `th1 hash - ...`.
    Th1(Vec<u8>),
    /// `th2 hash - ...`.
    Th2(Vec<u8>),
    /// `[DHE Secret]: ...`.
    Dhe(Vec<u8>),
    /// `[PSK]: ...` (libspdm prints it twice; only the first of a run is kept).
    Psk(Vec<u8>),
    /// `libspdm_create_update_session_data_key[SID] Requester|Responder` (true = Requester).
    CreateUpdate { sid: u32, requester: bool },
    /// A derived value: `name (0xLEN) - hex`.
    Value { name: String, bytes: Vec<u8> },
    /// A transcript hash libspdm signed or verified: `th_curr hash`, `m1m2 hash`, `l1l2 hash`.
    Hash { name: String, bytes: Vec<u8> },
    /// `signature - ...` or a `signature (0xLEN):` dump (a signature libspdm verifies or made).
    Signature(Vec<u8>),
    /// `!!! NAME - PASS !!!`.
    Pass(String),
    /// An SPDM message: `libspdm_send_spdm_request[SID]` (send = true) or receive, with the hex
    /// dump lines that follow. SID 0 means outside a session.
    Message {
        send: bool,
        sid: u32,
        bytes: Vec<u8>,
    },
}

/// The names of derived values libspdm prints that the key schedule must reproduce.
pub(crate) const VALUE_NAMES: [&str; 12] = [
    "handshake_secret",
    "request_handshake_secret",
    "response_handshake_secret",
    "finished_key",
    "key",
    "iv",
    "master_secret",
    "request_data_secret",
    "response_data_secret",
    "export_master_secret",
    "ResponseDataSecretUpdate",
    "RequestDataSecretUpdate",
];

fn hex_after(rest: &str) -> Vec<u8> {
    let h: String = rest.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    hex::decode(h).unwrap()
}

fn bracket_sid(line: &str) -> u32 {
    let open = line.find('[').unwrap();
    let close = line[open..].find(']').unwrap() + open;
    u32::from_str_radix(&line[open + 1..close], 16).unwrap()
}

/// Parses `tests/data/<name>`.
pub(crate) fn parse(name: &str) -> Vec<Event> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: Vec<Event> = Vec::new();
    let mut in_message = false;
    for line in text.lines() {
        let t = line.trim_end();
        // Hex dump continuation lines: "0000: 13 e4 ff ...".
        if in_message {
            if let Some((off, rest)) = t.split_once(": ") {
                if off.len() == 4 && off.chars().all(|c| c.is_ascii_hexdigit()) {
                    match out.last_mut() {
                        Some(Event::Message { bytes, .. }) | Some(Event::Signature(bytes)) => {
                            bytes.extend(hex_after(rest))
                        }
                        _ => {}
                    }
                    continue;
                }
            }
            in_message = false;
        }
        if t.starts_with("libspdm_send_spdm_request[")
            || t.starts_with("libspdm_receive_spdm_response[")
        {
            out.push(Event::Message {
                send: t.starts_with("libspdm_send"),
                sid: bracket_sid(t),
                bytes: Vec::new(),
            });
            in_message = true;
        } else if t.starts_with("libspdm_generate_session_handshake_key[") {
            out.push(Event::HandshakeStart(bracket_sid(t)));
        } else if t.starts_with("libspdm_generate_session_data_key[") {
            out.push(Event::DataStart(bracket_sid(t)));
        } else if t.starts_with("libspdm_create_update_session_data_key[") {
            out.push(Event::CreateUpdate {
                sid: bracket_sid(t),
                requester: t.ends_with("Requester"),
            });
        } else if t.starts_with("signature (0x") && t.ends_with("):") {
            // A hex dump of the signature follows.
            out.push(Event::Signature(Vec::new()));
            in_message = true;
        } else if let Some(rest) = t.strip_prefix("signature - ") {
            out.push(Event::Signature(hex_after(rest)));
        } else if let Some(name) = t
            .strip_prefix("!!! ")
            .and_then(|r| r.strip_suffix(" - PASS !!!"))
        {
            out.push(Event::Pass(name.to_string()));
        } else if let Some((name, rest)) = ["th_curr hash - ", "m1m2 hash - ", "l1l2 hash - "]
            .iter()
            .find_map(|p| t.strip_prefix(p).map(|r| (p.trim_end_matches(" - "), r)))
        {
            out.push(Event::Hash {
                name: name.to_string(),
                bytes: hex_after(rest),
            });
        } else if let Some(rest) = t.strip_prefix("th1 hash - ") {
            out.push(Event::Th1(hex_after(rest)));
        } else if let Some(rest) = t.strip_prefix("th2 hash - ") {
            out.push(Event::Th2(hex_after(rest)));
        } else if let Some(rest) = t.strip_prefix("[DHE Secret]: ") {
            out.push(Event::Dhe(hex_after(rest)));
        } else if let Some(rest) = t.strip_prefix("[PSK]: ") {
            let v = hex_after(rest);
            if out.last() != Some(&Event::Psk(v.clone())) {
                out.push(Event::Psk(v));
            }
        } else if let Some((name, rest)) = t.split_once(" (0x") {
            if VALUE_NAMES.contains(&name) {
                if let Some((_, hexpart)) = rest.split_once(") - ") {
                    out.push(Event::Value {
                        name: name.to_string(),
                        bytes: hex_after(hexpart),
                    });
                }
            }
        }
    }
    out
}
