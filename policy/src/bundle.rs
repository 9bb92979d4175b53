//! Policy bundles: a set of Rego files plus one data document, with a SHA-384 digest.

use crate::canon;
use crate::engine::{self, DecisionKind};
use crate::error::{malformed, PolicyError, Result};
use crate::scan;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Magic that starts the canonical serialization (format version 1).
pub const BUNDLE_MAGIC: &[u8] = b"UALINK-POLICY-BUNDLE/1\0";

/// Top-level data key the policies read their configuration from (`data.ualink_data`).
/// `data.ualink` itself is reserved for the decision packages.
pub const DATA_ROOT: &str = "ualink_data";

/// The bundled default policies, embedded at build time (name, contents).
const DEFAULT_REGO: &[(&str, &str)] = &[
    ("cvm.rego", include_str!("../defaults/cvm.rego")),
    ("device.rego", include_str!("../defaults/device.rego")),
    (
        "key_rotation.rego",
        include_str!("../defaults/key_rotation.rego"),
    ),
    ("lib.rego", include_str!("../defaults/lib.rego")),
    ("share.rego", include_str!("../defaults/share.rego")),
    (
        "tdi_accept.rego",
        include_str!("../defaults/tdi_accept.rego"),
    ),
];
const DEFAULT_DATA: (&str, &str) = ("data.json", include_str!("../defaults/data.json"));

/// A validated policy bundle: Rego files (by file name) and the merged data document.
///
/// Guarantees, checked when the bundle is built (by [`PolicyBundle::load`],
/// [`PolicyBundle::defaults`], [`PolicyBundle::from_parts`] or [`PolicyBundle::with_data`]):
/// * every Rego file parses and compiles with the rest of the bundle;
/// * every Rego file has `import rego.v1`;
/// * no Rego file calls a builtin with an outside-world result (`time.now_ns`, `rand.intn`,
///   `uuid.rfc4122`, `http.send`, `net.lookup_ip_addr`, `opa.runtime`,
///   `io.jwt.decode_verify`): decisions depend only on `input` and `data`, so they replay;
/// * each decision package present (`ualink.device`, `ualink.tdi_accept`, `ualink.share`,
///   `ualink.key_rotation`, `ualink.cvm`) defines `allow`, `deny` and `allow_rules`, evaluates
///   on an empty input without error, and does not allow it;
/// * the data document is a JSON object and does not use the reserved key `ualink`.
///
/// # Digest
/// [`PolicyBundle::digest`] is SHA-384 over [`PolicyBundle::canonical_bytes`]:
/// ```text
/// "UALINK-POLICY-BUNDLE/1\0"
/// u32 BE  number of Rego files
/// per Rego file, sorted by the UTF-8 bytes of its name:
///     u32 BE name length | name (UTF-8) | u64 BE contents length | contents (bytes as read)
/// u64 BE  data length | data as canonical JSON (sorted keys, no whitespace; see below)
/// ```
/// Rego files count byte for byte (a comment change changes the digest). Data counts by
/// value: the data files of a directory are merged into one document whose canonical JSON is
/// hashed, so reformatting a data file or splitting it in two does not change the digest,
/// while changing any value does. Canonical JSON: object members sorted by key bytes, no
/// whitespace, strings escaped as serde_json does, numbers as serde_json prints them.
#[derive(Clone, Debug)]
pub struct PolicyBundle {
    rego: BTreeMap<String, String>,
    data: Value,
    digest: [u8; 48],
    template: regorus::Engine,
}

