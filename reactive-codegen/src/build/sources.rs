//! The crate's source files, parsed, and the items the emitter needs from them: the
//! `#[reactive_function]`s, the structs and enums by name, and what `use` imports.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::BuildError;

/// One parsed source file.
pub(crate) struct Source {
    /// The path it was read from.
    pub path: PathBuf,
    /// Its syntax tree.
    pub file: syn::File,
}

/// Every `.rs` file below `roots` (a root may be a file), sorted, read and parsed.
pub(crate) fn read_sources(roots: &[PathBuf]) -> Result<Vec<Source>, BuildError> {
    let mut paths = Vec::new();
    for root in roots {
        collect_paths(root, &mut paths)?;
    }
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| BuildError::Read {
                path: path.clone(),
                source,
            })?;
            let file = syn::parse_file(&text).map_err(|e| BuildError::Parse {
                path: path.clone(),
                line: e.span().start().line,
                message: e.to_string(),
            })?;
            Ok(Source { path, file })
        })
        .collect()
}

fn collect_paths(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), BuildError> {
    let read_error = |source| BuildError::Read {
        path: path.to_owned(),
        source,
    };
    if path.is_file() {
        out.push(path.to_owned());
        return Ok(());
    }
    if !path.is_dir() {
        return Err(read_error(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file or directory",
        )));
    }
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        let entry = entry.map_err(read_error)?.path();
        if entry.is_dir() {
            collect_paths(&entry, out)?;
        } else if entry.extension().is_some_and(|e| e == "rs") {
            out.push(entry);
        }
    }
    Ok(())
}

/// A struct or an enum of the crate.
#[derive(Clone, Copy)]
pub(crate) enum TypeItem<'a> {
    /// A struct.
    Struct(&'a syn::ItemStruct),
    /// An enum.
    Enum(&'a syn::ItemEnum),
}

impl<'a> TypeItem<'a> {
    pub(crate) fn ident(&self) -> &'a syn::Ident {
        match self {
            TypeItem::Struct(s) => &s.ident,
            TypeItem::Enum(e) => &e.ident,
        }
    }

    pub(crate) fn attrs(&self) -> &'a [syn::Attribute] {
        match self {
            TypeItem::Struct(s) => &s.attrs,
            TypeItem::Enum(e) => &e.attrs,
        }
    }

    pub(crate) fn generics(&self) -> &'a syn::Generics {
        match self {
            TypeItem::Struct(s) => &s.generics,
            TypeItem::Enum(e) => &e.generics,
        }
    }
}

/// A type definition and the file it is in.
#[derive(Clone, Copy)]
pub(crate) struct TypeDef<'a> {
    pub item: TypeItem<'a>,
    pub file: &'a Path,
}

/// A `#[reactive_function]` and the file it is in.
pub(crate) struct ReactiveFn<'a> {
    pub item: &'a syn::ItemFn,
    /// The attribute's arguments (inside the parentheses).
    pub args: proc_macro2::TokenStream,
    pub file: &'a Path,
}

/// What the emitter needs from the crate's sources.
#[derive(Default)]
pub(crate) struct Items<'a> {
    /// Every `#[reactive_function]`, in file order.
    pub functions: Vec<ReactiveFn<'a>>,
    /// Structs and enums by identifier (several when the name is defined more than once).
    pub types: HashMap<String, Vec<TypeDef<'a>>>,
    /// Names brought into scope by `use`, with the paths they name (`Value` →
    /// `serde_json::Value`), over every file.
    pub imports: HashMap<String, Vec<String>>,
}

/// The items of every source, test modules (`#[cfg(test)]`) left out.
pub(crate) fn items(sources: &[Source]) -> Items<'_> {
    let mut out = Items::default();
    for source in sources {
        collect_items(&source.file.items, &source.path, &mut out);
    }
    out
}

fn collect_items<'a>(items: &'a [syn::Item], file: &'a Path, out: &mut Items<'a>) {
    for item in items {
        match item {
            syn::Item::Fn(f) => {
                if let Some(attr) = f.attrs.iter().find(|a| is_reactive_function(a)) {
                    let args = match &attr.meta {
                        syn::Meta::List(list) => list.tokens.clone(),
                        _ => proc_macro2::TokenStream::new(),
                    };
                    out.functions.push(ReactiveFn {
                        item: f,
                        args,
                        file,
                    });
                }
            }
            syn::Item::Struct(s) => add_type(out, TypeItem::Struct(s), file),
            syn::Item::Enum(e) => add_type(out, TypeItem::Enum(e), file),
            syn::Item::Use(u) => collect_use(&u.tree, String::new(), &mut out.imports),
            syn::Item::Mod(m) if !is_cfg_test(&m.attrs) => {
                if let Some((_, items)) = &m.content {
                    collect_items(items, file, out);
                }
            }
            _ => {}
        }
    }
}

fn add_type<'a>(out: &mut Items<'a>, item: TypeItem<'a>, file: &'a Path) {
    out.types
        .entry(item.ident().to_string())
        .or_default()
        .push(TypeDef { item, file });
}

fn collect_use(tree: &syn::UseTree, prefix: String, out: &mut HashMap<String, Vec<String>>) {
    let join = |name: &syn::Ident| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}::{name}")
        }
    };
    match tree {
        syn::UseTree::Path(p) => collect_use(&p.tree, join(&p.ident), out),
        syn::UseTree::Name(n) => out
            .entry(n.ident.to_string())
            .or_default()
            .push(join(&n.ident)),
        syn::UseTree::Rename(r) => out
            .entry(r.rename.to_string())
            .or_default()
            .push(join(&r.ident)),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                collect_use(tree, prefix.clone(), out);
            }
        }
        syn::UseTree::Glob(_) => {}
    }
}

/// `#[reactive_function]`, `#[reactive_function(..)]` or `#[reactive::reactive_function(..)]`.
fn is_reactive_function(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "reactive_function")
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test")
    })
}
