//! Rust types to TypeScript from syntax alone, as ts-rs renders them with the run-time
//! path's settings (64-bit integers are `number`).
//!
//! A type is looked up by name among the crate's structs and enums; the standard library's
//! types, `uuid::Uuid`, chrono's and `serde_json::Value` are known by name. Anything else
//! (a type from another crate, a generic type, an attribute not modelled here) is rendered
//! `unknown`, with a [`Warning`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use syn::ext::IdentExt;
use syn::{GenericArgument, PathArguments, Type};

use super::Warning;
use super::attrs::{self, Attrs, On, Optional};
use super::sources::{Items, TypeDef, TypeItem};

/// What the run-time path names `serde_json::Value`, and its declaration (ts-rs's).
const JSON_VALUE: (&str, &str) = (
    "JsonValue",
    "type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null;",
);

/// ts-rs renders arrays longer than this as `Array<T>`, shorter ones as tuples.
const ARRAY_TUPLE_LIMIT: usize = 64;

/// Where a type is written, for warnings.
#[derive(Clone, Copy)]
pub(crate) struct Site<'a> {
    pub file: &'a Path,
    /// What contains it (`field `name` of `Agent``, `the output of `agents.findMany``).
    pub what: &'a str,
}

/// The TypeScript of one procedure's input and output.
pub(crate) struct ProcedureTypes {
    pub input: String,
    pub output: String,
    /// `(name, declaration)` of every type they need, sorted by name.
    pub declarations: Vec<(String, String)>,
}

/// Renders types; collects warnings (each once).
pub(crate) struct Renderer<'a> {
    items: &'a Items<'a>,
    warnings: BTreeSet<Warning>,
}

/// The declarations one procedure needs, found while rendering.
#[derive(Default)]
struct Needed<'a> {
    pending: Vec<TypeDef<'a>>,
    seen: BTreeSet<String>,
    declarations: BTreeMap<String, String>,
}

impl<'a> Renderer<'a> {
    pub(crate) fn new(items: &'a Items<'a>) -> Self {
        Renderer {
            items,
            warnings: BTreeSet::new(),
        }
    }

    /// The warnings so far, sorted.
    pub(crate) fn into_warnings(self) -> Vec<Warning> {
        self.warnings.into_iter().collect()
    }

    /// The input (`null` without one) and output of a procedure, with their declarations.
    pub(crate) fn procedure(
        &mut self,
        input: Option<&Type>,
        output: &Type,
        file: &Path,
        name: &str,
    ) -> ProcedureTypes {
        let mut needed = Needed::default();
        let input_what = format!("the input of `{name}`");
        let output_what = format!("the output of `{name}`");
        let input = match input {
            Some(ty) => self.name(ty, &mut needed, site(file, &input_what)),
            None => "null".to_owned(),
        };
        let output = self.name(output, &mut needed, site(file, &output_what));
        while let Some(def) = needed.pending.pop() {
            let (ts_name, declaration) = self.declaration(def, &mut needed);
            needed.declarations.entry(ts_name).or_insert(declaration);
        }
        ProcedureTypes {
            input,
            output,
            declarations: needed.declarations.into_iter().collect(),
        }
    }

    fn warn(&mut self, file: &Path, span: proc_macro2::Span, message: String) {
        self.warnings.insert(Warning {
            file: file.to_owned(),
            line: span.start().line,
            message,
        });
    }

    fn unknown(&mut self, ty: &Type, at: Site<'_>, why: &str) -> String {
        let written = quote::ToTokens::to_token_stream(ty)
            .to_string()
            .replace(" ", "");
        self.warn(
            at.file,
            syn::spanned::Spanned::span(ty),
            format!("`{written}` in {} {why}: rendered as `unknown`", at.what),
        );
        "unknown".to_owned()
    }