impl PolicyBundle {
    /// Loads a bundle from `dir`: every regular file named `*.rego` is a policy module and
    /// every `*.json` a data file; other entries (README, subdirectories) are ignored. Data
    /// files must be JSON objects; they are deep-merged, and two files setting the same
    /// non-object value is an error ([`PolicyError::DataConflict`]).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let io = |path: &Path, source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let entry = entry.map_err(|e| io(dir, e))?;
            let path = entry.path();
            let meta = std::fs::metadata(&path).map_err(|e| io(&path, e))?;
            if !meta.is_file() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(PolicyError::BadBundle {
                    reason: format!("file name {:?} is not UTF-8", entry.file_name()),
                });
            };
            if name.ends_with(".rego") || name.ends_with(".json") {
                names.push(name);
            }
        }
        names.sort();
        let mut rego = BTreeMap::new();
        let mut data_files = Vec::new();
        for name in names {
            let path = dir.join(&name);
            let contents = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            if name.ends_with(".rego") {
                rego.insert(name, contents);
            } else {
                data_files.push((name, contents));
            }
        }
        let data = merge_data_files(&data_files)?;
        Self::build(rego, data)
    }

    /// The bundled default policies (`policy/defaults/`, embedded in the crate). Their data
    /// trusts no vendor root, holds no reference values and lists no tenant, so every
    /// decision is denied until the deployment overlays its own data with
    /// [`PolicyBundle::with_data`].
    pub fn defaults() -> Result<Self> {
        let rego = DEFAULT_REGO
            .iter()
            .map(|(n, c)| ((*n).to_owned(), (*c).to_owned()))
            .collect();
        let data = merge_data_files(&[(DEFAULT_DATA.0.to_owned(), DEFAULT_DATA.1.to_owned())])?;
        Self::build(rego, data)
    }

    /// A bundle from Rego sources `(file name, contents)` and a data document.
    pub fn from_parts(
        rego: impl IntoIterator<Item = (String, String)>,
        data: Value,
    ) -> Result<Self> {
        let mut map = BTreeMap::new();
        for (name, contents) in rego {
            if map.insert(name.clone(), contents).is_some() {
                return Err(PolicyError::BadBundle {
                    reason: format!("two Rego files named {name}"),
                });
            }
        }
        Self::build(map, data)
    }

    /// This bundle with `overlay` deep-merged into its data: objects merge member by member;
    /// any other value (arrays included) replaces what was there. The result is a new bundle
    /// with its own digest. Example: the demo turns on the sim TEE and trusts its own vendor
    /// root with `{"ualink_data": {"allow_sim_tee": true, "device": {"trusted_vendor_roots":
    /// [...]}}}`.
    pub fn with_data(self, overlay: Value) -> Result<Self> {
        if !overlay.is_object() {
            return Err(PolicyError::BadData {
                file: "<overlay>".into(),
                line: 0,
                column: 0,
                reason: "the overlay must be a JSON object".into(),
            });
        }
        let mut data = self.data;
        canon::overlay(&mut data, overlay);
        Self::build(self.rego, data)
    }

    fn build(rego: BTreeMap<String, String>, data: Value) -> Result<Self> {
        if rego.is_empty() {
            return Err(PolicyError::BadBundle {
                reason: "no .rego file".into(),
            });
        }
        let Some(obj) = data.as_object() else {
            return Err(PolicyError::BadData {
                file: "<data>".into(),
                line: 0,
                column: 0,
                reason: "the data document must be a JSON object".into(),
            });
        };
        if obj.contains_key("ualink") {
            return Err(PolicyError::BadData {
                file: "<data>".into(),
                line: 0,
                column: 0,
                reason: "data.ualink is reserved for the decision packages".into(),
            });
        }
        let mut template = regorus::Engine::new();
        for (name, contents) in &rego {
            if name.is_empty() || name.contains(['/', '\\']) || !name.ends_with(".rego") {
                return Err(PolicyError::BadBundle {
                    reason: format!("bad Rego file name {name:?}"),
                });
            }
            template
                .add_policy(name.clone(), contents.clone())
                .map_err(|e| malformed(name, &e))?;
            scan::check_source(name, contents)?;
        }
        template
            .add_data(regorus::Value::from(data.clone()))
            .map_err(|e| PolicyError::BadData {
                file: "<data>".into(),
                line: 0,
                column: 0,
                reason: format!("{e:#}"),
            })?;
        engine::check_packages(&mut template)?;
        let digest = digest_of(&rego, &data);
        Ok(Self {
            rego,
            data,
            digest,
            template,
        })
    }

    /// SHA-384 of [`PolicyBundle::canonical_bytes`]. Every decision records it.
    pub fn digest(&self) -> [u8; 48] {
        self.digest
    }

    /// The digest as 96 lowercase hex digits.
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }

    /// The exact bytes the digest covers (layout in the type's documentation).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_bytes(&self.rego, &self.data)
    }

    /// The Rego files, `(name, contents)`, sorted by name.
    pub fn rego_files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rego.iter().map(|(n, c)| (n.as_str(), c.as_str()))
    }

    /// The merged data document.
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The decision kinds this bundle has a package for; the others are always denied with
    /// rule `default_deny`.
    pub fn decision_kinds(&self) -> Vec<DecisionKind> {
        engine::kinds_present(&self.template)
    }

    /// Writes the bundle to `dir` (created if missing; must hold no `.rego` or `.json` file
    /// yet): each Rego file as is, and the data as `data.json` (pretty-printed). Loading
    /// `dir` gives a bundle with the same digest, which is how an auditor gets the bundle a
    /// decision was made under.
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let io = |path: &Path, source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let entry = entry.map_err(|e| io(dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".rego") || name.ends_with(".json") {
                return Err(PolicyError::BadBundle {
                    reason: format!("{} already holds {name}", dir.display()),
                });
            }
        }
        for (name, contents) in &self.rego {
            let p = dir.join(name);
            std::fs::write(&p, contents).map_err(|e| io(&p, e))?;
        }
        let p = dir.join("data.json");
        let mut json =
            serde_json::to_string_pretty(&self.data).map_err(|e| PolicyError::BadData {
                file: "data.json".into(),
                line: 0,
                column: 0,
                reason: e.to_string(),
            })?;
        json.push('\n');
        std::fs::write(&p, json).map_err(|e| io(&p, e))?;
        Ok(())
    }

    pub(crate) fn template(&self) -> &regorus::Engine {
        &self.template
    }
}

