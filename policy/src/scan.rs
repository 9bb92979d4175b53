//! Load-time checks on Rego source that the engine does not make: `import rego.v1` is present
//! and no builtin with an outside-world result is called.
//!
//! Both checks run on the token stream of the regorus lexer (so comments and string
//! literals cannot trigger or hide them), after the file parsed. They use regorus's
//! `unstable` lexer API, pinned by the workspace's regorus version.

use crate::error::PolicyError;
use regorus::unstable::{Lexer, Source, TokenKind};

/// Builtins refused at load, with the reason. Each makes a decision depend on something
/// other than the input and data documents, so a recorded decision could not be replayed:
/// policies get the time from `input.now`.
pub(crate) const FORBIDDEN_BUILTINS: &[(&str, &str)] = &[
    (
        "time.now_ns",
        "reads the wall clock; use input.now so decisions replay",
    ),
    ("rand.intn", "random result; decisions must replay"),
    ("uuid.rfc4122", "random result; decisions must replay"),
    ("http.send", "network access; decisions must replay offline"),
    (
        "net.lookup_ip_addr",
        "DNS access; decisions must replay offline",
    ),
    ("opa.runtime", "depends on the host runtime"),
    (
        "io.jwt.decode_verify",
        "reads the wall clock when no time is given",
    ),
];

struct Tok {
    kind: TokenKind,
    text: String,
    line: u32,
    col: u32,
}

fn tokens(file: &str, contents: &str) -> Result<Vec<Tok>, PolicyError> {
    let to_err = |e: anyhow::Error| crate::error::malformed(file, &e);
    let source = Source::from_contents(file.to_owned(), contents.to_owned()).map_err(to_err)?;
    let mut lexer = Lexer::new(&source);
    let mut out = Vec::new();
    loop {
        let t = lexer.next_token().map_err(to_err)?;
        if matches!(t.0, TokenKind::Eof) {
            return Ok(out);
        }
        out.push(Tok {
            kind: t.0,
            text: t.1.text().to_owned(),
            line: t.1.line,
            col: t.1.col,
        });
    }
}

/// Runs both checks on one file.
pub(crate) fn check_source(file: &str, contents: &str) -> Result<(), PolicyError> {
    let toks = tokens(file, contents)?;
    let is_ident = |t: Option<&Tok>, s: &str| {
        t.is_some_and(|t| matches!(t.kind, TokenKind::Ident) && t.text == s)
    };
    let is_sym = |t: Option<&Tok>, s: &str| {
        t.is_some_and(|t| matches!(t.kind, TokenKind::Symbol) && t.text == s)
    };

    // Maximal dotted identifier chains: a.b.c not preceded by '.'.
    let mut i = 0usize;
    while let Some(t) = toks.get(i) {
        let starts_chain = matches!(t.kind, TokenKind::Ident)
            && !is_sym(i.checked_sub(1).and_then(|p| toks.get(p)), ".");
        if !starts_chain {
            i = i.saturating_add(1);
            continue;
        }
        let mut chain = t.text.clone();
        let mut j = i.saturating_add(1);
        while is_sym(toks.get(j), ".")
            && toks
                .get(j.saturating_add(1))
                .is_some_and(|n| matches!(n.kind, TokenKind::Ident))
        {
            if let Some(n) = toks.get(j.saturating_add(1)) {
                chain.push('.');
                chain.push_str(&n.text);
            }
            j = j.saturating_add(2);
        }
        if let Some((name, why)) = FORBIDDEN_BUILTINS.iter().find(|(n, _)| *n == chain) {
            return Err(PolicyError::ForbiddenBuiltin {
                file: file.to_owned(),
                line: t.line,
                column: t.col,
                builtin: (*name).to_owned(),
                why,
            });
        }
        i = j;
    }

    let has_v1 = (0..toks.len()).any(|k| {
        is_ident(toks.get(k), "import")
            && is_ident(toks.get(k.saturating_add(1)), "rego")
            && is_sym(toks.get(k.saturating_add(2)), ".")
            && is_ident(toks.get(k.saturating_add(3)), "v1")
    });
    if !has_v1 {
        return Err(PolicyError::MissingRegoV1Import {
            file: file.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_time_now_ns_but_not_in_strings_or_comments() {
        let ok = "package p\nimport rego.v1\n# time.now_ns()\nx := \"time.now_ns\"\ny := input.time.now_ns\n";
        check_source("a.rego", ok).unwrap();
        let bad = "package p\nimport rego.v1\nx := time.now_ns()\n";
        match check_source("a.rego", bad) {
            Err(PolicyError::ForbiddenBuiltin {
                line,
                column,
                builtin,
                ..
            }) => {
                assert_eq!((line, column), (3, 6));
                assert_eq!(builtin, "time.now_ns");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requires_import_rego_v1() {
        let bad = "package p\n# import rego.v1\nx := \"import rego.v1\"\n";
        assert!(matches!(
            check_source("b.rego", bad),
            Err(PolicyError::MissingRegoV1Import { file }) if file == "b.rego"
        ));
    }
}
