//! Names as they are matched (docs/api.md §6): letters and digits transliterated to ASCII the
//! way Python's `unidecode` does (deunicode follows the same tables) and lower-cased; `-`,
//! `_` and every kind of whitespace separate words; everything else (punctuation, symbols,
//! emoji, control and format characters) is dropped, except `"`, which the query language uses.
//!
//! Each character is classified before it is transliterated: deunicode spells symbols out
//! ("🦄" as "unicorn", "©" as "(c)"), and those words must not become terms a name has to hold.

pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(&mut out, text);
    out
}

/// [`normalize`], appending to `out`.
pub fn normalize_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            'a'..='z' | '0'..='9' | '"' => out.push(c),
            '-' | '_' => out.push(' '),
            c if c.is_whitespace() => out.push(' '),
            // Letters and digits of every script (with the marks that belong to letters).
            c if c.is_alphanumeric() => {
                for t in deunicode::deunicode_char(c).unwrap_or("").chars() {
                    match t {
                        'A'..='Z' => out.push(t.to_ascii_lowercase()),
                        'a'..='z' | '0'..='9' => out.push(t),
                        ' ' | '-' | '_' => out.push(' '),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn transliterates_like_unidecode() {
        assert_eq!(normalize("Café"), "cafe");
        assert_eq!(normalize("Straße"), "strasse");
        assert_eq!(normalize("北京").trim(), "bei jing");
        assert_eq!(normalize("São Paulo"), "sao paulo");
        assert_eq!(normalize("Москва"), "moskva");
    }

    #[test]
    fn dashes_and_underscores_become_spaces_and_punctuation_goes() {
        assert_eq!(normalize("Saint-Denis_Nord"), "saint denis nord");
        assert_eq!(normalize("St. Mary's (old)!"), "st marys old");
        assert_eq!(normalize("\"quoted\""), "\"quoted\"");
    }

    #[test]
    fn symbols_are_dropped_and_all_whitespace_separates() {
        assert_eq!(normalize("kauppatori 🦄"), "kauppatori ");
        assert_eq!(normalize("kauppa\ttori"), "kauppa tori");
        assert_eq!(normalize("a\u{3000}b\u{a0}c\u{2028}d"), "a b c d");
        assert_eq!(normalize("©™€→"), "");
    }
}
