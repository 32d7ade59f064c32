//! The search box's little language (docs/api.md §6), turned into an FTS5 expression and a
//! check of each candidate.
//!
//! Words outside quotes match as prefixes, text inside a pair of quotes as a phrase, an
//! unpaired quote is ignored and one-character words outside quotes are dropped; every term
//! must match. User text only ever reaches FTS5 inside a double-quoted string of letters,
//! digits and spaces, so nothing a user types (`*`, `:`, `^`, `(`, NEAR, AND, OR, NOT, column
//! names) can act as an operator.

use super::normalize::normalize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A word that matches any indexed word starting with it.
    Prefix(String),
    /// Words that must appear together, in order.
    Phrase(String),
    /// One whole word among these: what a mistyped word may stand for.
    AnyOf(Vec<String>),
}

/// The terms of a query; empty when nothing searchable is left.
pub fn parse(query: &str) -> Vec<Term> {
    let mut text = normalize(query);
    if text.matches('"').count() % 2 == 1 {
        // The unpaired quote is the last one: the pairs before it are kept.
        if let Some(last) = text.rfind('"') {
            text.replace_range(last..=last, " ");
        }
    }
    let mut terms = Vec::new();
    for (i, segment) in text.split('"').enumerate() {
        let words: Vec<&str> = segment.split_whitespace().collect();
        if i % 2 == 1 {
            if !words.is_empty() {
                terms.push(Term::Phrase(words.join(" ")));
            }
        } else {
            terms.extend(
                words
                    .into_iter()
                    .filter(|w| w.len() > 1)
                    .map(|w| Term::Prefix(w.to_string())),
            );
        }
    }
    dedupe(terms)
}

/// The terms without repeats: a term said twice, or a prefix of another prefix term ("sta"
/// beside "stadt": the word that starts with "stadt" starts with "sta" too), adds nothing to
/// match but costs a lookup each.
fn dedupe(terms: Vec<Term>) -> Vec<Term> {
    let mut kept: Vec<Term> = Vec::with_capacity(terms.len());
    for (i, term) in terms.iter().enumerate() {
        let implied = match term {
            Term::Prefix(p) => terms.iter().enumerate().any(|(j, other)| match other {
                Term::Prefix(o) => {
                    j != i && o.starts_with(p.as_str()) && (o.len() > p.len() || j < i)
                }
                _ => false,
            }),
            other => kept.contains(other),
        };
        if !implied {
            kept.push(term.clone());
        }
    }
    kept
}

/// Shortest word a typo is forgiven in; a four-letter word is forgiven two swapped letters.
pub const TYPO_FROM: usize = 5;

/// Other readings of a query that found nothing, most likely first: adjacent words joined
/// ("kauppa tori" for Kauppatori), then each long word allowed one typo (`typo_words` lists,
/// for a word, the indexed words one edit away). Empty when there is nothing to try.
pub fn forgiving_readings(terms: &[Term]) -> Vec<Vec<Term>> {
    let mut readings = Vec::new();
    for i in 0..terms.len().saturating_sub(1) {
        if let (Term::Prefix(a), Term::Prefix(b)) = (&terms[i], &terms[i + 1]) {
            let mut joined = terms.to_vec();
            joined.splice(i..i + 2, [Term::Prefix(format!("{a}{b}"))]);
            readings.push(joined);
        }
    }
    readings
}

/// Every string one edit from `word` (a letter deleted, swapped with the next, replaced or
/// inserted; Damerau–Levenshtein distance 1), for words of [`TYPO_FROM`] letters or more; for
/// four-letter words only the swaps. Without `word` itself.
pub fn one_edit_away(word: &str) -> Vec<String> {
    let chars: Vec<u8> = word.bytes().collect();
    let n = chars.len();
    let mut out: Vec<Vec<u8>> = Vec::new();
    if !(4..=32).contains(&n) || !word.is_ascii() {
        return Vec::new();
    }
    for i in 0..n - 1 {
        if chars[i] != chars[i + 1] {
            let mut v = chars.clone();
            v.swap(i, i + 1);
            out.push(v);
        }
    }
    if n >= TYPO_FROM {
        const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for i in 0..n {
            let mut v = chars.clone();
            v.remove(i);
            out.push(v);
            for &c in LETTERS {
                if c != chars[i] {
                    let mut v = chars.clone();
                    v[i] = c;
                    out.push(v);
                }
            }
        }
        for i in 0..=n {
            for &c in LETTERS {
                let mut v = chars.clone();
                v.insert(i, c);
                out.push(v);
            }
        }
    }
    let mut words: Vec<String> = out
        .into_iter()
        .filter_map(|v| String::from_utf8(v).ok())
        .collect();
    words.sort();
    words.dedup();
    words
}

/// The longest prefixes the index keeps a list of places for (FTS5 `prefix='2 3'`).
pub const INDEXED_PREFIX: usize = 3;

