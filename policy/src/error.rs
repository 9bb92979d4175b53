//! Errors, classed by who is at fault.

use crate::DecisionKind;
use std::path::PathBuf;

/// Everything that can go wrong loading a policy bundle or evaluating a decision.
///
/// Classes: `Io` is the environment; `Malformed`, `MissingRegoV1Import`, `ForbiddenBuiltin`,
/// `BadData`, `DataConflict`, `BadBundle` and `AllowsEmptyInput` are the policy author's
/// (the bundle is refused at load, before it can decide anything); `InvalidInput` is the
/// caller's (the input document does not follow the schema); `PolicyOutput` and `Evaluation`
/// are the policy's at evaluation time. A caller must treat every error from an evaluation
/// as a deny.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Reading the bundle directory or one of its files failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A Rego file does not parse or compile. `line` and `column` are 1-based; 0 when the
    /// engine reported no location.
    #[error("{file}:{line}:{column}: {reason}")]
    Malformed {
        /// The Rego file's name inside the bundle.
        file: String,
        /// 1-based line (0 if unknown).
        line: u32,
        /// 1-based column (0 if unknown).
        column: u32,
        /// The engine's message.
        reason: String,
    },
    /// A Rego file lacks `import rego.v1` (every policy must be written in Rego v1 and say so).
    #[error("{file}: missing `import rego.v1`")]
    MissingRegoV1Import {
        /// The Rego file's name inside the bundle.
        file: String,
    },
    /// A Rego file calls a builtin whose result depends on something other than the input and
    /// data (wall clock, randomness, network), so its decisions could not be replayed.
    #[error("{file}:{line}:{column}: builtin `{builtin}` is forbidden: {why}")]
    ForbiddenBuiltin {
        /// The Rego file's name inside the bundle.
        file: String,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        column: u32,
        /// The builtin's dotted name.
        builtin: String,
        /// Why it is forbidden.
        why: &'static str,
    },
    /// A data file is not valid JSON or not a JSON object.
    #[error("{file}:{line}:{column}: {reason}")]
    BadData {
        /// The data file's name (or `<overlay>` for [`crate::PolicyBundle::with_data`]).
        file: String,
        /// 1-based line (0 if not applicable).
        line: u32,
        /// 1-based column (0 if not applicable).
        column: u32,
        /// What is wrong.
        reason: String,
    },
    /// Two data files set the same non-object value.
    #[error("data files {first} and {second} both set {path}")]
    DataConflict {
        /// JSON path of the clash (`/a/b`).
        path: String,
        /// The file that set it first.
        first: String,
        /// The file that set it again.
        second: String,
    },
    /// The bundle as a whole is unusable (no Rego file, bad file name, missing decision rule).
    #[error("policy bundle: {reason}")]
    BadBundle {
        /// What is wrong.
        reason: String,
    },
    /// A decision package allows an empty input document: it would fail open on missing fields.
    #[error("package for {kind} allows an empty input (policies must fail closed)")]
    AllowsEmptyInput {
        /// The decision.
        kind: DecisionKind,
    },
    /// The input document does not follow the decision's schema.
    #[error("invalid {kind} input: {reason}")]
    InvalidInput {
        /// The decision.
        kind: DecisionKind,
        /// The schema violation.
        reason: String,
    },
    /// The policy produced output outside the convention (a `deny` entry that is not
    /// `{"rule": name, "reason": text}`, a bad rule name, a non-boolean `allow`).
    #[error("{kind} policy output: {reason}")]
    PolicyOutput {
        /// The decision.
        kind: DecisionKind,
        /// What is wrong.
        reason: String,
    },
    /// The engine failed while evaluating.
    #[error("evaluating {kind}: {reason}")]
    Evaluation {
        /// The decision.
        kind: DecisionKind,
        /// The engine's message.
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = PolicyError> = core::result::Result<T, E>;

/// Location parsed out of a regorus error message (`--> file:line:col` ... `error: reason`).
pub(crate) struct EngineMessage {
    pub(crate) file: Option<String>,
    pub(crate) line: u32,
    pub(crate) column: u32,
    pub(crate) reason: String,
}

/// Splits a regorus diagnostic into its location and reason. regorus formats located errors
/// as `"\n--> FILE:LINE:COL\n  |\nN | source line\n  |     ^\nerror: REASON"`; anything else is
/// kept whole as the reason with no location.
pub(crate) fn parse_engine_message(msg: &str) -> EngineMessage {
    let mut out = EngineMessage {
        file: None,
        line: 0,
        column: 0,
        reason: msg.trim().to_owned(),
    };
    let Some(pos) = msg.find("--> ") else {
        return out;
    };
    let rest = msg.get(pos.saturating_add(4)..).unwrap_or("");
    let loc = rest.lines().next().unwrap_or("");
    let mut parts = loc.rsplitn(3, ':');
    let (Some(col), Some(line), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        return out;
    };
    let (Ok(line), Ok(column)) = (line.trim().parse::<u32>(), col.trim().parse::<u32>()) else {
        return out;
    };
    out.file = Some(file.to_owned());
    out.line = line;
    out.column = column;
    // The reason follows the caret block: the first line starting with "error: " after the
    // location (the text before `-->` is context some errors prepend).
    if let Some(r) = rest
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::trim)
    {
        let prefix = msg.get(..pos).unwrap_or("").trim();
        out.reason = if prefix.is_empty() {
            r.to_owned()
        } else {
            format!("{prefix}: {r}")
        };
    }
    out
}

/// A `Malformed` error for `file` from a regorus diagnostic.
pub(crate) fn malformed(file: &str, e: &anyhow::Error) -> PolicyError {
    let m = parse_engine_message(&format!("{e:#}"));
    PolicyError::Malformed {
        file: m.file.unwrap_or_else(|| file.to_owned()),
        line: m.line,
        column: m.column,
        reason: m.reason,
    }
}
