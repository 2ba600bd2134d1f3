//! Text fields: a string within its lengths and without NUL, and, for names, without the
//! control, bidirectional and invisible characters that make a text read as something other
//! than what it holds ([`NOT_PLAIN`]). The dashboard shows those characters by the same list.

use super::fields::{Errors, at, parameter};
use crate::http::error::LocItem;
use serde_json::{Value, json};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};

/// A string of `min..=max` characters without NUL: PostgreSQL text cannot hold NUL, so no
/// backend takes it. A [plain](StringField::plain) one (a name) has no control, bidirectional
/// or invisible character either.
#[derive(Debug, Clone, Copy)]
pub struct StringField {
    /// The field's name.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
    /// The fewest characters.
    pub min_length: usize,
    /// The most characters.
    pub max_length: Option<usize>,
    /// Whether [`NOT_PLAIN`] characters are refused.
    pub plain: bool,
}

/// The pattern every string input must match (no NUL character), as the document states it.
pub const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";

/// What a name may not hold, as ranges of characters: controls (C0, DEL, C1), the bidirectional
/// marks, embeddings, overrides and isolates (a name shown as `evil\u{202e}gnp.exe` reads
/// `evilexe.png`), and the characters that show as nothing (zero-width spaces and joiners,
/// invisible operators, fillers, the soft hyphen, the byte order mark, line and paragraph
/// separators, interlinear annotations). Only characters of the Basic Multilingual Plane: the
/// document's `pattern` must mean the same in JavaScript and Python, and neither spells a
/// character past U+FFFF the same way in a character class.
pub const NOT_PLAIN: &[(char, char)] = &[
    ('\u{0000}', '\u{001F}'),
    ('\u{007F}', '\u{009F}'),
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{2028}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF9}', '\u{FFFB}'),
];

/// Whether `c` is one of [`NOT_PLAIN`].
pub fn is_not_plain(c: char) -> bool {
    NOT_PLAIN
        .iter()
        .any(|(first, last)| (*first..=*last).contains(&c))
}

/// The ranges of [`NOT_PLAIN`] in hex, each code point after `prefix`: `0000-001F` (or
/// `\\u0000-\\u001F`), a lone character as itself.
pub fn not_plain_ranges(prefix: &str) -> Vec<String> {
    NOT_PLAIN
        .iter()
        .map(|(first, last)| {
            let (first, last) = (u32::from(*first), u32::from(*last));
            if first == last {
                format!("{prefix}{first:04X}")
            } else {
                format!("{prefix}{first:04X}-{prefix}{last:04X}")
            }
        })
        .collect()
}

/// The pattern a plain string must match, as the document states it: no character of
/// [`NOT_PLAIN`] (NUL among them).
pub fn plain_pattern() -> &'static str {
    static PATTERN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| format!("^[^{}]*$", not_plain_ranges("\\u").concat()))
}

impl StringField {
    /// A string of at least `min_length` characters.
    pub const fn new(name: &'static str, description: &'static str, min_length: usize) -> Self {
        StringField {
            name,
            description,
            min_length,
            max_length: None,
            plain: false,
        }
    }

    /// At most `max` characters.
    pub const fn max(mut self, max: usize) -> Self {
        self.max_length = Some(max);
        self
    }

    /// Without control, bidirectional or invisible characters ([`NOT_PLAIN`]): for names.
    pub const fn plain(mut self) -> Self {
        self.plain = true;
        self
    }

