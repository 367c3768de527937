//! The `#[serde(..)]` and `#[ts(..)]` attributes that change a type's TypeScript, read as
//! ts-rs reads them.
//!
//! ts-rs ignores a whole `#[serde(..)]` attribute when one of its keys is one it does not
//! model (`#[serde(rename_all = "camelCase", transparent)]` renames nothing); this does the
//! same, so that both paths agree, and says so in a warning. A `#[ts(..)]` key this does not
//! model makes the type `unknown`.

use syn::meta::ParseNestedMeta;

/// ts-rs's `rename_all` inflections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inflection {
    Lower,
    Upper,
    Camel,
    Snake,
    Pascal,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl Inflection {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "lowercase" => Inflection::Lower,
            "UPPERCASE" => Inflection::Upper,
            "camelCase" => Inflection::Camel,
            "snake_case" => Inflection::Snake,
            "PascalCase" => Inflection::Pascal,
            "SCREAMING_SNAKE_CASE" => Inflection::ScreamingSnake,
            "kebab-case" => Inflection::Kebab,
            "SCREAMING-KEBAB-CASE" => Inflection::ScreamingKebab,
            _ => return None,
        })
    }

    /// The name as ts-rs inflects it (which is not always serde's: ts-rs is what the
    /// run-time path renders).
    pub(crate) fn apply(self, name: &str) -> String {
        match self {
            Inflection::Lower => name.to_lowercase(),
            Inflection::Upper => name.to_uppercase(),
            Inflection::Camel => {
                let pascal = Inflection::Pascal.apply(name);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => pascal,
                }
            }
            Inflection::Snake => {
                let mut out = String::new();
                for (i, c) in name.char_indices() {
                    if c.is_uppercase() && i != 0 {
                        out.push('_');
                    }
                    out.push(c.to_ascii_lowercase());
                }
                out
            }
            Inflection::Pascal => {
                let mut out = String::with_capacity(name.len());
                let mut capitalize = true;
                for c in name.chars() {
                    if c == '_' {
                        capitalize = true;
                    } else if capitalize {
                        out.push(c.to_ascii_uppercase());
                        capitalize = false;
                    } else {
                        out.push(c);
                    }
                }
                out
            }
            Inflection::ScreamingSnake => Inflection::Snake.apply(name).to_ascii_uppercase(),
            Inflection::Kebab => Inflection::Snake.apply(name).replace('_', "-"),
            Inflection::ScreamingKebab => Inflection::Kebab.apply(name).to_ascii_uppercase(),
        }
    }
}

/// `#[ts(optional)]` on a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Optional {
    /// `#[ts(optional)]` (`name?: T` for an `Option<T>`) or `#[ts(optional = nullable)]`
    /// (`name?: T | null`).
    Yes { nullable: bool },
    /// `#[ts(optional = false)]`.
    No,
    /// Not given.
    #[default]
    Inherit,
}

/// The attributes of a struct, an enum, a field or a variant that matter to its TypeScript.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attrs {
    pub rename: Option<String>,
    pub rename_all: Option<Inflection>,
    /// `#[ts(type = "..")]`: the TypeScript, as written.
    pub type_override: Option<String>,
    /// `#[ts(as = "..")]`: render this type instead.
    pub type_as: Option<syn::Type>,
    pub skip: bool,
    pub optional: Optional,
    /// `skip_serializing` or `skip_serializing_if`.
    pub maybe_omitted: bool,
    /// `#[serde(default)]`.
    pub has_default: bool,
    /// `#[ts(..)]` keys (or serde keys ts-rs models) this does not: the type is `unknown`.
    pub unsupported: Vec<String>,
    /// `#[serde(..)]` attributes ignored because ts-rs ignores them, with the key why.
    pub ignored_serde: Vec<String>,
}

/// Where the attributes are: ts-rs accepts different keys on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum On {
    Struct,
    Enum,
    Field,
    Variant,
}

/// The serde keys ts-rs parses on `on` (any other key makes it ignore the attribute), and
/// whether this module models each.
fn serde_key(on: On, key: &str) -> Option<bool> {
    let modelled = match (on, key) {
        (
            On::Struct,
            "rename" | "rename_all" | "bound" | "deny_unknown_fields" | "default" | "crate",
        )
        | (On::Enum, "rename" | "rename_all" | "bound" | "crate")
        | (
            On::Field,
            "rename" | "skip" | "skip_serializing_if" | "skip_serializing" | "default" | "borrow",
        )
        | (On::Variant, "rename" | "skip" | "borrow") => true,
        (On::Struct, "tag")
        | (On::Enum, "rename_all_fields" | "tag" | "content" | "untagged")
        | (On::Field, "flatten" | "with")
        | (On::Variant, "rename_all" | "untagged") => false,
        _ => return None,
    };
    Some(modelled)
}

