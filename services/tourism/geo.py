"""Geography of place search on the storage indexes: haversine distances, the bounding box
of a circle, and the geohash cells that cover a box.

A place stores the geohash cells that contain it at precisions 1-9 (`PLACE_CELL_PRECISIONS`)
as a multi-valued text key, and its latitude and longitude as number keys. A search covers
its area with at most `MAX_CELLS` cells of one precision (the finest that stays within the
bound) and asks for `In(cell, cover)`: both stores answer that from an index, with no
2dsphere index. The cover is a superset; distances (or the box's exact bounds) decide.

Near the 180th meridian a box is split into two longitude ranges; a circle that reaches a
pole covers every longitude of its latitude band. Distances are great-circle distances on a
sphere of the Earth's mean radius (IUGG), within about 0.5 % of the ellipsoid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.storage.keys import geohash

EARTH_RADIUS_M = 6_371_008.8
PLACE_CELL_PRECISIONS = range(1, 10)
# More cells: a tighter cover (fewer candidates to check) for more index seeks. 128 cells
# cover a circle's box with cells of about a quarter of its side.
MAX_CELLS = 128


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in metres between two points (degrees)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class Box:
    """A latitude/longitude box; `west > east` means it crosses the 180th meridian."""

    south: float
    west: float
    north: float
    east: float

    @property
    def crosses_antimeridian(self) -> bool:
        """Whether the box spans the 180th meridian."""
        return self.west > self.east

    def lon_ranges(self) -> list[tuple[float, float]]:
        """The box's longitudes as one or two ascending ranges."""
        if self.crosses_antimeridian:
            return [(self.west, 180.0), (-180.0, self.east)]
        return [(self.west, self.east)]

    def contains(self, lat: float, lon: float) -> bool:
        """Whether a point lies in the box (edges included)."""
        if not self.south <= lat <= self.north:
            return False
        return any(lo <= lon <= hi for lo, hi in self.lon_ranges())


def circle_box(lat: float, lon: float, radius_m: float) -> Box:
    """The smallest latitude/longitude box holding every point within `radius_m` of a point
    (J. P. Matuschek's bounding coordinates): every longitude when the circle holds a pole."""
    d = radius_m / EARTH_RADIUS_M
    south = lat - math.degrees(d)
    north = lat + math.degrees(d)
    if north >= 90.0 or south <= -90.0:
        return Box(max(south, -90.0), -180.0, min(north, 90.0), 180.0)
    dlon = math.degrees(math.asin(min(1.0, math.sin(d) / math.cos(math.radians(lat)))))
    if dlon >= 180.0:
        return Box(south, -180.0, north, 180.0)
    west, east = lon - dlon, lon + dlon
    if west < -180.0:
        west += 360.0
    if east > 180.0:
        east -= 360.0
    return Box(south, west, north, east)


def _grid(precision: int) -> tuple[int, int]:
    """Rows (latitude) and columns (longitude) of the geohash grid at a precision."""
    bits = 5 * precision
    return 2 ** (bits // 2), 2 ** ((bits + 1) // 2)


def _span(lo: float, hi: float, origin: float, size: float, count: int) -> range:
    first = min(count - 1, max(0, math.floor((lo - origin) / size)))
    last = min(count - 1, max(0, math.floor((hi - origin) / size)))
    return range(first, last + 1)


def _cells_at(box: Box, precision: int) -> tuple[range, list[range]]:
    rows, cols = _grid(precision)
    lat_rows = _span(box.south, box.north, -90.0, 180.0 / rows, rows)
    lon_cols = [_span(lo, hi, -180.0, 360.0 / cols, cols) for lo, hi in box.lon_ranges()]
    return lat_rows, lon_cols


def cover(box: Box, max_cells: int = MAX_CELLS) -> list[str]:
    """Geohash cells of one precision whose union holds the box: the finest stored precision
    that needs at most `max_cells` cells (precision 1 never needs more than 32)."""
    for precision in reversed(PLACE_CELL_PRECISIONS):
        lat_rows, lon_cols = _cells_at(box, precision)
        if len(lat_rows) * sum(len(c) for c in lon_cols) <= max_cells or precision == 1:
            break
    # Interleaved bits of each row and column, spread once (a cover is searched per step).
    odd = (5 * precision) % 2
    rows = [_spread(i) << (1 if odd else 0) for i in lat_rows]
    cols = [_spread(j) << (0 if odd else 1) for columns in lon_cols for j in columns]
    shifts = [5 * k for k in range(precision - 1, -1, -1)]
    cells = ["".join(_BASE32[(r | c) >> k & 31] for k in shifts) for r in rows for c in cols]
    return list(dict.fromkeys(cells))


_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def _spread(x: int) -> int:
    """The bits of x (up to 32) moved to the even positions (bit k to bit 2k)."""
    x &= 0xFFFFFFFF
    x = (x | x << 16) & 0x0000FFFF0000FFFF
    x = (x | x << 8) & 0x00FF00FF00FF00FF
    x = (x | x << 4) & 0x0F0F0F0F0F0F0F0F
    x = (x | x << 2) & 0x3333333333333333
    return (x | x << 1) & 0x5555555555555555


def cell_hash(row: int, col: int, precision: int) -> str:
    """The geohash of the grid cell (row from the south, column from the west) at a
    precision: its bits are the column's and the row's interleaved, longitude first (the
    same as `keys.geohash` of any point of the cell, without bisecting per point)."""
    if (5 * precision) % 2:  # odd: the last bit is a longitude bit
        value = _spread(col) | _spread(row) << 1
    else:
        value = _spread(col) << 1 | _spread(row)
    return "".join(_BASE32[(value >> 5 * k) & 31] for k in range(precision - 1, -1, -1))


def place_cells(lat: float, lon: float) -> list[str]:
    """The cells a place is indexed under (one per stored precision)."""
    full = geohash(lat, lon, max(PLACE_CELL_PRECISIONS))
    return [full[:p] for p in PLACE_CELL_PRECISIONS]
