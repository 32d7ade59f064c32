//! Builds the glyph ranges MapLibre draws map labels with: for each font stack, 256 files
//! `<out>/<stack name>/<start>-<end>.pbf` covering U+0000–U+FFFF, each a protobuf of SDF glyph
//! bitmaps rendered with FreeType by `pbf_font_tools`. Every range is written, empty ones too,
//! so the page never asks for a file that is missing. CJK is drawn by the browser's own fonts
//! (`localIdeographFontFamily`), so its ranges stay empty here and small.
//!
//! Usage: desert-atlas-glyphs OUT_DIR "STACK NAME=FONT.ttf[,FALLBACK.ttf…]"…

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pbf_font_tools::prost::Message;
use pbf_font_tools::{Fontstack, Glyphs, freetype, glyph_range_for_face};

/// Font size, SDF radius and cutoff that MapLibre's own glyph server (fontnik) uses.
const SIZE: usize = 24;
const RADIUS: usize = 8;
const CUTOFF: f64 = 0.25;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out, stacks)) = args.split_first() else {
        eprintln!("usage: desert-atlas-glyphs OUT_DIR \"STACK NAME=FONT.ttf[,FALLBACK.ttf]\"...");
        return ExitCode::from(2);
    };
    for stack in stacks {
        let Some((name, fonts)) = stack.split_once('=') else {
            eprintln!("desert-atlas-glyphs: {stack:?} is not NAME=FONT.ttf[,FONT.ttf]");
            return ExitCode::from(2);
        };
        let fonts: Vec<PathBuf> = fonts.split(',').map(PathBuf::from).collect();
        if let Err(e) = build_stack(Path::new(out), name, &fonts) {
            eprintln!("desert-atlas-glyphs: {name}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn build_stack(out: &Path, name: &str, fonts: &[PathBuf]) -> Result<(), Box<dyn std::error::Error>> {
    let library = freetype::Library::init()?;
    let faces = fonts
        .iter()
        .map(|font| library.new_face(font, 0).map_err(|e| format!("{}: {e}", font.display())))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = out.join(name);
    std::fs::create_dir_all(&dir)?;
    for start in (0u32..=0xFF00).step_by(256) {
        let end = start + 255;
        // The first font that has a character draws it; later fonts fill the gaps.
        let mut glyphs = Vec::new();
        for face in &faces {
            let stack = if is_cjk(start) {
                Fontstack::default()
            } else {
                glyph_range_for_face(face, start, end, SIZE, RADIUS, CUTOFF)?
            };
            for glyph in stack.glyphs {
                if !glyphs.iter().any(|g: &pbf_font_tools::Glyph| g.id == glyph.id) {
                    glyphs.push(glyph);
                }
            }
        }
        glyphs.sort_by_key(|g| g.id);
        let range = Glyphs {
            stacks: vec![Fontstack {
                name: name.to_string(),
                range: format!("{start}-{end}"),
                glyphs,
            }],
        };
        std::fs::write(dir.join(format!("{start}-{end}.pbf")), range.encode_to_vec())?;
    }
    Ok(())
}

/// Ranges MapLibre draws with the browser's fonts when `localIdeographFontFamily` is set:
/// CJK ideographs, kana, Hangul syllables (and their compatibility blocks).
fn is_cjk(start: u32) -> bool {
    matches!(start, 0x3000..=0x9FFF | 0xAC00..=0xD7FF | 0xF900..=0xFAFF | 0xFF00)
}
