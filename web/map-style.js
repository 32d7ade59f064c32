// The map's style: one vector source, the server's merged tiles of every downloaded region
// and the base map, drawn in the Protomaps basemap schema's layers. No text labels: labels
// need glyph files, and no registry package ships them (places are found with the search).

export function mapStyle(origin, maxzoom) {
  const source = "atlas";
  const fill = (id, layer, color, filter, opacity = 1) => ({
    id, type: "fill", source, "source-layer": layer,
    ...(filter ? { filter } : {}),
    paint: { "fill-color": color, "fill-opacity": opacity },
  });
  const line = (id, layer, color, width, filter, extra = {}) => ({
    id, type: "line", source, "source-layer": layer,
    ...(filter ? { filter } : {}),
    layout: { "line-join": "round", "line-cap": "round" },
    paint: { "line-color": color, "line-width": width, ...extra },
  });
  const kind = (...kinds) => ["in", ["get", "kind"], ["literal", kinds]];
  const roadWidth = (base) => ["interpolate", ["exponential", 1.6], ["zoom"], 6, base * 0.3, 18, base * 8];
  return {
    version: 8,
    sources: {
      [source]: {
        type: "vector",
        tiles: [`${origin}/tiles/{z}/{x}/{y}.mvt`],
        minzoom: 0,
        maxzoom,
      },
    },
    layers: [
      { id: "background", type: "background", paint: { "background-color": "#a9cce3" } },
      fill("earth", "earth", "#efeee8"),
      fill("landuse-green", "landuse", "#cfe5c0", kind("park", "forest", "wood", "grass", "nature_reserve", "garden", "cemetery", "golf_course")),
      fill("landuse-urban", "landuse", "#e6e2da", kind("residential", "commercial", "industrial", "hospital", "school", "university")),
      fill("natural", "natural", "#d3e6c4"),
      fill("water", "water", "#a9cce3"),
      fill("buildings", "buildings", "#d9d0c7", null, 0.8),
      line("roads-minor", "roads", "#ffffff", roadWidth(0.6), kind("minor_road", "other", "path")),
      line("roads-medium", "roads", "#fdfdfd", roadWidth(0.9), kind("medium_road")),
      line("roads-major", "roads", "#fbe3a4", roadWidth(1.2), kind("major_road")),
      line("roads-highway", "roads", "#f6b26b", roadWidth(1.6), kind("highway")),
      line("rail", "transit", "#999999", 1, kind("rail"), { "line-dasharray": [2, 2] }),
      line("boundaries-region", "boundaries", "#9a8fa6", 0.8, ["any", kind("region"), ["==", ["get", "admin_level"], 4]], { "line-dasharray": [3, 2] }),
      line("boundaries-country", "boundaries", "#7d6b8f", 1.2, ["any", kind("country"), ["==", ["get", "admin_level"], 2]]),
      {
        id: "places", type: "circle", source, "source-layer": "places",
        filter: ["all", kind("locality"), [">=", ["zoom"], ["coalesce", ["get", "min_zoom"], 0]]],
        paint: { "circle-radius": 3, "circle-color": "#555", "circle-stroke-color": "#fff", "circle-stroke-width": 1 },
      },
    ],
  };
}