    /// ts-rs's `name()`: how a type is written where it is used.
    fn name(&mut self, ty: &Type, needed: &mut Needed<'a>, at: Site<'_>) -> String {
        match ty {
            Type::Reference(r) => self.name(&r.elem, needed, at),
            Type::Paren(p) => self.name(&p.elem, needed, at),
            Type::Group(g) => self.name(&g.elem, needed, at),
            Type::Tuple(t) if t.elems.is_empty() => "null".to_owned(),
            Type::Tuple(t) => {
                let elems: Vec<String> = t.elems.iter().map(|e| self.name(e, needed, at)).collect();
                format!("[{}]", elems.join(", "))
            }
            Type::Slice(s) => format!("Array<{}>", self.name(&s.elem, needed, at)),
            Type::Array(a) => {
                let len = match &a.len {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Int(n),
                        ..
                    }) => n.base10_parse::<usize>().ok(),
                    _ => None,
                };
                match len {
                    Some(n) if n <= ARRAY_TUPLE_LIMIT => {
                        let elem = self.name(&a.elem, needed, at);
                        format!("[{}]", vec![elem; n].join(", "))
                    }
                    Some(_) => format!("Array<{}>", self.name(&a.elem, needed, at)),
                    None => self.unknown(ty, at, "has a length that is not a literal"),
                }
            }
            Type::Path(p) if p.qself.is_none() => self.path_name(ty, &p.path, needed, at),
            _ => self.unknown(ty, at, "is not a type the build script renders"),
        }
    }

    fn path_name(
        &mut self,
        ty: &Type,
        path: &syn::Path,
        needed: &mut Needed<'a>,
        at: Site<'_>,
    ) -> String {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let Some(last) = path.segments.last() else {
            return self.unknown(ty, at, "is not a type the build script renders");
        };
        let ident = last.ident.to_string();
        let args: Vec<&Type> = match &last.arguments {
            PathArguments::AngleBracketed(a) => a
                .args
                .iter()
                .filter_map(|a| match a {
                    GenericArgument::Type(t) => Some(t),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        if let Some(defs) = self.local(&segments) {
            return self.local_name(ty, defs, &args, needed, at);
        }
        if let Some(ts) = self.builtin(&segments, &ident, &args, needed, at) {
            return ts;
        }
        self.unknown(
            ty,
            at,
            "is not a struct or enum of this crate nor a type the build script knows",
        )
    }

    /// The crate's definitions of the type a path names, unless the path names another crate.
    fn local(&self, segments: &[String]) -> Option<&'a [TypeDef<'a>]> {
        const OTHER_CRATES: &[&str] = &["std", "core", "alloc", "serde_json", "chrono", "uuid"];
        if segments.len() > 1 && OTHER_CRATES.contains(&segments[0].as_str()) {
            return None;
        }
        self.items
            .types
            .get(segments.last()?)
            .map(|defs| defs.as_slice())
    }

    /// `path` names `serde_json::<name>`, written in full or imported.
    fn is_serde_json(&self, segments: &[String], name: &str) -> bool {
        match segments {
            [krate, last] => krate == "serde_json" && last == name,
            [last] => {
                last == name
                    && self.items.imports.get(name).is_some_and(|paths| {
                        paths.iter().any(|p| *p == format!("serde_json::{name}"))
                    })
            }
            _ => false,
        }
    }

    fn builtin(
        &mut self,
        segments: &[String],
        ident: &str,
        args: &[&Type],
        needed: &mut Needed<'a>,
        at: Site<'_>,
    ) -> Option<String> {
        if self.is_serde_json(segments, "Value") {
            needed
                .declarations
                .insert(JSON_VALUE.0.to_owned(), JSON_VALUE.1.to_owned());
            return Some(JSON_VALUE.0.to_owned());
        }
        if self.is_serde_json(segments, "Number") {
            return Some("number".to_owned());
        }
        let map = self.is_serde_json(segments, "Map");
        let simple = match ident {
            "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "usize" | "isize" | "f32" | "f64"
            | "NonZeroU8" | "NonZeroI8" | "NonZeroU16" | "NonZeroI16" | "NonZeroU32"
            | "NonZeroI32" | "NonZeroUsize" | "NonZeroIsize" => Some("number"),
            // The run-time path's `with_large_int("number")`.
            "u64" | "i64" | "u128" | "i128" | "NonZeroU64" | "NonZeroI64" | "NonZeroU128"
            | "NonZeroI128" => Some("number"),
            "bool" => Some("boolean"),
            "char" | "String" | "str" | "Path" | "PathBuf" | "Ipv4Addr" | "Ipv6Addr" | "IpAddr"
            | "SocketAddrV4" | "SocketAddrV6" | "SocketAddr" | "Uuid" | "NaiveDateTime"
            | "NaiveDate" | "NaiveTime" | "Month" | "Weekday" | "DateTime" | "Date" => {
                Some("string")
            }
            _ => None,
        };
        if let Some(simple) = simple {
            return Some(simple.to_owned());
        }
        let one = |this: &mut Self, needed: &mut Needed<'a>| match args {
            [t] => Some(this.name(t, needed, at)),
            _ => None,
        };
        match (ident, args) {
            ("Option", [_]) => one(self, needed).map(|t| format!("{t} | null")),
            ("Vec" | "HashSet" | "BTreeSet", [_, ..]) => {
                let inner = self.name(args[0], needed, at);
                Some(format!("Array<{inner}>"))
            }
            ("HashMap" | "BTreeMap", [key, value, ..]) => Some(self.map(key, value, needed, at)),
            ("Map", [key, value]) if map => Some(self.map(key, value, needed, at)),
            (
                "Box" | "Arc" | "Rc" | "Cow" | "Cell" | "RefCell" | "Mutex" | "RwLock" | "Weak"
                | "PhantomData",
                [_],
            ) => one(self, needed),
            ("Result", [ok, err]) => {
                let ok = self.name(ok, needed, at);
                let err = self.name(err, needed, at);
                Some(format!("{{ Ok : {ok} }} | {{ Err : {err} }}"))
            }
            _ => None,
        }
    }

    /// `{ [key in K]: V }`, `?` when the key is an enum (ts-rs's `IS_ENUM`).
    fn map(&mut self, key: &Type, value: &Type, needed: &mut Needed<'a>, at: Site<'_>) -> String {
        let optional = if self.is_enum(key) { "?" } else { "" };
        let key = self.name(key, needed, at);
        let value = self.name(value, needed, at);
        format!("{{ [key in {key}]{optional}: {value} }}")
    }

    fn is_enum(&self, ty: &Type) -> bool {
        let Type::Path(p) = ty else { return false };
        let segments: Vec<String> = p
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        match self.local(&segments) {
            Some([def]) => match def.item {
                TypeItem::Enum(e) => !e.variants.is_empty(),
                TypeItem::Struct(s) => match &s.fields {
                    syn::Fields::Unnamed(f) if f.unnamed.len() == 1 => {
                        self.is_enum(&f.unnamed[0].ty)
                    }
                    _ => false,
                },
            },
            _ => false,
        }
    }

    /// A struct or enum of the crate: its TypeScript name, its declaration collected.
    fn local_name(
        &mut self,
        ty: &Type,
        defs: &'a [TypeDef<'a>],
        args: &[&Type],
        needed: &mut Needed<'a>,
        at: Site<'_>,
    ) -> String {
        let def = match defs {
            [def] => *def,
            _ => {
                return self.unknown(
                    ty,
                    at,
                    &format!(
                        "names {} types of this crate (the build script does not resolve modules)",
                        defs.len()
                    ),
                );
            }
        };
        if !args.is_empty() || def.item.generics().type_params().next().is_some() {
            return self.unknown(
                ty,
                at,
                "is generic (the build script renders concrete types only)",
            );
        }
        if !derives_ts(def.item.attrs()) {
            return self.unknown(
                ty,
                at,
                "does not `#[derive(TS)]` (a hand-written `impl TS` is not visible to the build script)",
            );
        }
        let ident = def.item.ident().to_string();
        if needed.seen.insert(ident) {
            needed.pending.push(def);
        }
        ts_name(def)
    }

    /// ts-rs's `decl()`: `type Name = ...;`.
    fn declaration(&mut self, def: TypeDef<'a>, needed: &mut Needed<'a>) -> (String, String) {
        let name = ts_name(def);
        let on = match def.item {
            TypeItem::Struct(_) => On::Struct,
            TypeItem::Enum(_) => On::Enum,
        };
        let container = attrs::parse(def.item.attrs(), on);
        let ident = def.item.ident();
        let what = format!("`{ident}`");
        let at = site(def.file, &what);
        let body = if self.check_attrs(&container, ident.span(), at) {
            "unknown".to_owned()
        } else if let Some(ts) = &container.type_override {
            ts.clone()
        } else if let Some(ty) = &container.type_as {
            self.name(ty, needed, at)
        } else {
            match def.item {
                TypeItem::Struct(s) => self.struct_body(s, &container, def.file, needed),
                TypeItem::Enum(e) => self.enum_body(e, &container, at),
            }
        };
        let declaration = format!("type {name} = {body};");
        (name, declaration)
    }

    /// Warns about attributes ts-rs ignores and ones this does not model; `true` if the
    /// latter (the type is then `unknown`).
    fn check_attrs(&mut self, attrs: &Attrs, span: proc_macro2::Span, at: Site<'_>) -> bool {
        for key in &attrs.ignored_serde {
            self.warn(
                at.file,
                span,
                format!(
                    "a `#[serde(..)]` attribute of {} has `{key}`, which ts-rs does not read: the whole attribute is ignored, as ts-rs ignores it",
                    at.what
                ),
            );
        }
        for key in &attrs.unsupported {
            self.warn(
                at.file,
                span,
                format!(
                    "{} has `{key}`, which the build script does not model: rendered as `unknown`",
                    at.what
                ),
            );
        }
        !attrs.unsupported.is_empty()
    }

    fn struct_body(
        &mut self,
        s: &'a syn::ItemStruct,
        container: &Attrs,
        file: &Path,
        needed: &mut Needed<'a>,
    ) -> String {
        match &s.fields {
            syn::Fields::Named(named) if named.named.is_empty() => {
                "Record<symbol, never>".to_owned()
            }
            syn::Fields::Named(named) => {
                let mut fields = Vec::new();
                for field in &named.named {
                    let field_ident = field
                        .ident
                        .as_ref()
                        .map(|i| i.unraw().to_string())
                        .unwrap_or_default();
                    let what = format!("field `{field_ident}` of `{}`", s.ident);
                    let at = site(file, &what);
                    let attrs = attrs::parse(&field.attrs, On::Field);
                    if self.check_attrs(&attrs, syn::spanned::Spanned::span(field), at) {
                        return "unknown".to_owned();
                    }
                    if attrs.skip {
                        continue;
                    }
                    let Some((optional, ty)) = self.optional(field, &attrs, at, needed) else {
                        return "unknown".to_owned();
                    };
                    let name = match (&attrs.rename, container.rename_all) {
                        (Some(rename), _) => rename.clone(),
                        (None, Some(inflection)) => inflection.apply(&field_ident),
                        (None, None) => field_ident,
                    };
                    fields.push(format!("{}{optional}: {ty},", ts_field(name)));
                }
                if fields.is_empty() {
                    "{  }".to_owned()
                } else {
                    format!("{{ {} }}", fields.join(" "))
                }
            }
            syn::Fields::Unnamed(unnamed) if unnamed.unnamed.is_empty() => "never[]".to_owned(),
            syn::Fields::Unnamed(unnamed) => {
                let mut elems = Vec::new();
                for (i, field) in unnamed.unnamed.iter().enumerate() {
                    let what = format!("field {i} of `{}`", s.ident);
                    let at = site(file, &what);
                    let attrs = attrs::parse(&field.attrs, On::Field);
                    let optional_or_renamed =
                        attrs.rename.is_some() || attrs.optional != Optional::Inherit;
                    if optional_or_renamed {
                        self.warn(
                            file,
                            syn::spanned::Spanned::span(field),
                            format!("{what} has `rename` or `optional`, which the build script does not model on tuple fields: rendered as `unknown`"),
                        );
                        return "unknown".to_owned();
                    }
                    if self.check_attrs(&attrs, syn::spanned::Spanned::span(field), at) {
                        return "unknown".to_owned();
                    }
                    if attrs.skip {
                        if unnamed.unnamed.len() == 1 {
                            return "null".to_owned();
                        }
                        continue;
                    }
                    elems.push(match (&attrs.type_override, &attrs.type_as) {
                        (Some(ts), _) => ts.clone(),
                        (None, Some(ty)) => self.name(ty, needed, at),
                        (None, None) => self.name(&field.ty, needed, at),
                    });
                }
                if unnamed.unnamed.len() == 1 {
                    elems.pop().unwrap_or_default()
                } else {
                    format!("[{}]", elems.join(", "))
                }
            }
            syn::Fields::Unit => "null".to_owned(),
        }
    }

    /// A named field's `?` and type, as ts-rs's `optional::apply` decides them.
    fn optional(
        &mut self,
        field: &syn::Field,
        attrs: &Attrs,
        at: Site<'_>,
        needed: &mut Needed<'a>,
    ) -> Option<(&'static str, String)> {
        let ty = attrs.type_as.as_ref().unwrap_or(&field.ty);
        let (optional, ty) = match attrs.optional {
            Optional::No => (false, ty),
            Optional::Yes { nullable: true } => (true, ty),
            Optional::Yes { nullable: false } => match option_inner(ty) {
                Some(inner) => (true, inner),
                None => {
                    self.unknown(ty, at, "has `#[ts(optional)]` but is not an `Option`");
                    return None;
                }
            },
            Optional::Inherit => (attrs.maybe_omitted && attrs.has_default, ty),
        };
        let ts = match &attrs.type_override {
            Some(ts) => ts.clone(),
            None => self.name(ty, needed, at),
        };
        Some((if optional { "?" } else { "" }, ts))
    }

    /// An enum of unit variants (externally tagged): `"A" | "B"`. Variants with data are
    /// not modelled.
    fn enum_body(&mut self, e: &syn::ItemEnum, container: &Attrs, at: Site<'_>) -> String {
        if e.variants.is_empty() {
            return "never".to_owned();
        }
        let mut variants = Vec::new();
        for variant in &e.variants {
            let attrs = attrs::parse(&variant.attrs, On::Variant);
            if self.check_attrs(&attrs, variant.ident.span(), at) {
                return "unknown".to_owned();
            }
            if attrs.skip {
                continue;
            }
            if !matches!(variant.fields, syn::Fields::Unit) {
                self.warn(
                    at.file,
                    variant.ident.span(),
                    format!(
                        "{} has a variant with data (`{}`), which the build script does not model: rendered as `unknown`",
                        at.what, variant.ident
                    ),
                );
                return "unknown".to_owned();
            }
            let ident = variant.ident.unraw().to_string();
            let name = match (&attrs.rename, container.rename_all) {
                (Some(rename), _) => rename.clone(),
                (None, Some(inflection)) => inflection.apply(&ident),
                (None, None) => ident,
            };
            variants.push(format!("\"{name}\""));
        }
        variants.join(" | ")
    }
}

