//! The procedures of the crate: each `#[reactive_function]` summarized as the macro
//! summarizes it, its callees' tables added as the registry adds them.

use std::collections::HashMap;

use super::Warning;
use super::sources::Items;
use super::types::Renderer;
use crate::calls::{add_whole_tables, callee_tables};
use crate::expand::{self, FunctionSummary};
use crate::typescript::{ProcedureTs, dependency_tables};

/// Every procedure of `items`, with the TypeScript of its input and output.
pub(crate) fn procedures(
    items: &Items<'_>,
    renderer: &mut Renderer<'_>,
    warnings: &mut Vec<Warning>,
) -> Vec<ProcedureTs> {
    let mut summaries: Vec<(FunctionSummary, &std::path::Path)> = Vec::new();
    for function in &items.functions {
        let line = function.item.sig.ident.span().start().line;
        if function.item.attrs.iter().any(|a| a.path().is_ident("cfg")) {
            warnings.push(Warning {
                file: function.file.to_owned(),
                line,
                message: format!(
                    "`{}` has `#[cfg(..)]`: the build script includes it whatever the configuration",
                    function.item.sig.ident
                ),
            });
        }
        match expand::summarize(function.args.clone(), function.item) {
            Ok(summary) => summaries.push((summary, function.file)),
            Err(error) => warnings.push(Warning {
                file: function.file.to_owned(),
                line,
                message: format!(
                    "`{}` is left out: the macro rejects it ({error})",
                    function.item.sig.ident
                ),
            }),
        }
    }

    // Procedure names of the callees, resolved by the called function's name (the
    // macro resolves the path; the build script does not resolve modules).
    let mut by_rust_name: HashMap<&str, Vec<&str>> = HashMap::new();
    for (summary, _) in &summaries {
        by_rust_name
            .entry(summary.model.rust_name.as_str())
            .or_default()
            .push(summary.model.name.as_str());
    }
    let calls: Vec<Vec<&str>> = summaries
        .iter()
        .map(|(summary, _)| {
            summary
                .callees
                .iter()
                .filter_map(|path| {
                    let name = path.segments.last()?.ident.to_string();
                    match by_rust_name.get(name.as_str())?.as_slice() {
                        [procedure] => Some(*procedure),
                        _ => None,
                    }
                })
                .collect()
        })
        .collect();
    let own: HashMap<&str, (Vec<String>, &[&str])> = summaries
        .iter()
        .zip(&calls)
        .map(|((summary, _), calls)| {
            let tables = summary
                .model
                .dependencies
                .iter()
                .map(|d| d.table.clone())
                .collect();
            (summary.model.name.as_str(), (tables, calls.as_slice()))
        })
        .collect();

    summaries
        .iter()
        .zip(&calls)
        .map(|((summary, file), calls)| {
            let mut model = summary.model.clone();
            let tables = callee_tables(&summary.model.name, calls, |name| {
                own.get(name)
                    .map(|(tables, calls)| (tables.as_slice(), *calls))
            });
            add_whole_tables(&mut model.dependencies, tables);
            let types = renderer.procedure(
                summary.signature.input.as_ref(),
                &summary.signature.output,
                file,
                &model.name,
            );
            ProcedureTs {
                name: model.name.clone(),
                kind: model.kind,
                input: types.input,
                output: types.output,
                dependencies: dependency_tables(&model),
                declarations: types.declarations,
            }
        })
        .collect()
}
