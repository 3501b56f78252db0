"""File formats the service writes: GeoJSON, GeoPackage, Shapefile, CSV and XLSX."""