fn site<'s>(file: &'s Path, what: &'s str) -> Site<'s> {
    Site { file, what }
}

/// The TypeScript name of a struct or enum: `#[ts(rename)]`, `#[serde(rename)]` or its
/// identifier.
fn ts_name(def: TypeDef<'_>) -> String {
    let on = match def.item {
        TypeItem::Struct(_) => On::Struct,
        TypeItem::Enum(_) => On::Enum,
    };
    attrs::parse(def.item.attrs(), on)
        .rename
        .unwrap_or_else(|| def.item.ident().unraw().to_string())
}

/// `T` of `Option<T>`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    match &last.arguments {
        PathArguments::AngleBracketed(a) => match a.args.first()? {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// `#[derive(.., TS, ..)]` (or `ts_rs::TS`).
fn derives_ts(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("derive"))
        .any(|a| {
            let mut found = false;
            let _ = a.parse_nested_meta(|meta| {
                found |= meta.path.segments.last().is_some_and(|s| s.ident == "TS");
                Ok(())
            });
            found
        })
}

/// ts-rs's `raw_name_to_ts_field`: a name that is not an identifier is quoted.
fn ts_field(name: String) -> String {
    let valid = name
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        && !name.chars().next().is_some_and(char::is_numeric);
    if valid { name } else { format!("\"{name}\"") }
}
