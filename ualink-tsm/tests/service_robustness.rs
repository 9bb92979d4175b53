//! Random requests over real TLS (a deterministic generator: methods, paths built from the
//! API's own segments and junk, bodies that are valid JSON, mutated JSON or random bytes)
//! from an admin, an unattested agent and an attested agent: the server answers every one
//! with a status from the documented set and a JSON error naming a code, and stays up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use hyper::StatusCode;
use serde_json::json;
use service_support::*;

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }
}

const SEGMENTS: &[&str] = &[
    "kbs",
    "v0",
    "auth",
    "attest",
    "resource",
    "ualink",
    "tsm",
    "tenants",
    "tenant-a",
    "tenant-b",
    "vpod",
    "tdis",
    "1",
    "2",
    "65535",
    "99999999999",
    "-1",
    "report",
    "accept",
    "reject",
    "keys",
    "provision",
    "exports",
    "imports",
    "events",
    "devices",
    "reattest",
    "links",
    "rotate",
    "key",
    "status",
    "windows",
    "lock",
    "config",
    "..",
    "%2e%2e",
    "",
    "a b",
    "\u{e9}",
];

fn body(rng: &mut Rng) -> Option<Vec<u8>> {
    let valid = [
        json!({"version": "0.4.0", "tee": "snp", "extra-params": ""}),
        json!({"id": 7, "name": "t7", "lead_keys": true}),
        json!({"members": [1, 2, 3]}),
        json!({"accelerator_id": 1, "base": 0, "len": 4096}),
        json!({"report_digest": "00"}),
        json!({"report_digest": "00", "failed_checks": ["x"]}),
        json!({"epoch": 1, "keys": [{"tx": 1, "port": 0, "rx": 2, "key": "AAAA"}]}),
        json!({"accelerator_id": 1, "window_base": 0, "offset": 0, "len": 1,
               "to_tenant": "tenant-b", "to_os": 1, "rights": ["read"]}),
        json!({"offer_id": "00", "os_instance": 1, "accelerator_id": 3, "rights": ["read"]}),
        json!({"init-data": null, "runtime-data": {"nonce": "x", "tee-pubkey": {"kty": "EC"}},
               "tee-evidence": {"primary_evidence": {}, "additional_evidence": ""}}),
    ];
    match rng.next() % 4 {
        0 => None,
        1 => Some(serde_json::to_vec(rng.pick(&valid)).unwrap()),
        2 => {
            let mut b = serde_json::to_vec(rng.pick(&valid)).unwrap();
            for _ in 0..(rng.next() % 4 + 1) {
                let i = (rng.next() % b.len() as u64) as usize;
                b[i] = (rng.next() & 0xff) as u8;
            }
            Some(b)
        }
        _ => Some(
            (0..(rng.next() % 300))
                .map(|_| (rng.next() & 0xff) as u8)
                .collect(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_get_documented_errors_and_the_server_stays_up() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin();
    let anon_agent = h.agent();
    let mut agent = h.agent();
    assert_eq!(agent.attest(&h.sim_cvm()).await.status, StatusCode::OK);
    let clients = [&admin, &anon_agent, &agent];
    let allowed = [200u16, 201, 400, 401, 403, 404, 409, 413, 502, 503];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..200 {
        let c = *rng.pick(&clients);
        let method = *rng.pick(&["GET", "POST", "DELETE", "PUT"]);
        let n = rng.next() % 7 + 1;
        let mut path = String::new();
        for _ in 0..n {
            path.push('/');
            let seg = rng.pick::<&str>(SEGMENTS);
            path.push_str(seg);
        }
        let path: String = path
            .chars()
            .map(|ch| if ch == ' ' || !ch.is_ascii() { '_' } else { ch })
            .collect();
        let b = body(&mut rng);
        let r = c
            .try_send(method, &path, b.clone())
            .await
            .unwrap_or_else(|e| panic!("#{i} {method} {path}: {e}"));
        assert!(
            allowed.contains(&r.status.as_u16()),
            "#{i} {method} {path}: {}",
            r.status
        );
        if !r.status.is_success() {
            let code = r.code();
            assert!(!code.is_empty(), "#{i} {method} {path}: no code");
        }
    }
    // Still serving, and the attested agent's session still works.
    assert_eq!(admin.get("/ualink/v0/status").await.status, StatusCode::OK);
    assert_eq!(agent.get("/ualink/v0/tsm").await.status, StatusCode::OK);
}
