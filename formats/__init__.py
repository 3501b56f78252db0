"""File formats the service writes: GeoJSON, GeoPackage, Shapefile, CSV and XLSX.

Each writer takes *batches* of features or rows, so no format holds a whole
layer in memory, except where the format itself needs a file on disk
(GeoPackage, Shapefile, XLSX: written to a path batch by batch). Coordinates
are WGS-84 (EPSG:4326) longitude/latitude in degrees, except the opt-in,
non-standard GCJ-02 GeoJSON for AMap-based front ends.

* :mod:`formats.geojson`: the streamed FeatureCollection and its GCJ-02 variant.
* :mod:`formats.tabular`: CSV (UTF-8 with BOM) and XLSX, formulas defused.
* :mod:`formats.vector`: GeoPackage and zipped Shapefile (GDAL through pyogrio).

This package imports only :mod:`geo` and third-party libraries.
"""
