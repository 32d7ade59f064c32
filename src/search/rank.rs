//! What "best first" means (docs/api.md §6): a score from how well a name matches, how important
//! the place is and how far it is from the point, weighed by how far the person looks (the
//! map's zoom). docs/search.md gives the reasoning behind each weight.
//!
//! Everything here is arithmetic on one candidate at a time; the index (`index.rs`) finds the
//! candidates and this module orders and collapses them.

use super::normalize::{OTHER_SCRIPT_MARK, normalize};
use super::query::Term;
use super::{IMPORTANT_FROM, MAX_RESULTS, Place};

/// How well a place's names match the query, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quality {
    /// The whole name (or the name with its first qualifiers, "Paris, Texas") is the query.
    Exact,
    /// An alias is exactly the query ("Wien" for Vienna).
    AliasExact,
    /// The name starts with the query's words, in order, each a whole word ("paris 13" for
    /// "Paris 13 Gobelins", not "Paris 13e Arrondissement").
    StartWhole,
    /// The name starts with the query's words, in order.
    Start,
    /// The query's words start a whole alias ("mosk" for "Москва").
    AliasStart,
    /// Every query word starts some word of the name.
    Word,
}

impl Quality {
    /// Points for the match: one tier is worth about a factor of ten in population, and a
    /// query found whole (as the name or an alias) one more over one found only as the start
    /// of a name, since the person typed a word that is complete: "roma" from Europe is Rome
    /// (an alias) before Romania (a country, counted ten times its people, whose name starts
    /// with it).
    fn points(self) -> f64 {
        match self {
            Quality::Exact => 4.0,
            Quality::AliasExact => 3.6,
            Quality::StartWhole => 2.2,
            Quality::Start => 2.0,
            Quality::AliasStart => 1.6,
            Quality::Word => 1.0,
        }
    }
}

/// What a row without a known kind or population counts as: a small place (about a hundred
/// people), above a shop and below a village.
pub const NEUTRAL_IMPORTANCE: f64 = 100.0;
/// The zoom assumed for clients that send none: a town's streets, so near places lead.
pub const DEFAULT_ZOOM: f64 = 12.0;
/// Points lost by a match found only through a typo correction or joined words.
pub const FORGIVEN_PENALTY: f64 = 0.5;
/// Results within this many degrees (about 3 km) that carry the same name are one place.
pub const SAME_PLACE_DEGREES: f64 = 0.03;

/// The importance of a region row from its `kind` column (OpenStreetMap's place and feature
/// kinds), on the scale of the base map's populations: a city outranks a shop of its name.
pub fn importance_of_kind(kind: &str) -> f64 {
    match kind.trim().to_ascii_lowercase().as_str() {
        "country" => 1e8,
        "state" | "region" | "province" => 1e6,
        "city" => 1e5,
        "county" | "district" | "borough" => 5e4,
        "town" => 1e4,
        "suburb" | "quarter" | "island" => 3e3,
        "village" | "aerodrome" | "airport" | "station" => 1e3,
        "neighbourhood" | "neighborhood" | "square" | "park" | "peak" | "lake" => 3e2,
        "hamlet" | "locality" | "street" | "road" | "attraction" | "museum" => 1e2,
        "" => NEUTRAL_IMPORTANCE,
        // Shops, cafés, offices, bus stops and every other point of interest.
        _ => 10.0,
    }
}

/// A place found by the index, before ranking.
#[derive(Debug, Clone)]
pub struct Found {
    pub title: String,
    /// Normalised aliases, separated by `|` (empty: none).
    pub aliases: String,
    pub lat: f64,
    pub lng: f64,
    /// Population or its equivalent; `None` when unknown.
    pub importance: Option<f64>,
    pub tile_id: String,
}

/// The words of the query in order, each with whether it may be the start of a longer word,
/// or the set of words a typo may stand for.
struct QueryWord<'a> {
    text: &'a str,
    prefix: bool,
    any_of: Option<&'a [String]>,
}

impl QueryWord<'_> {
    fn starts(&self, word: &str) -> bool {
        match self.any_of {
            Some(words) => words.iter().any(|w| w == word),
            None if self.prefix => word.starts_with(self.text),
            None => word == self.text,
        }
    }

    fn equals(&self, word: &str) -> bool {
        match self.any_of {
            Some(words) => words.iter().any(|w| w == word),
            None => word == self.text,
        }
    }
}

