//! The base map's places file: the search rows the package ships, stored column by column.
//!
//! The places are most of the package's weight, and xz packs them a fifth smaller by columns
//! than by CSV rows: names beside names, and coordinates as differences from the row before,
//! which are short numbers for places listed country by country. No format a crate offers
//! keeps such columns streamable as text for xz (Parquet and Arrow compress their own way and
//! would add megabytes to the binary), so this module writes and reads it, in a few lines.
//! [`PlacesReader`] turns the file back into the CSV that `SearchIndex::import_region` reads,
//! one row at a time, so installing holds one row in memory.
//!
//! Layout: one header line `desert-atlas-places 1 ROWS N LAT LNG IMPORTANCE ALIASES` (the byte
//! length of each section), then the five sections, each with one line per place: the name,
//! the latitude and the longitude in thousandths of a degree as the difference from the row
//! before (the first from 0), the importance, the aliases (`|`-separated).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{AppError, Result};

/// The file's name in the base map's directory.
pub const FILE_NAME: &str = "places.columns";
const MAGIC: &str = "desert-atlas-places 1";
const COLUMNS: usize = 5;
/// The CSV header the reader produces: the base map's columns of `import_region`.
pub const CSV_HEADER: &str = "name,lat,lng,importance,aliases\n";

/// One place as the file stores it; coordinates in thousandths of a degree.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub name: String,
    pub lat_milli: i64,
    pub lng_milli: i64,
    pub importance: String,
    pub aliases: String,
}

/// Writes `places` to `out` in the column layout.
pub fn write(places: &[Place], out: &mut dyn Write) -> Result<()> {
    let mut sections: [Vec<u8>; COLUMNS] = Default::default();
    let (mut lat, mut lng) = (0i64, 0i64);
    for place in places {
        for (field, text) in [
            ("name", &place.name),
            ("importance", &place.importance),
            ("aliases", &place.aliases),
        ] {
            if text.contains('\n') {
                return Err(AppError::BadRequest(format!(
                    "the {field} of place {:?} holds a line break, which the places file cannot store",
                    place.name
                )));
            }
        }
        writeln!(sections[0], "{}", place.name)?;
        writeln!(sections[1], "{}", place.lat_milli - lat)?;
        writeln!(sections[2], "{}", place.lng_milli - lng)?;
        writeln!(sections[3], "{}", place.importance)?;
        writeln!(sections[4], "{}", place.aliases)?;
        (lat, lng) = (place.lat_milli, place.lng_milli);
    }
    write!(out, "{MAGIC} {}", places.len())?;
    for section in &sections {
        write!(out, " {}", section.len())?;
    }
    writeln!(out)?;
    for section in &sections {
        out.write_all(section)?;
    }
    Ok(())
}

/// Degrees from thousandths, written as the CSV had them ("-61.79", "42.538", "7").
fn degrees(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let (whole, frac) = (milli.unsigned_abs() / 1000, milli.unsigned_abs() % 1000);
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let frac = format!("{frac:03}");
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

/// Reads a places file as CSV (header [`CSV_HEADER`]), a row at a time.
pub struct PlacesReader {
    columns: Vec<std::io::Take<BufReader<File>>>,
    rows_left: u64,
    lat: i64,
    lng: i64,
    pending: Vec<u8>,
    offset: usize,
    line: String,
}

impl PlacesReader {
    /// Opens `path`, checking its header and that its sections fill the file exactly.
    pub fn open(path: &Path) -> Result<Self> {
        let corrupt = |why: &str| {
            AppError::Internal(
                format!(
                    "the places file {} is damaged ({why}): rebuild it with scripts/build-base-map",
                    path.display()
                )
                .into(),
            )
        };
        let mut file = BufReader::new(File::open(path)?);
        let mut header = String::new();
        file.by_ref().take(256).read_line(&mut header)?;
        let fields = header
            .strip_prefix(MAGIC)
            .filter(|_| header.ends_with('\n'))
            .ok_or_else(|| corrupt("not a places file"))?;
        let numbers: Vec<u64> = fields
            .split_whitespace()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| corrupt("its header is not numbers"))?;
        let [rows, lengths @ ..] = numbers.as_slice() else {
            return Err(corrupt("its header is empty"));
        };
        if lengths.len() != COLUMNS {
            return Err(corrupt("its header does not count five columns"));
        }
        let mut start = header.len() as u64;
        let size = file.get_ref().metadata()?.len();
        let mut columns = Vec::with_capacity(COLUMNS);
        for &length in lengths {
            let mut section = File::open(path)?;
            section.seek(SeekFrom::Start(start))?;
            columns.push(BufReader::new(section).take(length));
            start = start.saturating_add(length);
        }
        if start != size {
            return Err(corrupt("its sections do not fill it"));
        }
        Ok(Self {
            columns,
            rows_left: *rows,
            lat: 0,
            lng: 0,
            pending: CSV_HEADER.as_bytes().to_vec(),
            offset: 0,
            line: String::new(),
        })
    }

    /// Line `column` of the next row, without its line break.
    fn field(&mut self, column: usize) -> std::io::Result<String> {
        self.line.clear();
        self.columns[column].read_line(&mut self.line)?;
        match self.line.strip_suffix('\n') {
            Some(text) => Ok(text.to_string()),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the places file ends before its last place",
            )),
        }
    }

    /// A coordinate column's next value, added to the row before's.
    fn coordinate(&mut self, column: usize) -> std::io::Result<i64> {
        self.field(column)?.parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the places file holds a coordinate that is not a number",
            )
        })
    }

    /// The next row as a CSV record in `pending`; false after the last.
    fn next_row(&mut self) -> std::io::Result<bool> {
        self.pending.clear();
        self.offset = 0;
        if self.rows_left == 0 {
            let trailing = self.columns.iter_mut().any(|c| c.limit() > 0);
            if trailing {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the places file holds more lines than its header counts",
                ));
            }
            return Ok(false);
        }
        self.rows_left -= 1;
        let name = self.field(0)?;
        self.lat += self.coordinate(1)?;
        self.lng += self.coordinate(2)?;
        let (importance, aliases) = (self.field(3)?, self.field(4)?);
        let mut row = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(std::mem::take(&mut self.pending));
        row.write_record([
            name.as_str(),
            &degrees(self.lat),
            &degrees(self.lng),
            &importance,
            &aliases,
        ])
        .map_err(std::io::Error::other)?;
        self.pending = row.into_inner().map_err(|e| e.into_error())?;
        Ok(true)
    }
}

