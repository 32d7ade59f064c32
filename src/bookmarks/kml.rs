//! The KMZ export OrganicMaps and Google Earth open: a zip holding `doc.kml` (KML 2.2).

use std::io::{Cursor, Write};

use quick_xml::escape::escape;

use super::Bookmark;
use crate::error::{AppError, Result};

/// The KML document: one Placemark per bookmark, coordinates `lng,lat`.
pub fn kml(bookmarks: &[Bookmark]) -> String {
    let mut doc = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <kml xmlns=\"http://www.opengis.net/kml/2.2\">\n<Document>\n<name>Desert Atlas bookmarks</name>\n",
    );
    for b in bookmarks {
        doc.push_str(&format!(
            "<Placemark>\n<name>{}</name>\n<Point><coordinates>{},{}</coordinates></Point>\n</Placemark>\n",
            escape(b.name.as_str()),
            b.latlng.lng,
            b.latlng.lat
        ));
    }
    doc.push_str("</Document>\n</kml>\n");
    doc
}

/// `doc.kml` zipped, as the `.kmz` format wants.
pub fn kmz(bookmarks: &[Bookmark]) -> Result<Vec<u8>> {
    let fail = |e: &dyn std::fmt::Display| AppError::internal("writing the KMZ export", e);
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("doc.kml", options).map_err(|e| fail(&e))?;
    zip.write_all(kml(bookmarks).as_bytes())
        .map_err(|e| fail(&e))?;
    let cursor = zip.finish().map_err(|e| fail(&e))?;
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
}