/// The `#[ts(..)]` keys this module models on `on`.
fn ts_key_modelled(on: On, key: &str) -> bool {
    match on {
        On::Struct | On::Enum => matches!(
            key,
            "rename" | "rename_all" | "type" | "as" | "export" | "export_to" | "crate"
        ),
        On::Field => matches!(key, "rename" | "type" | "as" | "skip" | "optional"),
        On::Variant => matches!(key, "rename" | "skip"),
    }
}

/// Reads the attributes ts-rs reads (`#[ts(..)]` first: it takes precedence, as in ts-rs).
pub(crate) fn parse(attrs: &[syn::Attribute], on: On) -> Attrs {
    let mut out = Attrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("ts")) {
        let mut one = Attrs::default();
        let parsed = attr.parse_nested_meta(|meta| {
            let key = key_of(&meta);
            if !ts_key_modelled(on, &key) {
                one.unsupported.push(format!("#[ts({key})]"));
                return skip_value(&meta);
            }
            read_key(&meta, &key, &mut one)
        });
        if parsed.is_err() {
            one.unsupported.push("#[ts(..)]".to_owned());
        }
        merge(&mut out, one);
    }
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let mut one = Attrs::default();
        let mut ignored_for = None;
        let parsed = attr.parse_nested_meta(|meta| {
            let key = key_of(&meta);
            match serde_key(on, &key) {
                None => {
                    ignored_for.get_or_insert_with(|| key.clone());
                    skip_value(&meta)
                }
                Some(false) => {
                    one.unsupported.push(format!("#[serde({key})]"));
                    skip_value(&meta)
                }
                Some(true) => read_key(&meta, &key, &mut one),
            }
        });
        match (parsed, ignored_for) {
            (Ok(()), None) => merge(&mut out, one),
            (_, Some(key)) => out.ignored_serde.push(key),
            (Err(_), None) => out
                .ignored_serde
                .push("(a value it cannot read)".to_owned()),
        }
    }
    out
}

fn key_of(meta: &ParseNestedMeta<'_>) -> String {
    meta.path
        .get_ident()
        .map(|i| i.to_string())
        .unwrap_or_else(|| "?".to_owned())
}

fn read_key(meta: &ParseNestedMeta<'_>, key: &str, out: &mut Attrs) -> syn::Result<()> {
    match key {
        "rename" => out.rename = Some(meta.value()?.parse::<syn::LitStr>()?.value()),
        "rename_all" => {
            let value: syn::LitStr = meta.value()?.parse()?;
            out.rename_all = Some(
                Inflection::parse(&value.value())
                    .ok_or_else(|| meta.error("unknown `rename_all` value"))?,
            );
        }
        "type" => out.type_override = Some(meta.value()?.parse::<syn::LitStr>()?.value()),
        "as" => out.type_as = Some(meta.value()?.parse::<syn::LitStr>()?.parse()?),
        "skip" => out.skip = true,
        "optional" => {
            out.optional = if meta.input.peek(syn::Token![=]) {
                let value: syn::Ident = meta.value()?.parse()?;
                match value.to_string().as_str() {
                    "nullable" => Optional::Yes { nullable: true },
                    "false" => Optional::No,
                    _ => return Err(meta.error("expected `nullable` or `false`")),
                }
            } else {
                Optional::Yes { nullable: false }
            }
        }
        "skip_serializing_if" | "skip_serializing" => {
            out.maybe_omitted = true;
            skip_value(meta)?;
        }
        "default" => {
            out.has_default = true;
            skip_value(meta)?;
        }
        _ => skip_value(meta)?,
    }
    Ok(())
}

/// Consumes `= value` or `(..)` after a key, if any.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_value(&inner))?;
    }
    Ok(())
}

/// Adds `next` to `out`: values already set win (ts-rs merges with `or`).
fn merge(out: &mut Attrs, next: Attrs) {
    out.rename = out.rename.take().or(next.rename);
    out.rename_all = out.rename_all.or(next.rename_all);
    out.type_override = out.type_override.take().or(next.type_override);
    out.type_as = out.type_as.take().or(next.type_as);
    out.skip |= next.skip;
    if out.optional == Optional::Inherit {
        out.optional = next.optional;
    }
    out.maybe_omitted |= next.maybe_omitted;
    out.has_default |= next.has_default;
    out.unsupported.extend(next.unsupported);
    out.ignored_serde.extend(next.ignored_serde);
}