impl Read for PlacesReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.offset == self.pending.len() && !self.next_row()? {
            return Ok(0);
        }
        let n = buf.len().min(self.pending.len() - self.offset);
        buf[..n].copy_from_slice(&self.pending[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(name: &str, lat: i64, lng: i64, importance: &str, aliases: &str) -> Place {
        Place {
            name: name.into(),
            lat_milli: lat,
            lng_milli: lng,
            importance: importance.into(),
            aliases: aliases.into(),
        }
    }

    fn written(places: &[Place]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write(places, &mut file).unwrap();
        file
    }

    fn as_csv(path: &Path) -> std::io::Result<String> {
        let mut text = String::new();
        PlacesReader::open(path)
            .map_err(std::io::Error::other)?
            .read_to_string(&mut text)?;
        Ok(text)
    }

    #[test]
    fn reads_back_as_the_csv_it_was_made_from() {
        let places = [
            place("Andorra", 42_538, 1_521, "10000000", ""),
            place("Alabama, United States", 32_605, -86_767, "2000000", ""),
            place("Say \"hi\"", -61_790, -7_000, "", "moskva|mosca"),
            place("Null Island", 0, 0, "0", ""),
            place("Tiny", -1, 1, "500", ""),
        ];
        let file = written(&places);
        assert_eq!(
            as_csv(file.path()).unwrap(),
            "name,lat,lng,importance,aliases\n\
             Andorra,42.538,1.521,10000000,\n\
             \"Alabama, United States\",32.605,-86.767,2000000,\n\
             \"Say \"\"hi\"\"\",-61.79,-7,,moskva|mosca\n\
             Null Island,0,0,0,\n\
             Tiny,-0.001,0.001,500,\n"
        );
    }

    #[test]
    fn an_empty_file_of_places_is_only_the_header() {
        let file = written(&[]);
        assert_eq!(as_csv(file.path()).unwrap(), CSV_HEADER);
    }

    #[test]
    fn a_name_with_a_line_break_is_refused_when_writing() {
        let err = write(&[place("a\nb", 0, 0, "", "")], &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("line break"), "{err}");
    }

    #[test]
    fn damaged_files_are_errors_not_wrong_places() {
        let good =
            std::fs::read(written(&[place("A", 1, 2, "3", ""), place("B", 4, 5, "6", "")]).path())
                .unwrap();
        let text = String::from_utf8(good.clone()).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("not a places file", b"name,lat,lng\n".to_vec()),
            ("truncated", good[..good.len() - 3].to_vec()),
            (
                "longer than its sections",
                [good.clone(), b"x\n".to_vec()].concat(),
            ),
            (
                "more rows than lines",
                text.replacen("places 1 2", "places 1 3", 1).into_bytes(),
            ),
            (
                "fewer rows than lines",
                text.replacen("places 1 2", "places 1 1", 1).into_bytes(),
            ),
            (
                "a coordinate not a number",
                text.replacen("\n1\n3\n", "\nx\n3\n", 1).into_bytes(),
            ),
        ];
        for (case, bytes) in cases {
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), &bytes).unwrap();
            assert!(
                as_csv(file.path()).is_err(),
                "{case}: read without an error"
            );
        }
    }
}