/// An FTS5 expression for every place that may match `terms`, cheap to run over a range of
/// ids, and whether each place it finds must still be checked with [`matches_terms`]; `None`
/// when nothing can match.
///
/// A prefix longer than [`INDEXED_PREFIX`] would make FTS5 gather every place of every word
/// starting with it before looking at any id range. So `words_of` lists the indexed words
/// starting with it: a few become an OR of plain words; none means no match; when it gives
/// up (too many), the prefix is cut to the indexed length and checked in full on each
/// candidate. Phrases match as all of their words and are checked too.
pub fn fts_filter<E>(
    terms: &[Term],
    mut words_of: impl FnMut(&str) -> Result<Option<Vec<String>>, E>,
) -> Result<Option<(String, bool)>, E> {
    let mut check = false;
    let mut parts = Vec::new();
    for term in terms {
        match term {
            Term::Prefix(w) if w.len() > INDEXED_PREFIX => match words_of(w)? {
                Some(words) if words.is_empty() => return Ok(None),
                Some(words) => {
                    let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
                    parts.push(format!("({})", quoted.join(" OR ")));
                }
                None => {
                    check = true;
                    // Normalised words are ASCII, so this cuts between characters.
                    parts.push(format!("\"{}\"*", &w[..INDEXED_PREFIX]));
                }
            },
            Term::Prefix(w) => parts.push(format!("\"{w}\"*")),
            Term::AnyOf(words) if words.is_empty() => return Ok(None),
            Term::AnyOf(words) => {
                let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
                parts.push(format!("({})", quoted.join(" OR ")));
            }
            Term::Phrase(p) => {
                check = true;
                parts.extend(p.split(' ').map(|w| format!("\"{w}\"")));
            }
        }
    }
    Ok(Some((parts.join(" AND "), check)))
}

/// Whether `normalized` matches every term: each prefix starts one of its words (as FTS5
/// splits them), each phrase appears word for word.
pub fn matches_terms(terms: &[Term], normalized: &str) -> bool {
    terms.iter().all(|t| match t {
        Term::Prefix(p) => normalized
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w.starts_with(p.as_str())),
        Term::AnyOf(words) => normalized
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| words.iter().any(|a| a == w)),
        Term::Phrase(_) => true,
    }) && matches_phrases(terms, normalized)
}

/// Whether the phrases among `terms` appear, word for word and in order, in `normalized`.
fn matches_phrases(terms: &[Term], normalized: &str) -> bool {
    let padded = format!(
        " {} ",
        normalized.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    terms.iter().all(|t| match t {
        Term::Prefix(_) | Term::AnyOf(_) => true,
        Term::Phrase(p) => padded.contains(&format!(" {p} ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(w: &str) -> Term {
        Term::Prefix(w.into())
    }

    #[test]
    fn words_are_prefixes_and_one_letter_words_are_dropped() {
        assert_eq!(parse("caf a de"), vec![p("caf"), p("de")]);
    }

    #[test]
    fn quoted_text_is_a_phrase_and_an_unpaired_quote_is_ignored() {
        assert_eq!(
            parse("\"new york\" pizza \"joe"),
            vec![Term::Phrase("new york".into()), p("pizza"), p("joe")]
        );
        assert_eq!(parse("\"a\""), vec![Term::Phrase("a".into())]);
    }

    #[test]
    fn operators_and_syntax_are_plain_words() {
        let terms = parse("NEAR(a b) OR NOT x* ^start col:val AND (");
        assert_eq!(
            fts_filter(&terms, cut).unwrap().unwrap().0,
            "\"nea\"* AND \"or\"* AND \"not\"* AND \"sta\"* AND \"col\"* AND \"and\"*"
        );
    }

    #[test]
    fn phrases_match_whole_words_in_order() {
        let terms = parse("\"new york\"");
        assert!(matches_phrases(&terms, "new york pizza"));
        assert!(!matches_phrases(&terms, "york new"));
        assert!(!matches_phrases(&terms, "new yorker"));
    }

    fn cut(_: &str) -> Result<Option<Vec<String>>, ()> {
        Ok(None)
    }

    #[test]
    fn long_prefixes_become_their_words_or_are_cut_and_checked_in_full() {
        let terms = parse("street ma \"new york\"");
        assert_eq!(
            fts_filter(&terms, cut).unwrap(),
            Some((
                "\"str\"* AND \"ma\"* AND \"new\" AND \"york\"".to_string(),
                true
            ))
        );
        let words = |p: &str| Ok::<_, ()>(Some(vec![p.to_string(), format!("{p}s")]));
        assert_eq!(
            fts_filter(&parse("street ma"), words).unwrap(),
            Some(("(\"street\" OR \"streets\") AND \"ma\"*".to_string(), false))
        );
        let none = |_: &str| Ok::<_, ()>(Some(Vec::new()));
        assert_eq!(fts_filter(&parse("street ma"), none).unwrap(), None);
        assert!(!fts_filter(&parse("ma sta"), cut).unwrap().unwrap().1);
        assert!(matches_terms(&terms, "main streets new york"));
        assert!(!matches_terms(&terms, "main strand new york"));
        assert!(!matches_terms(&terms, "main streets york new"));
        assert!(matches_terms(&parse("quot"), "\"quoted\" place"));
    }

    #[test]
    fn repeated_words_and_prefixes_of_other_words_are_searched_once() {
        assert_eq!(
            parse("saint street stadt sta saint STREET"),
            vec![p("saint"), p("street"), p("stadt")]
        );
        assert_eq!(parse("\"a b\" \"a b\""), vec![Term::Phrase("a b".into())]);
    }

    #[test]
    fn a_typo_is_one_edit_and_joined_words_are_another_reading() {
        let near = one_edit_away("lodnon");
        assert!(near.contains(&"london".to_string()));
        assert!(near.contains(&"lodon".to_string()));
        assert!(!near.contains(&"lodnon".to_string()));
        assert!(one_edit_away("yrok").contains(&"york".to_string()));
        assert!(!one_edit_away("yrok").contains(&"yrk".to_string()));
        assert!(one_edit_away("abc").is_empty());
        assert_eq!(
            forgiving_readings(&parse("kauppa\ttori")),
            vec![vec![p("kauppatori")]]
        );
    }

    #[test]
    fn punctuation_only_is_empty() {
        assert!(parse("*:^()!?").is_empty());
        assert!(parse("\"\"").is_empty());
        assert!(parse("").is_empty());
    }
}