fn query_words(terms: &[Term]) -> Vec<QueryWord<'_>> {
    let mut words = Vec::new();
    for term in terms {
        match term {
            Term::Prefix(w) => words.push(QueryWord {
                text: w,
                prefix: true,
                any_of: None,
            }),
            Term::Phrase(p) => words.extend(p.split(' ').map(|w| QueryWord {
                text: w,
                prefix: false,
                any_of: None,
            })),
            Term::AnyOf(alternatives) => words.push(QueryWord {
                text: "",
                prefix: false,
                any_of: Some(alternatives),
            }),
        }
    }
    words
}

/// The words of a title, and after which of them a comma ended a part ("Paris, Texas,
/// United States": after 1 and 2 words).
fn title_words(title: &str) -> (Vec<String>, Vec<usize>) {
    let mut words = Vec::new();
    let mut ends = Vec::new();
    for part in title.split(',') {
        words.extend(normalize(part).split_whitespace().map(str::to_string));
        ends.push(words.len());
    }
    (words, ends)
}

/// How well the place matches, or `None` when it does not: its title must hold every term,
/// or one alias must be the query's words from its first word to its last (so "Paris of the
/// North" does not answer "paris"), with any words left over found in the title ("wien
/// austria"). An alias folded from another script (marked [`OTHER_SCRIPT_MARK`]) counts only
/// for a query `typed_in_other_script` too: folded, ロメ (Lomé in Japanese) reads "rome", and
/// someone typing "rome" in Latin letters means Rome.
pub fn quality(
    terms: &[Term],
    typed_in_other_script: bool,
    title: &str,
    aliases: &str,
) -> Option<Quality> {
    let query = query_words(terms);
    if query.is_empty() {
        return None;
    }
    let (words, ends) = title_words(title);
    let joined = words.join(" ");
    let mut best: Option<Quality> = None;
    if super::query::matches_terms(terms, &joined) {
        let leading =
            query.len() <= words.len() && query.iter().zip(&words).all(|(q, w)| q.starts(w));
        let whole = leading && query.iter().zip(&words).all(|(q, w)| q.equals(w));
        if whole && ends.contains(&query.len()) {
            return Some(Quality::Exact);
        }
        // An alias may still match better: "new york" is an alias of "New York City".
        best = Some(if whole {
            Quality::StartWhole
        } else if leading {
            Quality::Start
        } else {
            Quality::Word
        });
    }
    for alias in aliases.split('|') {
        let alias = match alias.strip_prefix(OTHER_SCRIPT_MARK) {
            Some(_) if !typed_in_other_script => continue,
            Some(folded) => folded,
            None => alias,
        };
        let alias_words: Vec<&str> = alias.split_whitespace().collect();
        let n = alias_words.len();
        if n == 0 || n > query.len() {
            continue;
        }
        let covered = query[..n - 1]
            .iter()
            .zip(&alias_words)
            .all(|(q, w)| q.equals(w))
            && query[n - 1].starts(alias_words[n - 1]);
        let rest_in_title = query[n..].iter().all(|q| words.iter().any(|w| q.starts(w)));
        if covered && rest_in_title {
            let found = if query[n - 1].equals(alias_words[n - 1]) {
                Quality::AliasExact
            } else {
                Quality::AliasStart
            };
            best = Some(best.map_or(found, |b| b.min(found)));
        }
    }
    best
}

/// The view's extent, in degrees, at `zoom`: a 256-pixel tile covers 360 / 2^zoom degrees,
/// and a browser window is about four tiles wide.
fn view_degrees(zoom: f64) -> f64 {
    4.0 * 360.0 / 2f64.powf(zoom.clamp(0.0, 22.0))
}

/// The score of a match: match points, plus log10 of importance, minus log2 of the distance
/// in half-views. Zoomed out, a view is wide and the distances of all places on the map cost
/// only a point or two, so importance leads; zoomed in, every halving of the distance is
/// worth as much as doubling the population, so near places lead.
pub fn score(
    found: &Found,
    quality: Quality,
    forgiven: bool,
    lat: f64,
    lng: f64,
    zoom: f64,
) -> f64 {
    let importance = found
        .importance
        .filter(|i| *i > 0.0)
        .unwrap_or(NEUTRAL_IMPORTANCE);
    let distance = ((found.lat - lat).powi(2) + (found.lng - lng).powi(2)).sqrt();
    let half_view = view_degrees(zoom) / 2.0;
    quality.points() + importance.log10()
        - (1.0 + distance / half_view).log2()
        - if forgiven { FORGIVEN_PENALTY } else { 0.0 }
}

