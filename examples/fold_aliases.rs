//! Folds the base map's aliases into the form the server searches, with the server's own
//! normalisation (`desert_atlas::search::normalize`): "Al Mukallā" and "Al Mukalla" are one
//! alias, "Москва" is "moskva". An alias that folds to the place's name or to an alias
//! already kept is dropped, so the package carries each searchable spelling once. The server
//! normalises the aliases again at import, which leaves folded ones as they are. A spelling
//! that comes only from another script is marked (`~rome`, Lomé's ロメ): it answers only
//! queries typed in another script (docs/search.md). Used by `scripts/build-base-map` on the
//! CSV that tools/basemap/build.mjs writes; the output is the base map's places file
//! (`desert_atlas::basemap::places`: by columns, which xz packs best).
//!
//! Usage: fold_aliases IN.csv OUT.columns

use std::path::PathBuf;

use desert_atlas::basemap::places::{self, Place};
use desert_atlas::search::normalize::{fold_aliases, words};

/// A coordinate in thousandths of a degree, refusing one the places file would round.
fn thousandths(text: &str) -> Result<i64, String> {
    let degrees: f64 = text
        .parse()
        .map_err(|_| format!("coordinate {text:?} is not a number"))?;
    let milli = (degrees * 1000.0).round();
    if (milli / 1000.0 - degrees).abs() > 1e-9 {
        return Err(format!("coordinate {text} has more than three decimals"));
    }
    Ok(milli as i64)
}

fn main() -> Result<(), String> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: fold_aliases IN.csv OUT.columns".into());
    };
    let mut reader =
        csv::Reader::from_path(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    if headers.iter().collect::<Vec<_>>() != ["name", "lat", "lng", "importance", "aliases"] {
        return Err(format!(
            "{}: unexpected header {headers:?}",
            input.display()
        ));
    }
    let mut places = Vec::new();
    let (mut rows, mut given, mut kept, mut with_aliases) = (0u64, 0u64, 0u64, 0u64);
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        let (name, aliases) = (&record[0], &record[4]);
        let own = words(name.split(',').next().unwrap_or(name));
        given += aliases.split('|').filter(|a| !a.is_empty()).count() as u64;
        let aliases = fold_aliases(&own, aliases);
        let count = aliases.split('|').filter(|a| !a.is_empty()).count() as u64;
        rows += 1;
        kept += count;
        with_aliases += u64::from(count > 0);
        places.push(Place {
            name: record[0].to_string(),
            lat_milli: thousandths(&record[1])?,
            lng_milli: thousandths(&record[2])?,
            importance: record[3].to_string(),
            aliases,
        });
    }
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(output).map_err(|e| format!("{}: {e}", output.display()))?,
    );
    places::write(&places, &mut out).map_err(|e| e.to_string())?;
    std::io::Write::flush(&mut out).map_err(|e| e.to_string())?;
    eprintln!(
        "base map places: {rows} rows, {kept} aliases on {with_aliases} places kept of {given} given (folded, without repeats)"
    );
    Ok(())
}
