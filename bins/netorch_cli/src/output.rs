//! What the command line prints: aligned tables for people, the API's own JSON for scripts
//! (`-o json`), and colour only on a terminal without `NO_COLOR`.

use serde_json::Value;
use std::io::IsTerminal;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns, for people.
    Table,
    /// Exactly the API's JSON, for scripts.
    Json,
}

/// Whether to colour what goes to standard output.
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes to standard output. A reader that went away (`netorch man | head`) ends the program
/// quietly with status 0, as it ends other Unix tools, where `println!` would panic; any other
/// failure to write is one line on standard error and status 1.
pub fn write_out(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_fmt(text).and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("netorch: cannot write the output: {error}");
        std::process::exit(1);
    }
}

/// `println!` through [`write_out`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Prints `value` as the API gave it, pretty.
pub fn json(value: &Value) {
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// A value as a table cell: text as it is, numbers as JSON writes them, null as `-`, a list
/// as its cells joined by commas.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(all) => all.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// The items of a JSON list (none when `value` is not one).
pub fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// A table's rows: each item's `fields`, a field a dotted path into its objects
/// (`progress.total`), as cells; a field ending in `:N` is a number shown with `N` decimals
/// (`latency_ms:2`), as people read a measurement.
pub fn rows(items: &[Value], fields: &[&str]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|item| {
            fields
                .iter()
                .map(|field| {
                    let (path, decimals) = match field.split_once(':') {
                        Some((path, n)) => (path, n.parse::<usize>().ok()),
                        None => (*field, None),
                    };
                    let value = path.split('.').fold(item, |value, key| &value[key]);
                    match (decimals, value.as_f64()) {
                        (Some(n), Some(number)) => format!("{number:.n$}"),
                        _ => cell(value),
                    }
                })
                .collect()
        })
        .collect()
}

/// Prints `rows` under `headers`, each column as wide as its widest cell; on a terminal, the
/// words that say how things went in colour.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let text = render(headers, rows);
    if colour() {
        write_out(format_args!("{}", paint(&text)));
    } else {
        write_out(format_args!("{text}"));
    }
}

/// `text` with the statuses and states coloured (after alignment: the codes take no column).
fn paint(text: &str) -> String {
    const COLOURS: [(&str, &str); 6] = [
        ("COMPLETE", "32"),
        ("RUNNING", "32"),
        ("DEGRADED", "31"),
        ("FAILED", "31"),
        ("PAUSED", "33"),
        ("firing", "31"),
    ];
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let mut line = line.to_owned();
            // The header row names columns (RUNNING, FAILED): left plain.
            for (word, code) in COLOURS.into_iter().filter(|_| i > 0) {
                line = line
                    .split(' ')
                    .map(|w| {
                        if w == word {
                            format!("\x1b[{code}m{w}\x1b[0m")
                        } else {
                            w.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            line + "\n"
        })
        .collect()
}

/// [`table`]'s text.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (text, width)) in cells.zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                out.push_str(text);
            } else {
                out.push_str(&format!("{text:<width$}  "));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let text = render(
            &["ID", "NAME", "STATUS"],
            &[
                vec!["1".into(), "edge-west".into(), "COMPLETE".into()],
                vec!["12".into(), "é".into(), "-".into()],
            ],
        );
        assert_eq!(
            text,
            "ID  NAME       STATUS\n1   edge-west  COMPLETE\n12  é          -\n"
        );
        assert_eq!(
            paint("ID FAILED\n1  DEGRADED  x\n"),
            "ID FAILED\n1  \x1b[31mDEGRADED\x1b[0m  x\n"
        );
        assert_eq!(cell(&Value::Null), "-");
        let listed = serde_json::json!([{"a": {"b": 1}, "c": ["x", "y"]}, {"c": null}]);
        assert_eq!(
            rows(items(&listed), &["a.b", "c"]),
            [vec!["1", "x, y"], vec!["-", "-"]]
        );
        assert_eq!(cell(&serde_json::json!(2.5)), "2.5");
    }
}
