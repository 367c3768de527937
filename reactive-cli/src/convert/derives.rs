//! The derives a reactive function's input and output types need.

use syn::spanned::Spanned;

/// The derives of every struct and enum of the file, by name (last path segments).
pub(super) fn collect_derives(
    items: &[syn::Item],
    out: &mut std::collections::BTreeMap<String, Vec<String>>,
) {
    for item in items {
        let (ident, attrs) = match item {
            syn::Item::Struct(s) => (&s.ident, &s.attrs),
            syn::Item::Enum(e) => (&e.ident, &e.attrs),
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    collect_derives(items, out);
                }
                continue;
            }
            _ => continue,
        };
        let mut names = Vec::new();
        for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
            if let Ok(paths) = attr.parse_args_with(
                syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
            ) {
                names.extend(
                    paths
                        .iter()
                        .filter_map(|p| p.segments.last().map(|s| s.ident.to_string())),
                );
            }
        }
        out.insert(ident.to_string(), names);
    }
}

/// A type defined in the file (inside `Vec<..>`/`Option<..>` too) must derive
/// `needed` to be a reactive function's input or output: a note names what is missing.
pub(super) fn check_derives(
    ty: &syn::Type,
    derives: &std::collections::BTreeMap<String, Vec<String>>,
    role: &str,
    needed: &[&str],
    notes: &mut Vec<(usize, String)>,
) {
    let syn::Type::Path(path) = ty else { return };
    let Some(last) = path.path.segments.last() else {
        return;
    };
    let name = last.ident.to_string();
    if name == "Vec" || name == "Option" {
        if let syn::PathArguments::AngleBracketed(args) = &last.arguments
            && let Some(syn::GenericArgument::Type(inner)) = args.args.first()
        {
            check_derives(inner, derives, role, needed, notes);
        }
        return;
    }
    let Some(have) = derives.get(&name) else {
        return;
    };
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|n| !have.iter().any(|h| h == n))
        .collect();
    if !missing.is_empty() {
        let paths: Vec<String> = missing
            .iter()
            .map(|m| match *m {
                "TS" => "ts_rs::TS".to_owned(),
                other => format!("serde::{other}"),
            })
            .collect();
        notes.push((
            ty.span().start().line,
            format!(
                "`{name}` is a reactive function's {role}: add `{}` to its `#[derive(...)]`",
                paths.join(", ")
            ),
        ));
    }
}