fn merge_data_files(files: &[(String, String)]) -> Result<Value> {
    let mut data = Value::Object(serde_json::Map::new());
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    for (name, contents) in files {
        let v: Value = serde_json::from_str(contents).map_err(|e| PolicyError::BadData {
            file: name.clone(),
            line: u32::try_from(e.line()).unwrap_or(u32::MAX),
            column: u32::try_from(e.column()).unwrap_or(u32::MAX),
            reason: e.to_string(),
        })?;
        let Value::Object(obj) = v else {
            return Err(PolicyError::BadData {
                file: name.clone(),
                line: 1,
                column: 1,
                reason: "a data file must hold a JSON object".into(),
            });
        };
        for k in obj.keys() {
            origin.entry(k.clone()).or_insert_with(|| name.clone());
        }
        if let Err(path) = canon::merge_disjoint(&mut data, Value::Object(obj), "") {
            let top = path.split('/').nth(1).unwrap_or("").to_owned();
            return Err(PolicyError::DataConflict {
                path,
                first: origin.get(&top).cloned().unwrap_or_default(),
                second: name.clone(),
            });
        }
    }
    Ok(data)
}

fn canonical_bytes(rego: &BTreeMap<String, String>, data: &Value) -> Vec<u8> {
    let data = canon::to_canonical(data);
    let mut out = Vec::new();
    out.extend_from_slice(BUNDLE_MAGIC);
    // CAST: counts and lengths are bounded by memory; u32/u64 fields saturate defensively
    // (a 4 GiB file name cannot be held anyway).
    out.extend_from_slice(&u32::try_from(rego.len()).unwrap_or(u32::MAX).to_be_bytes());
    for (name, contents) in rego {
        out.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(
            &u64::try_from(contents.len())
                .unwrap_or(u64::MAX)
                .to_be_bytes(),
        );
        out.extend_from_slice(contents.as_bytes());
    }
    out.extend_from_slice(&u64::try_from(data.len()).unwrap_or(u64::MAX).to_be_bytes());
    out.extend_from_slice(data.as_bytes());
    out
}

fn digest_of(rego: &BTreeMap<String, String>, data: &Value) -> [u8; 48] {
    crate::hexser::Sha384::of(&canonical_bytes(rego, data)).0
}