/// What makes two results one place: the title's first part, normalised, and for numbered
/// districts ("Paris 13 Gobelins", "Paris 13e Arrondissement") the words up to the number.
pub fn place_key(title: &str) -> (String, Option<String>) {
    let first = normalize(title.split(',').next().unwrap_or(title));
    let words: Vec<&str> = first.split_whitespace().collect();
    let numbered = words
        .iter()
        .position(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .filter(|&i| i > 0)
        .map(|i| {
            let digits: String = words[i].chars().take_while(char::is_ascii_digit).collect();
            format!("{} {digits}", words[..i].join(" "))
        });
    (words.join(" "), numbered)
}

/// Whether two results are one place: near each other and named alike.
pub fn same_place(
    a: &(String, Option<String>),
    a_at: (f64, f64),
    b: &(String, Option<String>),
    b_at: (f64, f64),
) -> bool {
    let near = (a_at.0 - b_at.0).abs() <= SAME_PLACE_DEGREES
        && (a_at.1 - b_at.1).abs() <= SAME_PLACE_DEGREES;
    near && (a.0 == b.0 || (a.1.is_some() && a.1 == b.1))
}

/// The best [`MAX_RESULTS`] of `found`, one per place, best first. `forgiven`: the terms are
/// a correction of what was typed. Without a zoom, near places lead, but the best famous
/// place whose name is exactly the query still reaches the top 3 (docs/api.md §6).
pub fn order(
    found: Vec<Found>,
    terms: &[Term],
    typed_in_other_script: bool,
    forgiven: bool,
    lat: f64,
    lng: f64,
    zoom: Option<f64>,
) -> Vec<Place> {
    let mut scored: Vec<(f64, Quality, Found)> = found
        .into_iter()
        .filter_map(|f| {
            let quality = quality(terms, typed_in_other_script, &f.title, &f.aliases)?;
            let score = score(
                &f,
                quality,
                forgiven,
                lat,
                lng,
                zoom.unwrap_or(DEFAULT_ZOOM),
            );
            Some((score, quality, f))
        })
        .collect();
    scored.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.2.title.cmp(&b.2.title))
            .then_with(|| a.2.lat.total_cmp(&b.2.lat))
    });
    let mut kept: Vec<((String, Option<String>), Quality, Found)> = Vec::new();
    for (_, quality, f) in scored {
        let key = place_key(&f.title);
        if kept
            .iter()
            .any(|(k, _, o)| same_place(k, (o.lat, o.lng), &key, (f.lat, f.lng)))
        {
            continue;
        }
        kept.push((key, quality, f));
        if kept.len() == MAX_RESULTS && zoom.is_some() {
            break;
        }
    }
    if zoom.is_none() {
        let famous = kept.iter().position(|(_, q, f)| {
            matches!(q, Quality::Exact | Quality::AliasExact)
                && f.importance.is_some_and(|i| i >= IMPORTANT_FROM)
        });
        if let Some(at) = famous.filter(|&at| at > 2) {
            let place = kept.remove(at);
            kept.insert(2, place);
        }
    }
    kept.truncate(MAX_RESULTS);
    kept.into_iter()
        .map(|(_, _, f)| Place {
            title: f.title,
            loc: [f.lat, f.lng],
            tile_id: f.tile_id,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::query::parse;

    fn q(query: &str, title: &str, aliases: &str) -> Option<Quality> {
        quality(&parse(query), false, title, aliases)
    }

    #[test]
    fn an_alias_folded_from_another_script_counts_only_for_a_query_in_another_script() {
        let terms = parse("rome");
        let aliases = "lome|~rome";
        assert_eq!(quality(&terms, false, "Lomé, Togo", aliases), None);
        assert_eq!(
            quality(&parse("ロメ"), true, "Lomé, Togo", aliases),
            Some(Quality::AliasExact)
        );
        assert_eq!(
            quality(&parse("lome"), false, "Lomé, Togo", "~rome|lome"),
            Some(Quality::Exact)
        );
        assert_eq!(
            quality(&parse("lomee"), false, "Lomé, Togo", "~rome|lomee"),
            Some(Quality::AliasExact)
        );
    }

    #[test]
    fn whole_names_before_starts_before_later_words() {
        assert_eq!(q("paris", "Paris, France", ""), Some(Quality::Exact));
        assert_eq!(
            q("paris texas", "Paris, Texas, United States", ""),
            Some(Quality::Exact)
        );
        assert_eq!(q("pari", "Paris, France", ""), Some(Quality::Start));
        assert_eq!(
            q("paris", "Paris 13 Gobelins, France", ""),
            Some(Quality::StartWhole)
        );
        assert_eq!(
            q("paris 13", "Paris 13e Arrondissement, France", ""),
            Some(Quality::Start)
        );
        assert_eq!(q("paris", "Parisot, France", ""), Some(Quality::Start));
        assert_eq!(
            q("gobelins", "Paris 13 Gobelins, France", ""),
            Some(Quality::Word)
        );
        assert_eq!(q("lyon", "Paris, France", ""), None);
    }

    #[test]
    fn an_alias_matches_only_as_a_whole() {
        let warsaw = "barsobia|paris of the north|warszawa";
        assert_eq!(q("paris", "Warsaw, Poland", warsaw), None);
        assert_eq!(
            q("paris of the north", "Warsaw, Poland", warsaw),
            Some(Quality::AliasExact)
        );
        assert_eq!(
            q("warsz", "Warsaw, Poland", warsaw),
            Some(Quality::AliasStart)
        );
        assert_eq!(
            q("wien austria", "Vienna, Austria", "wien|vienne"),
            Some(Quality::AliasExact)
        );
        assert_eq!(
            q("wien", "Vienna, Austria", "wien|vienne"),
            Some(Quality::AliasExact)
        );
    }

    #[test]
    fn a_query_found_whole_in_an_alias_beats_a_country_that_starts_with_it() {
        let terms = parse("roma");
        let rome = Found {
            title: "Rome, Italy".into(),
            aliases: "roma|rom".into(),
            lat: 41.89,
            lng: 12.51,
            importance: Some(1.1e7),
            tile_id: String::new(),
        };
        let romania = Found {
            title: "Romania".into(),
            aliases: String::new(),
            lat: 45.85,
            lng: 24.97,
            importance: Some(1.9e8),
            tile_id: String::new(),
        };
        let at = |f: &Found| {
            let quality = quality(&terms, false, &f.title, &f.aliases).unwrap();
            score(f, quality, false, 48.0, 10.0, 4.0)
        };
        assert!(at(&rome) > at(&romania));
    }

    #[test]
    fn an_exact_alias_beats_a_start_of_the_name() {
        assert_eq!(
            q(
                "new york",
                "New York City, New York, United States",
                "nyc|new york"
            ),
            Some(Quality::AliasExact)
        );
    }

    #[test]
    fn numbered_districts_and_same_names_nearby_are_one_place() {
        let a = place_key("Paris 13 Gobelins, France");
        let b = place_key("Paris 13e Arrondissement, France");
        assert!(same_place(&a, (48.832, 2.356), &b, (48.826, 2.360)));
        assert!(!same_place(
            &a,
            (48.832, 2.356),
            &place_key("Paris, France"),
            (48.85, 2.35)
        ));
        let h = place_key("Helsinki, Finland");
        assert!(same_place(
            &h,
            (60.17, 24.94),
            &place_key("Helsinki"),
            (60.17, 24.95)
        ));
        assert!(!same_place(
            &h,
            (60.17, 24.94),
            &place_key("Helsinki"),
            (61.0, 24.95)
        ));
    }

    #[test]
    fn zoomed_in_near_leads_and_zoomed_out_importance_leads() {
        let place = |lat: f64, lng: f64, population: f64| Found {
            title: String::new(),
            aliases: String::new(),
            lat,
            lng,
            importance: Some(population),
            tile_id: String::new(),
        };
        let france = place(48.85, 2.35, 2.1e6);
        let texas = place(33.66, -95.56, 2.5e4);
        let s = |f: &Found, lat, lng, zoom| score(f, Quality::Exact, false, lat, lng, zoom);
        assert!(s(&texas, 33.66, -95.56, 10.0) > s(&france, 33.66, -95.56, 10.0));
        assert!(s(&france, 20.0, 0.0, 2.0) > s(&texas, 20.0, 0.0, 2.0));
        assert!(s(&france, 38.0, -97.0, 2.0) > s(&texas, 38.0, -97.0, 2.0));
    }
}
