//! The provider subcommands: one request each to a running service (API.md "Provider
//! endpoints"), printed as a table or, with `--json`, as the raw JSON answer.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use super::client::{segment, ClientError, TsmClient};
use super::table;

/// Where the service is and how to authenticate to it.
#[derive(Args, Debug, Clone)]
pub(crate) struct Conn {
    /// The service URL.
    #[arg(long, default_value = "https://127.0.0.1:8443")]
    pub(crate) tsm: String,
    /// Directory with admin.pem, admin.key and tsm-ca.pem (the server's STATE/tls/).
    #[arg(long)]
    pub(crate) tls_dir: PathBuf,
    /// Print the raw JSON answer.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `tenant ...`
#[derive(Subcommand, Debug)]
pub(crate) enum TenantCmd {
    /// Create a tenant.
    Add {
        /// Tenant name (used in every URL).
        #[arg(long)]
        name: String,
        /// Numeric tenant ID (UALink tenant).
        #[arg(long)]
        id: u32,
        /// The tenant's lead guest agent generates its link keys (else the TSM does).
        #[arg(long)]
        lead_keys: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

/// `vpod ...`
#[derive(Subcommand, Debug)]
pub(crate) enum VpodCmd {
    /// Form a tenant's vPod from whole accelerators (routing opens between members only).
    Create {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Accelerator IDs, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<u16>,
        #[command(flatten)]
        conn: Conn,
    },
}

/// `window ...`
#[derive(Subcommand, Debug)]
pub(crate) enum WindowCmd {
    /// Carve a memory window on one of the tenant's accelerators.
    Add {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Accelerator ID.
        #[arg(long)]
        accelerator: u16,
        /// Base address (decimal or 0x hex).
        #[arg(long, value_parser = parse_u64)]
        base: u64,
        /// Length in bytes (decimal or 0x hex).
        #[arg(long, value_parser = parse_u64)]
        len: u64,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Decimal or `0x` hexadecimal.
pub(crate) fn parse_u64(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s}: {e}"))
}

/// One provider request, resolved from the command line.
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) body: Option<Value>,
}

impl Call {
    fn new(method: Method, path: String, body: Option<Value>) -> Self {
        Self { method, path, body }
    }

    /// `POST /ualink/v0/tenants`.
    pub(crate) fn tenant_add(name: &str, id: u32, lead_keys: bool) -> Result<Self, ClientError> {
        segment(name)?;
        Ok(Self::new(
            Method::POST,
            "/ualink/v0/tenants".into(),
            Some(json!({"id": id, "name": name, "lead_keys": lead_keys})),
        ))
    }

    /// `POST /ualink/v0/tenants/{T}/vpod`.
    pub(crate) fn vpod_create(tenant: &str, members: &[u16]) -> Result<Self, ClientError> {
        Ok(Self::new(
            Method::POST,
            format!("/ualink/v0/tenants/{}/vpod", segment(tenant)?),
            Some(json!({"members": members})),
        ))
    }

    /// `POST /ualink/v0/tenants/{T}/windows`.
    pub(crate) fn window_add(
        tenant: &str,
        accelerator: u16,
        base: u64,
        len: u64,
    ) -> Result<Self, ClientError> {
        Ok(Self::new(
            Method::POST,
            format!("/ualink/v0/tenants/{}/windows", segment(tenant)?),
            Some(json!({"accelerator_id": accelerator, "base": base, "len": len})),
        ))
    }

    /// `DELETE /ualink/v0/tenants/{T}`.
    pub(crate) fn offboard(tenant: &str) -> Result<Self, ClientError> {
        Ok(Self::new(
            Method::DELETE,
            format!("/ualink/v0/tenants/{}", segment(tenant)?),
            None,
        ))
    }

    /// `GET /ualink/v0/devices[/{id}]`.
    pub(crate) fn devices(id: Option<u16>) -> Self {
        let path = match id {
            Some(id) => format!("/ualink/v0/devices/{id}"),
            None => "/ualink/v0/devices".into(),
        };
        Self::new(Method::GET, path, None)
    }

    /// `GET /ualink/v0/status`.
    pub(crate) fn status() -> Self {
        Self::new(Method::GET, "/ualink/v0/status".into(), None)
    }

    /// `POST /ualink/v0/devices/{id}/reattest`.
    pub(crate) fn reattest(id: u16) -> Self {
        Self::new(
            Method::POST,
            format!("/ualink/v0/devices/{id}/reattest"),
            None,
        )
    }

    /// `POST /ualink/v0/links/{a}/{b}/rotate`.
    pub(crate) fn rotate(a: u16, b: u16) -> Self {
        Self::new(
            Method::POST,
            format!("/ualink/v0/links/{a}/{b}/rotate"),
            None,
        )
    }

    /// `POST /ualink/v0/links/{a}/{b}/key`.
    pub(crate) fn link_key(a: u16, b: u16) -> Self {
        Self::new(Method::POST, format!("/ualink/v0/links/{a}/{b}/key"), None)
    }

    /// `POST /ualink/v0/tenants/{T}/tdis/{accel}/lock`.
    pub(crate) fn lock(tenant: &str, accelerator: u16) -> Result<Self, ClientError> {
        Ok(Self::new(
            Method::POST,
            format!(
                "/ualink/v0/tenants/{}/tdis/{accelerator}/lock",
                segment(tenant)?
            ),
            None,
        ))
    }

    /// `POST /ualink/v0/tenants/{T}/keys/provision`.
    pub(crate) fn provision(tenant: &str) -> Result<Self, ClientError> {
        Ok(Self::new(
            Method::POST,
            format!("/ualink/v0/tenants/{}/keys/provision", segment(tenant)?),
            None,
        ))
    }

    /// Sends the call.
    pub(crate) async fn send(&self, client: &TsmClient) -> Result<Value, ClientError> {
        client
            .call(self.method.clone(), &self.path, self.body.as_ref())
            .await
    }
}

/// Runs `call` against `conn` and prints the answer; returns the exit code.
pub(crate) fn run(conn: &Conn, call: Result<Call, ClientError>) -> u8 {
    let result = call.and_then(|call| {
        let client = TsmClient::from_tls_dir(&conn.tsm, &conn.tls_dir)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Usage(format!("tokio runtime: {e}")))?;
        rt.block_on(call.send(&client))
    });
    match result {
        Ok(v) => {
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print!("{}", table::render(&v));
            }
            0
        }
        Err(e) => {
            if conn.json {
                if let ClientError::Server {
                    status,
                    code,
                    reason,
                    rules,
                } = &e
                {
                    println!(
                        "{}",
                        json!({"status": status, "code": code, "reason": reason, "rules": rules})
                    );
                }
            }
            eprintln!("ualink-tsm: {e}");
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn numbers_and_paths() {
        assert_eq!(parse_u64("0x10000").unwrap(), 0x10000);
        assert_eq!(parse_u64("4096").unwrap(), 4096);
        assert!(parse_u64("0xzz").is_err());
        let c = Call::window_add("acme", 1, 0x1000, 0x2000).unwrap();
        assert_eq!(c.path, "/ualink/v0/tenants/acme/windows");
        assert_eq!(
            c.body.unwrap(),
            json!({"accelerator_id": 1, "base": 4096, "len": 8192})
        );
        assert!(Call::offboard("../status").is_err());
        assert_eq!(Call::rotate(1, 2).path, "/ualink/v0/links/1/2/rotate");
    }
}
