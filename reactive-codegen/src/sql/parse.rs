//! Tokenizing and parsing one SQL string with the right sqlparser dialect.
//!
//! The string is tokenized once: the tokens number the placeholders (see
//! [`Params`]) and are then handed to the parser.
//!
//! sqlparser guards its recursive descent with a recursion limit, but long
//! left-associative chains (`1 + 1 + 1 ...`, `a AND b AND c ...`, `x::t::t ...`)
//! are built in a loop and produce trees as deep as the chain is long; dropping or
//! walking such a tree recursively overflows the stack (sqlparser itself does so
//! at a few tens of thousands of operators). A stack overflow aborts the process,
//! so before parsing we count the tokens that can extend such a chain and refuse
//! statements with more than [`MAX_CHAIN_TOKENS`] of them (reported as unsupported,
//! i.e. "may read and write anything", which is always safe).

use sqlparser::ast::Statement;
use sqlparser::dialect::{self as sp, Dialect as SpDialect};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};

use super::model::{Dialect, Unknown};
use super::params::Params;

/// Upper bound on operator-like tokens in one string (see the module docs).
/// Generous for hand-written SQL, and far below what overflows a 2 MiB stack in a
/// debug build.
pub(crate) const MAX_CHAIN_TOKENS: usize = 4000;

/// Nesting limit handed to the parser (sqlparser's default is 50).
const RECURSION_LIMIT: usize = 50;

/// A parsed SQL string.
pub(crate) struct Parsed {
    pub(crate) statements: Vec<Statement>,
    pub(crate) params: Params,
    /// The first word of the text, upper-cased (names statements the analyser does not model).
    pub(crate) first_word: String,
}

impl Dialect {
    /// sqlparser's dialect for this one: the one mapping from our dialects to
    /// sqlparser's, used by the analysis, the runtime's rewrites and the CLI's schema.
    pub fn parser(self) -> &'static dyn SpDialect {
        match self {
            Dialect::Postgres => &sp::PostgreSqlDialect {},
            Dialect::Sqlite => &sp::SQLiteDialect {},
            Dialect::MySql => &sp::MySqlDialect {},
        }
    }
}

/// Tokenize, check and parse `sql`.
pub(crate) fn parse(sql: &str, dialect: Dialect) -> Result<Parsed, Unknown> {
    let parser = dialect.parser();
    let tokens = Tokenizer::new(parser, sql)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| Unknown::Parse(ParserError::from(e).to_string()))?;
    let chain = tokens.iter().filter(|t| extends_chain(&t.token)).count();
    if chain > MAX_CHAIN_TOKENS {
        return Err(Unknown::Unsupported(format!(
            "statement too complex to analyse ({chain} operators, limit {MAX_CHAIN_TOKENS})"
        )));
    }
    let params = Params::from_tokens(&tokens, dialect);
    let first_word: String = tokens
        .iter()
        .find_map(|t| match &t.token {
            Token::Word(w) => Some(w.value.to_ascii_uppercase()),
            _ => None,
        })
        .unwrap_or_default();
    // Nothing but whitespace and `;` after the first `;`: at most one statement.
    let single = tokens
        .iter()
        .skip_while(|t| t.token != Token::SemiColon)
        .all(|t| {
            matches!(
                t.token,
                Token::SemiColon | Token::Whitespace(_) | Token::EOF
            )
        });
    let statements = match Parser::new(parser)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(tokens)
        .parse_statements()
    {
        Ok(statements) => statements,
        // sqlparser does not read every PRAGMA form (`PRAGMA foreign_keys = ON`). A
        // PRAGMA changes settings, never rows: alone in the string, it does nothing
        // the analysis cares about.
        Err(_) if single && first_word == "PRAGMA" => Vec::new(),
        Err(e) => return Err(Unknown::Parse(e.to_string())),
    };
    Ok(Parsed {
        statements,
        params,
        first_word,
    })
}

/// Tokens that can make a parsed expression one level deeper without a
/// parenthesis (which the recursion limit would catch).
fn extends_chain(token: &Token) -> bool {
    match token {
        Token::Whitespace(_)
        | Token::Comma
        | Token::Period
        | Token::LParen
        | Token::RParen
        | Token::SemiColon
        | Token::Number(..)
        | Token::Placeholder(_)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::NationalStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::DollarQuotedString(_)
        | Token::EOF => false,
        Token::Word(w) => !matches!(
            w.keyword,
            Keyword::NoKeyword | Keyword::NULL | Keyword::TRUE | Keyword::FALSE | Keyword::DEFAULT
        ),
        _ => true,
    }
}