    /// The pattern the field's value must match.
    fn pattern(&self) -> &'static str {
        if self.plain {
            plain_pattern()
        } else {
            NO_NUL_PATTERN
        }
    }

    /// Reads the field at `prefix` + name from `value`.
    pub fn read(&self, errors: &mut Errors, prefix: &[LocItem], value: &Value) -> Option<String> {
        let loc = || at(prefix, self.name);
        let Value::String(s) = value else {
            errors.push(
                "string_type",
                loc(),
                "Input should be a valid string",
                value.clone(),
                None,
            );
            return None;
        };
        let length = s.chars().count();
        if length < self.min_length {
            let min = self.min_length;
            let unit = if min == 1 { "character" } else { "characters" };
            errors.push(
                "string_too_short",
                loc(),
                format!("String should have at least {min} {unit}"),
                value.clone(),
                Some(json!({ "min_length": min })),
            );
            return None;
        }
        if let Some(max) = self.max_length.filter(|max| length > *max) {
            errors.push(
                "string_too_long",
                loc(),
                format!("String should have at most {max} characters"),
                value.clone(),
                Some(json!({ "max_length": max })),
            );
            return None;
        }
        if s.contains('\0') {
            errors.push(
                "string_pattern_mismatch",
                loc(),
                "String should not contain the NUL character (\\u0000)",
                value.clone(),
                Some(json!({ "pattern": self.pattern() })),
            );
            return None;
        }
        if let Some((at, c)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| self.plain && is_not_plain(*c))
        {
            errors.push(
                "string_pattern_mismatch",
                loc(),
                format!(
                    "String should not contain control, bidirectional or invisible characters \
                     (U+{:04X} at character {at})",
                    u32::from(c)
                ),
                value.clone(),
                Some(json!({ "pattern": self.pattern() })),
            );
            return None;
        }
        Some(s.clone())
    }

    /// The field's schema: a string within its lengths, without NUL.
    pub fn schema(&self) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length((self.min_length > 0).then_some(self.min_length))
            .max_length(self.max_length)
            .pattern(Some(self.pattern()))
            .description(Some(self.description))
    }

    /// The field as a parameter.
    pub fn parameter(&self, place: ParameterIn) -> Parameter {
        parameter(self.name, place, self.description, self.schema().into())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fields::testing::{body, kinds};
    use super::*;
    use utoipa::openapi::schema::Schema;

    #[test]
    fn strings_have_lengths_and_no_nul() {
        let name = StringField::new("name", "name", 1).max(3);
        let mut errors = Errors::default();
        assert_eq!(
            name.read(&mut errors, &body(), &json!("añb")),
            Some("añb".to_owned())
        );
        assert!(errors.is_empty(), "length counts characters, not bytes");
        for bad in [json!(""), json!("abcd"), json!("a\u{0}"), json!(7)] {
            assert_eq!(name.read(&mut errors, &body(), &bad), None, "{bad}");
        }
        assert_eq!(
            kinds(&errors),
            [
                "string_too_short",
                "string_too_long",
                "string_pattern_mismatch",
                "string_type"
            ]
        );
        assert_eq!(errors.0[0].msg, "String should have at least 1 character");
        let schema = serde_json::to_value(Schema::from(name.schema())).expect("json");
        assert_eq!(
            (
                &schema["minLength"],
                &schema["maxLength"],
                &schema["pattern"]
            ),
            (&json!(1), &json!(3), &json!(NO_NUL_PATTERN))
        );
    }

    #[test]
    fn plain_strings_refuse_bidirectional_and_invisible_characters() {
        let name = StringField::new("name", "name", 1).max(255).plain();
        let mut errors = Errors::default();
        for fine in [
            "edge-east",
            "Zürich core 4",
            "東京",
            "rack ❤\u{FE0F}",
            "a b",
        ] {
            assert_eq!(
                name.read(&mut errors, &body(), &json!(fine)).as_deref(),
                Some(fine)
            );
        }
        assert!(errors.is_empty());
        for bad in [
            "evil\u{202E}gnp.exe",
            "zero\u{200B}width",
            "joined\u{200D}",
            "bom\u{FEFF}",
            "new\nline",
            "tab\t",
            "isolate\u{2066}x\u{2069}",
            "soft\u{AD}hyphen",
            "\u{3164}",
        ] {
            assert_eq!(
                name.read(&mut errors, &body(), &json!(bad)),
                None,
                "{bad:?}"
            );
        }
        assert!(
            kinds(&errors)
                .iter()
                .all(|k| *k == "string_pattern_mismatch")
        );
        assert!(
            errors.0[0].msg.contains("U+202E at character 4"),
            "{}",
            errors.0[0].msg
        );
        // The document's pattern says the same, character by character, for the whole plane.
        let pattern = plain_pattern();
        assert!(pattern.starts_with("^[^\\u0000-\\u001F"), "{pattern}");
        // Ranges in order, apart, each written once in the pattern.
        for pair in NOT_PLAIN.windows(2) {
            assert!(pair[0].1 < pair[1].0, "{pair:?}");
        }
        for (first, _) in NOT_PLAIN {
            let code = format!("\\u{:04X}", u32::from(*first));
            assert_eq!(pattern.matches(&code).count(), 1, "{code}");
        }
        let schema = serde_json::to_value(Schema::from(name.schema())).expect("json");
        assert_eq!(schema["pattern"], json!(pattern));
        // Free text keeps them (a description): only NUL is refused.
        let text = StringField::new("description", "text", 0);
        assert!(
            text.read(&mut errors, &body(), &json!("a\u{202E}b"))
                .is_some()
        );
    }
}
