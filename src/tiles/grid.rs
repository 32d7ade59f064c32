//! The Web Mercator tile grid: which piece of the world tile z/x/y is, and which tile holds
//! a point. The one place the program (and its benchmarks) does this arithmetic.

use std::f64::consts::PI;

/// Whether z/x/y names a tile: x and y inside zoom z's 2^z × 2^z grid.
pub fn on_grid(z: u8, x: u32, y: u32) -> bool {
    z < 32 && u64::from(x) < 1u64 << z && u64::from(y) < 1u64 << z
}

/// West, south, east, north of tile z/x/y, in degrees.
pub fn tile_bounds(z: u8, x: u32, y: u32) -> [f64; 4] {
    let n = tiles_per_side(z);
    let lng = |x: f64| x / n * 360.0 - 180.0;
    let lat = |y: f64| (PI * (1.0 - 2.0 * y / n)).sinh().atan().to_degrees();
    let (x, y) = (f64::from(x), f64::from(y));
    [lng(x), lat(y + 1.0), lng(x + 1.0), lat(y)]
}

/// The x and y of the zoom-z tile holding the point; points past the grid's edges (the
/// poles beyond ±85.05°, longitudes past ±180°) fall in its edge tiles.
pub fn tile_containing(lat: f64, lng: f64, z: u8) -> (u32, u32) {
    let n = tiles_per_side(z);
    let lat = lat.clamp(-85.051_128_78, 85.051_128_78).to_radians();
    let x = (lng + 180.0) / 360.0 * n;
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / PI) / 2.0 * n;
    let cell = |v: f64| v.floor().clamp(0.0, n - 1.0) as u32;
    (cell(x), cell(y))
}

fn tiles_per_side(z: u8) -> f64 {
    2f64.powi(i32::from(z))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_lies_inside_the_bounds_of_the_tile_holding_it() {
        for (lat, lng) in [(43.77, 11.25), (-33.9, 151.2), (0.0, 0.0), (64.1, -21.9)] {
            for z in [0u8, 3, 10, 14] {
                let (x, y) = tile_containing(lat, lng, z);
                let [west, south, east, north] = tile_bounds(z, x, y);
                assert!(west <= lng && lng < east, "{lat},{lng} z{z}");
                assert!(south <= lat && lat <= north, "{lat},{lng} z{z}");
            }
        }
    }

    #[test]
    fn the_florence_tile_and_the_grid_edges() {
        assert_eq!(tile_containing(43.77, 11.25, 10), (544, 373));
        assert_eq!(tile_containing(90.0, 180.0, 2), (3, 0));
        assert_eq!(tile_containing(-90.0, -180.0, 2), (0, 3));
        assert!(on_grid(0, 0, 0) && on_grid(2, 3, 3));
        assert!(!on_grid(1, 2, 0) && !on_grid(2, 0, 4) && !on_grid(40, 0, 0));
        let [w, s, e, n] = tile_bounds(0, 0, 0);
        assert_eq!((w, e), (-180.0, 180.0));
        assert!((n - 85.0511).abs() < 1e-3 && (s + 85.0511).abs() < 1e-3);
    }
}
