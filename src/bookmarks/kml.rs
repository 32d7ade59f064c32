//! The KMZ export OrganicMaps and Google Earth open: a zip holding `doc.kml` (KML 2.2).

use std::io::{Cursor, Write};

use quick_xml::escape::escape;

use super::Bookmark;
use crate::error::{AppError, Result};

/// The KML document: one Placemark per bookmark, coordinates `lng,lat`. Always well-formed
/// XML: names are escaped, and characters XML 1.0 cannot hold at all (control characters
/// other than tab, newline and carriage return, which old grains may have stored) are left out.
pub fn kml(bookmarks: &[Bookmark]) -> String {
    let mut doc = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <kml xmlns=\"http://www.opengis.net/kml/2.2\">\n<Document>\n<name>Desert Atlas bookmarks</name>\n",
    );
    for b in bookmarks {
        doc.push_str(&format!(
            "<Placemark>\n<name>{}</name>\n<Point><coordinates>{},{}</coordinates></Point>\n</Placemark>\n",
            escape(xml_text(&b.name).as_ref()),
            b.latlng.lng,
            b.latlng.lat
        ));
    }
    doc.push_str("</Document>\n</kml>\n");
    doc
}

/// `text` without the characters XML 1.0 does not allow in a document.
fn xml_text(text: &str) -> std::borrow::Cow<'_, str> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    };
    if text.chars().all(allowed) {
        text.into()
    } else {
        text.chars()
            .filter(|c| allowed(*c))
            .collect::<String>()
            .into()
    }
}

/// `doc.kml` zipped, as the `.kmz` format wants.
pub fn kmz(bookmarks: &[Bookmark]) -> Result<Vec<u8>> {
    let fail = |e: zip::result::ZipError| AppError::internal("writing the KMZ export", e);
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("doc.kml", options).map_err(fail)?;
    zip.write_all(kml(bookmarks).as_bytes())
        .map_err(|e| AppError::internal("writing the KMZ export", e))?;
    let cursor = zip.finish().map_err(fail)?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bookmarks::store::LatLng;

    #[test]
    fn names_are_escaped_once() {
        let b = Bookmark {
            id: "x".into(),
            version: 0,
            name: "Fish & <Chips> \"R\"".into(),
            latlng: LatLng { lat: 1.0, lng: 2.0 },
        };
        let doc = kml(&[b]);
        assert!(
            doc.contains("<name>Fish &amp; &lt;Chips&gt; &quot;R&quot;</name>"),
            "{doc}"
        );
        assert!(doc.contains("<coordinates>2,1</coordinates>"));
    }

    /// Reads `doc` with an XML parser to its end; returns the text of every `<name>`.
    fn parsed_names(doc: &str) -> Vec<String> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(doc);
        let (mut names, mut in_name) = (Vec::new(), false);
        loop {
            match reader.read_event() {
                Ok(Event::Start(e)) => {
                    in_name = e.name().into_inner() == "name";
                    if in_name {
                        names.push(String::new());
                    }
                }
                Ok(Event::End(_)) => in_name = false,
                Ok(Event::Text(t)) if in_name => {
                    names.last_mut().unwrap().push_str(&t.xml10_content())
                }
                Ok(Event::GeneralRef(r)) if in_name => {
                    let entity = format!("&{};", &*r);
                    let text = quick_xml::escape::unescape(&entity).unwrap();
                    names.last_mut().unwrap().push_str(&text);
                }
                Ok(Event::Eof) => return names,
                Ok(_) => {}
                Err(e) => panic!("not well-formed: {e}\n{doc}"),
            }
        }
    }

    #[test]
    fn the_export_is_well_formed_whatever_the_stored_names_hold() {
        let every_control: String = (0u8..0x20).map(char::from).collect();
        let names = [
            "<>&'\"".to_string(),
            format!("a{every_control}b"),
            "\u{FFFE}\u{FFFF}]]>".to_string(),
        ];
        let bookmarks: Vec<Bookmark> = names
            .iter()
            .map(|name| Bookmark {
                id: "x".into(),
                version: 0,
                name: name.clone(),
                latlng: LatLng { lat: 1.0, lng: 2.0 },
            })
            .collect();
        let doc = kml(&bookmarks);
        let parsed = parsed_names(&doc);
        assert_eq!(parsed[0], "Desert Atlas bookmarks");
        assert_eq!(parsed[1], "<>&'\"");
        assert_eq!(parsed[2], "a\t\n\rb");
        assert_eq!(parsed[3], "]]>");
    }
}
