//! The unified diff `reactive convert` prints without `--write`.

use std::fmt::Write as _;

use super::text::{line_of, line_start};
use super::{Conversion, Edit, apply};

/// A unified diff of the edits (3 lines of context), `--- a/PATH` / `+++ b/PATH`.
pub fn unified_diff(path: &str, conversion: &Conversion) -> String {
    let text = &conversion.original;
    // Changed blocks: line ranges of the original [first, end) and their new text.
    let mut blocks: Vec<(usize, usize, Vec<&Edit>)> = Vec::new();
    for edit in &conversion.edits {
        let first = line_of(text, edit.range.start) - 1;
        let zero_width_at_line_start =
            edit.range.is_empty() && line_start(text, edit.range.start) == edit.range.start;
        let end = if zero_width_at_line_start {
            first
        } else {
            line_of(text, edit.range.end.max(edit.range.start + 1) - 1)
        };
        // Edits on the same line go together; an insertion before a line is its own block.
        match blocks.last_mut() {
            Some(block) if first < block.1 => {
                block.1 = block.1.max(end);
                block.2.push(edit);
            }
            _ => blocks.push((first, end, vec![edit])),
        }
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let offsets: Vec<usize> = std::iter::once(0)
        .chain(lines.iter().scan(0, |at, l| {
            *at += l.len();
            Some(*at)
        }))
        .collect();
    // Each block as (old start, old lines, new lines).
    let changes: Vec<(usize, Vec<String>, Vec<String>)> = blocks
        .iter()
        .map(|(first, end, edits)| {
            let window = offsets[*first]..offsets[*end];
            let owned: Vec<Edit> = edits.iter().map(|e| (*e).clone()).collect();
            let new = apply(text, &owned, window.clone());
            (
                *first,
                text[window]
                    .split_inclusive('\n')
                    .map(str::to_owned)
                    .collect(),
                new.split_inclusive('\n').map(str::to_owned).collect(),
            )
        })
        .collect();
    let shown = path.trim_start_matches('/');
    let mut out = format!("--- a/{shown}\n+++ b/{shown}\n");
    const CONTEXT: usize = 3;
    let mut i = 0;
    let mut shift: isize = 0;
    while i < changes.len() {
        // Group changes whose contexts touch.
        let mut j = i;
        while j + 1 < changes.len()
            && changes[j + 1].0 <= changes[j].0 + changes[j].1.len() + 2 * CONTEXT
        {
            j += 1;
        }
        let start = changes[i].0.saturating_sub(CONTEXT);
        let last_end = changes[j].0 + changes[j].1.len();
        let end = (last_end + CONTEXT).min(lines.len());
        let mut body = String::new();
        let (mut old_count, mut new_count) = (0, 0);
        let mut at = start;
        let shift_before = shift;
        for change in &changes[i..=j] {
            for line in &lines[at..change.0] {
                push_line(&mut body, ' ', line);
                old_count += 1;
                new_count += 1;
            }
            for line in &change.1 {
                push_line(&mut body, '-', line);
                old_count += 1;
            }
            for line in &change.2 {
                push_line(&mut body, '+', line);
                new_count += 1;
            }
            shift += change.2.len() as isize - change.1.len() as isize;
            at = change.0 + change.1.len();
        }
        for line in &lines[at..end] {
            push_line(&mut body, ' ', line);
            old_count += 1;
            new_count += 1;
        }
        let new_start = (start as isize + shift_before) as usize;
        let _ = writeln!(
            out,
            "@@ -{},{old_count} +{},{new_count} @@",
            start + 1,
            new_start + 1
        );
        out.push_str(&body);
        i = j + 1;
    }
    out
}

fn push_line(out: &mut String, mark: char, line: &str) {
    out.push(mark);
    out.push_str(line);
    if !line.ends_with('\n') {
        out.push_str("\n\\ No newline at end of file\n");
    }
}
