//! Names as they are matched: the rules existing grains' search index was built with
//! (docs/api.md §6). Transliterated to ASCII the way Python's `unidecode` does (deunicode
//! follows the same tables), lower-cased, `-` and `_` as spaces, and everything but letters,
//! digits, spaces and `"` dropped.

pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(&mut out, text);
    out
}

/// [`normalize`], appending to `out`.
pub fn normalize_into(out: &mut String, text: &str) {
    let ascii = deunicode::deunicode(text);
    for c in ascii.chars() {
        match c {
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            'a'..='z' | '0'..='9' | '"' => out.push(c),
            ' ' | '-' | '_' => out.push(' '),
            c if c.is_whitespace() => out.push(' '),
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
        assert_eq!(normalize("北京"), "bei jing");
        assert_eq!(normalize("São Paulo"), "sao paulo");
    }

    #[test]
    fn dashes_and_underscores_become_spaces_and_punctuation_goes() {
        assert_eq!(normalize("Saint-Denis_Nord"), "saint denis nord");
        assert_eq!(normalize("St. Mary's (old)!"), "st marys old");
        assert_eq!(normalize("\"quoted\""), "\"quoted\"");
    }
}
