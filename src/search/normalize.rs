//! Names as they are matched (docs/api.md §6): letters and digits transliterated to ASCII the
//! way Python's `unidecode` does (deunicode follows the same tables) and lower-cased; `-`,
//! `_` and every kind of whitespace separate words; everything else (punctuation, symbols,
//! emoji, control and format characters) is dropped, except `"`, which the query language uses.
//! A symbol is what Unicode's general category calls one, even where Unicode also counts it as
//! alphabetic (the enclosed letters Ⓐ and 🅰 would otherwise become words a name must hold).
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
            // Letters and digits of every script (with the marks that belong to letters), but
            // not the symbols Unicode also counts as alphabetic (Ⓐ, 🅰).
            c if c.is_alphanumeric() && !is_symbol(c) => {
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

/// Marks an alias written in another script than Latin in the base map's folded aliases and
/// in `place.aliases` ("~rome", Lomé's ロメ): folded to Latin letters it may read as another
/// place's name, so it answers only a query typed in another script too (`rank::quality`).
pub const OTHER_SCRIPT_MARK: char = '~';

/// The words of `text` as the index matches them: normalised, without quotes, one space apart.
pub fn words(text: &str) -> String {
    normalize(text)
        .replace('"', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `|`-separated `aliases` as the index keeps them, `|`-separated: each spelling folded by
/// [`words`] once, without the ones that read as `own` (the name's words) or as nothing, and
/// marked [`OTHER_SCRIPT_MARK`] when it came only from another script (an alias already marked
/// keeps its mark; one spelling that also has a Latin original is a Latin alias). The base
/// map's build folds with it (`examples/fold_aliases.rs`) and the import again, which leaves
/// folded aliases as they are.
pub fn fold_aliases(own: &str, aliases: &str) -> String {
    let mut kept: Vec<(String, bool)> = Vec::new();
    for alias in aliases.split('|') {
        let (other, alias) = match alias.strip_prefix(OTHER_SCRIPT_MARK) {
            Some(folded) => (true, folded),
            None => (in_other_script(alias), alias),
        };
        let folded = words(alias);
        if folded.is_empty() || folded == own {
            continue;
        }
        match kept.iter_mut().find(|(w, _)| *w == folded) {
            Some(seen) => seen.1 &= other,
            None => kept.push((folded, other)),
        }
    }
    let mut out = String::new();
    for (folded, other) in &kept {
        if !out.is_empty() {
            out.push('|');
        }
        if *other {
            out.push(OTHER_SCRIPT_MARK);
        }
        out.push_str(folded);
    }
    out
}

/// Whether `text` has a letter of another script than Latin (Cyrillic, kana, Han, …).
///
/// Transliteration loses what such a script tells apart or adds what it lacks (Japanese
/// has no l/r: Lomé is ロメ, "rome"), so its folded spelling is a guess at Latin letters,
/// good for someone typing in that script, misleading for someone typing Latin letters.
/// The Latin letters are a few Unicode blocks, so they are listed here rather than taken
/// from a script table (whose data would grow the server for one question).
pub fn in_other_script(text: &str) -> bool {
    text.chars().any(|c| {
        c.is_alphabetic()
            && !matches!(c as u32,
                // Basic Latin to Latin Extended-B, IPA, spacing and combining marks.
                0..=0x036F
                // Phonetic extensions, Latin Extended Additional.
                | 0x1D00..=0x1DFF | 0x1E00..=0x1EFF
                // Latin Extended-C, -D, -E, ligatures, fullwidth Latin.
                | 0x2C60..=0x2C7F | 0xA720..=0xA7FF | 0xAB30..=0xAB6F
                | 0xFB00..=0xFB06 | 0xFF21..=0xFF3A | 0xFF41..=0xFF5A)
    })
}

/// Whether alphanumeric `c` is in one of Unicode's symbol categories (math, currency, modifier,
/// other). Such characters are the enclosed letters of U+24B6–U+24E9 and U+1F130–U+1F189; the
/// category table is looked up only in those blocks, as every letter of every name passes
/// here (a lookup for each made imports 40 % slower). The test below checks every code point.
fn is_symbol(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    matches!(c as u32, 0x2100..=0x2BFF | 0x1F100..=0x1F1FF)
        && c.general_category_group() == GeneralCategoryGroup::Symbol
}

#[cfg(test)]
mod tests {
    use super::{in_other_script, normalize};

    #[test]
    fn latin_letters_with_any_accent_are_latin_and_other_scripts_are_not() {
        for latin in [
            "Rome",
            "Lomé",
            "Ærøskøbing",
            "Đà Nẵng",
            "Łódź",
            "Ｒｏｍｅ",
            "Paris 13",
            "ʻAiea",
            "",
        ] {
            assert!(!in_other_script(latin), "{latin}");
        }
        for other in [
            "ロメ",
            "Москва",
            "北京",
            "Αθήνα",
            "القاهرة",
            "서울",
            "Rome ローマ",
        ] {
            assert!(in_other_script(other), "{other}");
        }
    }

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

/// The rule of docs/api.md §6 checked against every Unicode code point, classified by its
/// general category: each whitespace character splits "kauppa" from "tori", each symbol and
/// punctuation mark beside "kauppatori" leaves the one word, each letter and digit is kept.
#[cfg(test)]
mod every_character {
    use super::normalize;
    use crate::search::query::{Term, parse};
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};

    enum Kind {
        Whitespace,
        Symbol,
        /// Letters and decimal digits.
        LetterOrDigit,
    }

    /// Every code point the rule speaks of, with what the rule says of it.
    fn table() -> Vec<(char, Kind)> {
        (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter_map(|c| {
                let kind = match c.general_category() {
                    _ if c.is_whitespace() => Kind::Whitespace,
                    G::SpaceSeparator | G::LineSeparator | G::ParagraphSeparator => {
                        Kind::Whitespace
                    }
                    // `-` and `_` separate words and `"` quotes a phrase (checked below).
                    _ if matches!(c, '-' | '_' | '"') => return None,
                    G::MathSymbol
                    | G::CurrencySymbol
                    | G::ModifierSymbol
                    | G::OtherSymbol
                    | G::ConnectorPunctuation
                    | G::DashPunctuation
                    | G::OpenPunctuation
                    | G::ClosePunctuation
                    | G::InitialPunctuation
                    | G::FinalPunctuation
                    | G::OtherPunctuation => Kind::Symbol,
                    G::UppercaseLetter
                    | G::LowercaseLetter
                    | G::TitlecaseLetter
                    | G::ModifierLetter
                    | G::OtherLetter
                    | G::DecimalNumber => Kind::LetterOrDigit,
                    _ => return None,
                };
                Some((c, kind))
            })
            .collect()
    }

    fn prefixes(words: &[&str]) -> Vec<Term> {
        words.iter().map(|w| Term::Prefix(w.to_string())).collect()
    }

    fn is_matchable(text: &str) -> bool {
        text.chars()
            .all(|t| t.is_ascii_lowercase() || t.is_ascii_digit() || t == ' ')
    }

    #[test]
    fn whitespace_splits_symbols_go_letters_and_digits_stay() {
        let table = table();
        let count = |k: fn(&Kind) -> bool| table.iter().filter(|(_, kind)| k(kind)).count();
        // Whitespace (25 in Unicode 16), symbols and punctuation (~9,000), letters (~140,000).
        assert!(count(|k| matches!(k, Kind::Whitespace)) >= 25);
        assert!(count(|k| matches!(k, Kind::Symbol)) >= 2_000);
        assert!(count(|k| matches!(k, Kind::LetterOrDigit)) >= 2_000);

        let mut broken = Vec::new();
        for (c, kind) in &table {
            let c = *c;
            let holds = match kind {
                Kind::Whitespace => {
                    normalize(&format!("kauppa{c}tori")) == "kauppa tori"
                        && parse(&format!("kauppa{c}tori")) == prefixes(&["kauppa", "tori"])
                }
                Kind::Symbol => {
                    normalize(&format!("{c}kauppatori{c}")) == "kauppatori"
                        && parse(&format!("kauppatori {c}")) == prefixes(&["kauppatori"])
                        && parse(&format!("{c}{c}kauppatori")) == prefixes(&["kauppatori"])
                }
                // A letter or digit is spelled in ASCII as unidecode does, never as
                // punctuation: the ones unidecode spells only with punctuation (Arabic alef,
                // Hebrew aleph, a modifier apostrophe) or not at all (rare CJK, the digits of
                // scripts newer than its tables) leave nothing.
                Kind::LetterOrDigit => {
                    let spelled = normalize(&c.to_string());
                    let unidecode_letters = deunicode::deunicode_char(c)
                        .unwrap_or("")
                        .chars()
                        .any(|t| t.is_ascii_alphanumeric());
                    is_matchable(&spelled)
                        && (spelled.trim().is_empty() != unidecode_letters)
                        && normalize(&format!("kauppatori{c}")).starts_with("kauppatori")
                }
            };
            if !holds {
                broken.push(format!("U+{:04X} {c:?}", c as u32));
            }
        }
        assert!(
            broken.is_empty(),
            "{} characters break the rule: {}",
            broken.len(),
            broken.join(", ")
        );
    }

    #[test]
    fn letters_of_many_scripts_are_spelled_in_ascii() {
        for (name, spelled) in [
            ("Kauppatori", "kauppatori"),
            ("Ærøskøbing", "aeroskobing"),
            ("Łódź", "lodz"),
            ("Ελλάδα", "ellada"),
            ("Москва", "moskva"),
            ("Київ", "kiyiv"),
            ("Երևան", "erewan"),
            ("თბილისი", "tbilisi"),
            ("תל אביב", "tl byb"),
            ("القاهرة", "lqhr"),
            ("मुंबई", "munbii"),
            ("กรุงเทพ", "krungethph"),
            ("東京", "dong jing "),
            ("서울", "seoul"),
            ("ⅫⅨ", "xiiix"),
            ("٣٤", "34"),
        ] {
            assert_eq!(normalize(name), spelled, "{name}");
        }
    }

    #[test]
    fn dashes_underscores_and_quotes_keep_their_roles() {
        assert_eq!(parse("kauppa-tori"), prefixes(&["kauppa", "tori"]));
        assert_eq!(parse("kauppa_tori"), prefixes(&["kauppa", "tori"]));
        assert_eq!(
            parse("\"kauppa tori\""),
            vec![Term::Phrase("kauppa tori".into())]
        );
    }
}
