//! Rendering Rust syntax back to short text for diagnostics, bindings and the CLI.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;

/// The expression as written when the source text is available and matches the
/// tokens (a parsed file, or a real macro invocation whose spans can be joined),
/// else a compact rendering of its tokens (`&input.id`, `a + 1`).
pub(crate) fn expr_text(expr: &syn::Expr) -> String {
    let tokens = expr.to_token_stream();
    let compact = compact(tokens);
    if let Some(text) = expr.span().source_text()
        && let Ok(reparsed) = text.parse::<TokenStream>()
        && compact_eq(reparsed, &compact)
    {
        return text;
    }
    compact
}

/// A path without generic arguments (`crate::agents::find`, `::sqlx::query`).
pub(crate) fn path_text(path: &syn::Path) -> String {
    let mut out = String::new();
    if path.leading_colon.is_some() {
        out.push_str("::");
    }
    for (i, segment) in path.segments.iter().enumerate() {
        if i > 0 {
            out.push_str("::");
        }
        out.push_str(&segment.ident.to_string());
    }
    out
}

fn compact_eq(tokens: TokenStream, expected: &str) -> bool {
    compact(tokens) == expected
}

/// Render tokens with spaces only where they help reading.
pub(crate) fn compact(tokens: TokenStream) -> String {
    let mut out = String::new();
    let mut prev = Prev::Start;
    write_tokens(tokens, &mut out, &mut prev);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    Start,
    /// An identifier, literal or closing group: an operand ended here.
    Operand,
    /// A `,` or `;`.
    Separator,
    /// A binary operator (space after it).
    Binary,
    /// Any other punctuation (`.`, `::`, `&` unary, joint puncts).
    Tight,
}

fn write_tokens(tokens: TokenStream, out: &mut String, prev: &mut Prev) {
    let mut iter = tokens.into_iter().peekable();
    while let Some(tree) = iter.next() {
        match tree {
            TokenTree::Ident(ident) => {
                if matches!(*prev, Prev::Operand | Prev::Separator | Prev::Binary) {
                    out.push(' ');
                }
                out.push_str(&ident.to_string());
                *prev = Prev::Operand;
            }
            TokenTree::Literal(lit) => {
                if matches!(*prev, Prev::Operand | Prev::Separator | Prev::Binary) {
                    out.push(' ');
                }
                out.push_str(&lit.to_string());
                *prev = Prev::Operand;
            }
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                if matches!(*prev, Prev::Separator | Prev::Binary)
                    || (group.delimiter() == Delimiter::Brace && *prev == Prev::Operand)
                {
                    out.push(' ');
                }
                out.push_str(open);
                let mut inner = Prev::Start;
                write_tokens(group.stream(), out, &mut inner);
                out.push_str(close);
                *prev = Prev::Operand;
            }
            TokenTree::Punct(punct) => {
                let ch = punct.as_char();
                let joint = punct.spacing() == Spacing::Joint;
                match ch {
                    ',' | ';' => {
                        out.push(ch);
                        *prev = Prev::Separator;
                    }
                    // `name!(..)`: a macro's bang (a binary `!` only exists as `!=`, which is joint).
                    '!' if !joint && *prev == Prev::Operand => {
                        out.push(ch);
                        *prev = Prev::Tight;
                    }
                    '.' | ':' | '#' | '$' | '\'' | '?' => {
                        out.push(ch);
                        *prev = if ch == '?' {
                            Prev::Operand
                        } else {
                            Prev::Tight
                        };
                    }
                    _ => {
                        // Binary when an operand precedes it; unary (`&x`, `-1`, `*p`, `!b`) otherwise.
                        let binary = *prev == Prev::Operand;
                        if binary || matches!(*prev, Prev::Separator | Prev::Binary) {
                            out.push(' ');
                        }
                        out.push(ch);
                        // Multi-character operators (`==`, `+=`, `->`, `=>`, `&&`): keep together.
                        let mut joint = joint;
                        while joint {
                            joint = false;
                            match iter.peek() {
                                Some(TokenTree::Punct(next))
                                    if !matches!(
                                        next.as_char(),
                                        ',' | ';' | '.' | ':' | '#' | '$' | '\''
                                    ) =>
                                {
                                    out.push(next.as_char());
                                    joint = next.spacing() == Spacing::Joint;
                                    iter.next();
                                }
                                _ => {}
                            }
                        }
                        *prev = if binary { Prev::Binary } else { Prev::Tight };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(expr: syn::Expr) -> String {
        expr_text(&expr)
    }

    #[test]
    fn compact_rendering_of_common_bind_expressions() {
        assert_eq!(
            render(syn::parse_quote!(&input.organization_id)),
            "&input.organization_id"
        );
        assert_eq!(
            render(syn::parse_quote!(input.id.clone())),
            "input.id.clone()"
        );
        assert_eq!(render(syn::parse_quote!(a + 1)), "a + 1");
        assert_eq!(render(syn::parse_quote!(-1)), "-1");
        assert_eq!(render(syn::parse_quote!(f(a, &b))), "f(a, &b)");
        assert_eq!(render(syn::parse_quote!(x == y)), "x == y");
        assert_eq!(render(syn::parse_quote!(Uuid::new_v4())), "Uuid::new_v4()");
        assert_eq!(render(syn::parse_quote!("active")), "\"active\"");
        assert_eq!(
            render(syn::parse_quote!(format!("{}", x))),
            "format!(\"{}\", x)"
        );
    }

    #[test]
    fn source_text_is_used_when_it_matches_the_tokens() {
        let file = syn::parse_file("fn f() { g(&input . id ,  x) }").expect("parses");
        let syn::Item::Fn(item) = &file.items[0] else {
            panic!("fn")
        };
        let syn::Stmt::Expr(syn::Expr::Call(call), _) = &item.block.stmts[0] else {
            panic!("call")
        };
        assert_eq!(expr_text(&call.args[0]), "&input . id");
    }

    #[test]
    fn path_text_drops_generics() {
        let path: syn::Path = syn::parse_quote!(::sqlx::query_as::<_, Agent>);
        assert_eq!(path_text(&path), "::sqlx::query_as");
    }
}
