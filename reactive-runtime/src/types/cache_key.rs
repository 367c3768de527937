//! [`CacheKey`]: who asked, which procedure, which input; and the canonical JSON
//! form inputs are keyed by.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The key of one cached result: who asked (tenant), which procedure, which input.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CacheKey {
    /// The tenant (organization) the result belongs to; `None` for untenanted apps.
    pub tenant: Option<String>,
    /// The procedure's public name (`agents.findMany`).
    pub procedure: String,
    /// The input as canonical JSON (object keys sorted, no whitespace).
    pub input: String,
}

impl CacheKey {
    /// A key from its parts; `input` must already be canonical JSON.
    pub fn new(tenant: Option<&str>, procedure: &str, input: impl Into<String>) -> Self {
        Self {
            tenant: tenant.map(str::to_owned),
            procedure: procedure.to_owned(),
            input: input.into(),
        }
    }

    /// A key whose input is canonicalized from a JSON value (object keys sorted).
    pub fn from_json(tenant: Option<&str>, procedure: &str, input: &serde_json::Value) -> Self {
        Self::new(tenant, procedure, canonical_json(input))
    }

    /// An unambiguous single-string encoding (a JSON array), e.g. for a Redis key.
    pub fn encode(&self) -> String {
        serde_json::to_string(&(&self.tenant, &self.procedure, &self.input)).unwrap_or_default()
    }

    /// The inverse of [`CacheKey::encode`].
    pub fn decode(s: &str) -> Option<Self> {
        let (tenant, procedure, input): (Option<String>, String, String) =
            serde_json::from_str(s).ok()?;
        Some(Self {
            tenant,
            procedure,
            input,
        })
    }

    /// Approximate heap size in bytes.
    pub fn approx_size(&self) -> usize {
        self.tenant.as_ref().map_or(0, String::len) + self.procedure.len() + self.input.len() + 72
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}({})",
            self.tenant.as_deref().unwrap_or("-"),
            self.procedure,
            self.input
        )
    }
}

/// JSON text with object keys sorted recursively and no whitespace.
pub fn canonical_json(value: &serde_json::Value) -> String {
    // Written straight into one buffer (no sorted copy of the value): object entries are
    // visited in key order, which is the map's own order unless serde_json's
    // `preserve_order` feature is on somewhere in the build.
    fn write(v: &serde_json::Value, out: &mut Vec<u8>) {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
                    entries.sort_by(|a, b| a.0.cmp(b.0));
                }
                out.push(b'{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    // Writing a string or a scalar into a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut *out, k);
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            serde_json::Value::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(v, out);
                }
                out.push(b']');
            }
            scalar => {
                let _ = serde_json::to_writer(&mut *out, scalar);
            }
        }
    }
    let mut out = Vec::with_capacity(64);
    write(value, &mut out);
    // serde_json writes valid UTF-8 only.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::canonical_json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_drops_whitespace() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{ "b": [ {"z": 1, "a": "x\"y"} ], "a": null, "c": 1.5 }"#)
                .unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":null,"b":[{"a":"x\"y","z":1}],"c":1.5}"#
        );
        assert_eq!(canonical_json(&serde_json::json!("s")), r#""s""#);
    }
}
