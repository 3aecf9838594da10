//! Text from the other side made safe to print: what a registry or an
//! archive wrote (a config's `os`/`architecture`/`variant`, an error body,
//! an archive member's name) can carry terminal escape sequences, a bell,
//! or a bidirectional override that shows a name reversed. [`printable`]
//! writes each control character (C0 but the line feed, DEL, C1) and each
//! bidi control (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to
//! U+2069) as `\uXXXX`, the form JSON uses, so an escaped JSON document
//! stays valid and decodes to the same text.
//!
//! It is applied where text is printed, whatever it holds: an error
//! (`main.rs`), a log record (`cli/logging.rs`), a line of the progress
//! display ([`crate::ui::progress`]), the retry reason on a blob's line,
//! and `pulltar inspect`'s output (`cli/commands.rs`). Nothing else
//! changes the text.

use std::fmt::Write;

/// `text` with every control and bidi character written as `\uXXXX`.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if unsafe_to_show(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn unsafe_to_show(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        for (raw, shown) in [
            ("linux/amd64", "linux/amd64"),
            ("two\nlines", "two\nlines"),
            ("amd\u{1b}]0;x\u{7}64", "amd\\u001b]0;x\\u000764"),
            ("\u{1b}[2J\r\t\0", "\\u001b[2J\\u000d\\u0009\\u0000"),
            ("del\u{7f}", "del\\u007f"),
            ("csi\u{9b}31m", "csi\\u009b31m"),
            ("exe.\u{202e}gpj", "exe.\\u202egpj"),
            (
                "\u{2066}\u{2069}\u{200f}\u{61c}",
                "\\u2066\\u2069\\u200f\\u061c",
            ),
            ("café ✓ 日本", "café ✓ 日本"),
        ] {
            assert_eq!(printable(raw), shown, "{raw:?}");
        }
    }

    #[test]
    fn json_stays_json() {
        let raw = "x\u{7f}\u{85}\u{202e}y";
        let doc = serde_json::to_string_pretty(&serde_json::json!({ "a": raw })).unwrap();
        let shown = printable(&doc);
        assert!(!shown.chars().any(unsafe_to_show), "{shown}");
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back["a"], raw);
    }
}
