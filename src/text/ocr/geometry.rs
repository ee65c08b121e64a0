//! The plane geometry DB post-processing needs, as OpenCV, shapely and pyclipper do it
//! for rapidocr: convex hull, minimum-area rectangle, a polygon grown by a distance,
//! polygon fill and the perspective transform of a quadrilateral onto a rectangle.
//! Hand-written because the detector's boxes are defined by these exact steps and no
//! kept crate does all of them on plain f64 points.

/// A point in pixel coordinates, x to the right and y down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub const fn new(x: f64, y: f64) -> Point {
        Point { x, y }
    }

    fn sub(self, o: Point) -> Point {
        Point::new(self.x - o.x, self.y - o.y)
    }

    pub fn distance(self, o: Point) -> f64 {
        let d = self.sub(o);
        d.x.hypot(d.y)
    }
}

fn cross(o: Point, a: Point, b: Point) -> f64 {
    (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x)
}

/// Convex hull (Andrew's monotone chain), counter-clockwise in y-up terms, without
/// collinear points. Fewer than three distinct points come back as they are.
pub fn convex_hull(points: &[Point]) -> Vec<Point> {
    let mut pts: Vec<Point> = points.to_vec();
    pts.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let mut hull: Vec<Point> = Vec::with_capacity(pts.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &Point>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

/// A rotated rectangle: its four corners in order around it, and its side lengths.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RotatedRect {
    pub corners: [Point; 4],
    pub width: f64,
    pub height: f64,
}

impl RotatedRect {
    pub fn short_side(&self) -> f64 {
        self.width.min(self.height)
    }
}

/// The smallest-area rectangle around `points` (rotating calipers over the hull), as
/// `cv2.minAreaRect` + `cv2.boxPoints` give it. A single point or a segment gives a
/// degenerate rectangle of zero width.
pub fn min_area_rect(points: &[Point]) -> Option<RotatedRect> {
    let hull = convex_hull(points);
    match hull.len() {
        0 => return None,
        1 => {
            let p = hull[0];
            return Some(RotatedRect {
                corners: [p; 4],
                width: 0.0,
                height: 0.0,
            });
        }
        2 => {
            let (a, b) = (hull[0], hull[1]);
            return Some(RotatedRect {
                corners: [a, b, b, a],
                width: a.distance(b),
                height: 0.0,
            });
        }
        _ => {}
    }
    let mut best: Option<(f64, RotatedRect)> = None;
    for i in 0..hull.len() {
        let a = hull[i];
        let b = hull[(i + 1) % hull.len()];
        let len = a.distance(b);
        if len == 0.0 {
            continue;
        }
        let u = Point::new((b.x - a.x) / len, (b.y - a.y) / len);
        let v = Point::new(-u.y, u.x);
        let (mut min_u, mut max_u, mut min_v, mut max_v) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in &hull {
            let d = p.sub(a);
            let pu = d.x * u.x + d.y * u.y;
            let pv = d.x * v.x + d.y * v.y;
            min_u = min_u.min(pu);
            max_u = max_u.max(pu);
            min_v = min_v.min(pv);
            max_v = max_v.max(pv);
        }
        let area = (max_u - min_u) * (max_v - min_v);
        if best.as_ref().is_none_or(|(b, _)| area < *b) {
            let at =
                |su: f64, sv: f64| Point::new(a.x + u.x * su + v.x * sv, a.y + u.y * su + v.y * sv);
            best = Some((
                area,
                RotatedRect {
                    corners: [
                        at(min_u, min_v),
                        at(max_u, min_v),
                        at(max_u, max_v),
                        at(min_u, max_v),
                    ],
                    width: max_u - min_u,
                    height: max_v - min_v,
                },
            ));
        }
    }
    best.map(|(_, r)| r)
}

/// Twice the signed area of a polygon (the shoelace sum): positive when its corners
/// run clockwise on screen (y down).
fn shoelace(poly: &[Point]) -> f64 {
    let n = poly.len();
    (0..n)
        .map(|i| {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            a.x * b.y - b.x * a.y
        })
        .sum()
}

/// Absolute area of a simple polygon, as shapely's `Polygon.area`.
pub fn polygon_area(poly: &[Point]) -> f64 {
    shoelace(poly).abs() / 2.0
}

/// Perimeter of a closed polygon, as shapely's `Polygon.length`.
pub fn polygon_perimeter(poly: &[Point]) -> f64 {
    let n = poly.len();
    (0..n).map(|i| poly[i].distance(poly[(i + 1) % n])).sum()
}

/// A convex polygon grown outward by `distance` with round corners, as pyclipper's
/// `PyclipperOffset` (JT_ROUND, ET_CLOSEDPOLYGON) gives it: vertices truncated to
/// integers on the way in, the result rounded to integers, arcs stepped as Clipper's
/// default arc tolerance (0.25) steps them.
pub fn grow_convex_polygon(poly: &[Point], distance: f64) -> Vec<Point> {
    let mut ints: Vec<Point> = poly
        .iter()
        .map(|p| Point::new(p.x.trunc(), p.y.trunc()))
        .collect();
    ints.dedup();
    if ints.len() > 1 && ints.first() == ints.last() {
        ints.pop();
    }
    if ints.len() < 3 || distance <= 0.0 {
        return ints;
    }
    // Outward normals need the winding: positive shoelace sum is clockwise on screen.
    let signed = shoelace(&ints);
    let outward = |a: Point, b: Point| -> Point {
        let len = a.distance(b).max(f64::MIN_POSITIVE);
        let (dx, dy) = ((b.x - a.x) / len, (b.y - a.y) / len);
        if signed > 0.0 {
            Point::new(dy, -dx)
        } else {
            Point::new(-dy, dx)
        }
    };
    let steps_per_turn =
        (std::f64::consts::PI / (1.0 - 0.25 / distance).clamp(-1.0, 1.0).acos()).max(1.0);
    let n = ints.len();
    let mut out = Vec::new();
    for i in 0..n {
        let prev = ints[(i + n - 1) % n];
        let here = ints[i];
        let next = ints[(i + 1) % n];
        let n_in = outward(prev, here);
        let n_out = outward(here, next);
        let a0 = n_in.y.atan2(n_in.x);
        let mut a1 = n_out.y.atan2(n_out.x);
        // Sweep the short way round from the incoming to the outgoing normal.
        while a1 - a0 > std::f64::consts::PI {
            a1 -= 2.0 * std::f64::consts::PI;
        }
        while a0 - a1 > std::f64::consts::PI {
            a1 += 2.0 * std::f64::consts::PI;
        }
        let steps = ((a1 - a0).abs() / (2.0 * std::f64::consts::PI) * steps_per_turn * 2.0)
            .ceil()
            .max(1.0) as usize;
        for s in 0..=steps {
            let t = a0 + (a1 - a0) * s as f64 / steps as f64;
            out.push(Point::new(
                (here.x + distance * t.cos()).round(),
                (here.y + distance * t.sin()).round(),
            ));
        }
    }
    out
}

/// Pixels of a convex polygon with integer vertices inside a `width` x `height` grid,
/// row by row as inclusive column ranges, boundary pixels included (as `cv2.fillPoly`).
pub fn fill_convex_polygon(
    poly: &[Point],
    width: usize,
    height: usize,
) -> Vec<(usize, usize, usize)> {
    let mut rows = Vec::new();
    if poly.is_empty() || width == 0 || height == 0 {
        return rows;
    }
    let min_y = poly.iter().map(|p| p.y).fold(f64::MAX, f64::min).max(0.0) as usize;
    let max_y = poly
        .iter()
        .map(|p| p.y)
        .fold(f64::MIN, f64::max)
        .min((height - 1) as f64);
    if max_y < 0.0 {
        return rows;
    }
    let n = poly.len();
    for y in min_y..=max_y as usize {
        let yf = y as f64;
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for i in 0..n {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            if (a.y <= yf && yf <= b.y) || (b.y <= yf && yf <= a.y) {
                if a.y == b.y {
                    lo = lo.min(a.x.min(b.x));
                    hi = hi.max(a.x.max(b.x));
                } else {
                    let x = a.x + (yf - a.y) * (b.x - a.x) / (b.y - a.y);
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
            }
        }
        if lo > hi {
            continue;
        }
        let start = lo.round().max(0.0);
        let end = hi.round().min((width - 1) as f64);
        if start <= end {
            rows.push((y, start as usize, end as usize));
        }
    }
    rows
}

/// The 3x3 homography taking `src[i]` to `dst[i]` (`cv2.getPerspectiveTransform`),
/// row-major; `None` when the points are degenerate.
pub fn perspective_transform(src: &[Point; 4], dst: &[Point; 4]) -> Option<[f64; 9]> {
    let mut a = [[0.0f64; 9]; 8];
    for i in 0..4 {
        let (s, d) = (src[i], dst[i]);
        a[i] = [s.x, s.y, 1.0, 0.0, 0.0, 0.0, -s.x * d.x, -s.y * d.x, d.x];
        a[i + 4] = [0.0, 0.0, 0.0, s.x, s.y, 1.0, -s.x * d.y, -s.y * d.y, d.y];
    }
    // Gaussian elimination with partial pivoting on the augmented 8x9 system.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (v, p) in row.iter_mut().zip(pivot_row).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    let h: Vec<f64> = (0..8).map(|i| a[i][8] / a[i][i]).collect();
    Some([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0])
}

/// The inverse of a 3x3 matrix, row-major.
pub fn invert3(m: &[f64; 9]) -> Option<[f64; 9]> {
    let det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
        + m[2] * (m[3] * m[7] - m[4] * m[6]);
    if det.abs() < 1e-15 {
        return None;
    }
    let inv = [
        m[4] * m[8] - m[5] * m[7],
        m[2] * m[7] - m[1] * m[8],
        m[1] * m[5] - m[2] * m[4],
        m[5] * m[6] - m[3] * m[8],
        m[0] * m[8] - m[2] * m[6],
        m[2] * m[3] - m[0] * m[5],
        m[3] * m[7] - m[4] * m[6],
        m[1] * m[6] - m[0] * m[7],
        m[0] * m[4] - m[1] * m[3],
    ];
    Some(inv.map(|v| v / det))
}

/// Area shared by two convex polygons (Sutherland-Hodgman clipping of one by the other).
pub fn convex_intersection_area(a: &[Point], b: &[Point]) -> f64 {
    if a.len() < 3 || b.len() < 3 {
        return 0.0;
    }
    // Clip against b's edges with b taken counter-clockwise in y-up terms.
    let mut clip: Vec<Point> = b.to_vec();
    if shoelace(&clip) < 0.0 {
        clip.reverse();
    }
    let mut subject: Vec<Point> = a.to_vec();
    for i in 0..clip.len() {
        if subject.is_empty() {
            break;
        }
        let (e0, e1) = (clip[i], clip[(i + 1) % clip.len()]);
        let inside = |p: Point| cross(e0, e1, p) >= 0.0;
        let intersect = |p: Point, q: Point| {
            let (d1, d2) = (cross(e0, e1, p), cross(e0, e1, q));
            let t = d1 / (d1 - d2);
            Point::new(p.x + (q.x - p.x) * t, p.y + (q.y - p.y) * t)
        };
        let input = std::mem::take(&mut subject);
        for j in 0..input.len() {
            let (p, q) = (input[j], input[(j + 1) % input.len()]);
            match (inside(p), inside(q)) {
                (true, true) => subject.push(q),
                (true, false) => subject.push(intersect(p, q)),
                (false, true) => {
                    subject.push(intersect(p, q));
                    subject.push(q);
                }
                (false, false) => {}
            }
        }
    }
    polygon_area(&subject)
}

/// Intersection over union of two convex polygons.
pub fn convex_iou(a: &[Point], b: &[Point]) -> f64 {
    let inter = convex_intersection_area(a, b);
    let union = polygon_area(a) + polygon_area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect_points(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<Point> {
        let mut v = Vec::new();
        for y in y0 as i32..=y1 as i32 {
            for x in x0 as i32..=x1 as i32 {
                v.push(Point::new(x as f64, y as f64));
            }
        }
        v
    }

    #[test]
    fn the_min_area_rect_of_an_upright_block_is_its_pixel_centres_box() {
        let r = min_area_rect(&rect_points(10.0, 20.0, 49.0, 29.0)).unwrap();
        assert!((r.width * r.height - 39.0 * 9.0).abs() < 1e-9, "{r:?}");
        assert!((r.short_side() - 9.0).abs() < 1e-9);
        let xs: Vec<f64> = r.corners.iter().map(|p| p.x).collect();
        assert!(
            xs.iter().any(|&x| (x - 10.0).abs() < 1e-9)
                && xs.iter().any(|&x| (x - 49.0).abs() < 1e-9)
        );
    }

    #[test]
    fn the_min_area_rect_of_a_turned_rectangle_follows_the_turn() {
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let pts: Vec<Point> = [(0.0, 0.0), (40.0, 0.0), (40.0, 10.0), (0.0, 10.0)]
            .iter()
            .map(|&(x, y)| Point::new(100.0 + x * c - y * s, 100.0 + x * s + y * c))
            .collect();
        let r = min_area_rect(&pts).unwrap();
        assert!(
            (r.width.max(r.height) - 40.0).abs() < 1e-9 && (r.short_side() - 10.0).abs() < 1e-9,
            "{r:?}"
        );
    }

    #[test]
    fn a_grown_rectangle_gains_the_distance_on_every_side() {
        let square = [
            Point::new(10.0, 10.0),
            Point::new(50.0, 10.0),
            Point::new(50.0, 20.0),
            Point::new(10.0, 20.0),
        ];
        for d in [1.5, 4.0, 9.7] {
            let grown = grow_convex_polygon(&square, d);
            let r = min_area_rect(&grown).unwrap();
            let (w, h) = (r.width.max(r.height), r.short_side());
            assert!(
                (w - (40.0 + 2.0 * d)).abs() <= 1.0 && (h - (10.0 + 2.0 * d)).abs() <= 1.0,
                "{d}: {r:?}"
            );
            // Either winding grows outward.
            let mut reversed = square;
            reversed.reverse();
            assert_eq!(
                min_area_rect(&grow_convex_polygon(&reversed, d))
                    .unwrap()
                    .short_side(),
                h
            );
        }
        assert!((polygon_area(&square) - 400.0).abs() < 1e-9);
        assert!((polygon_perimeter(&square) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn overlapping_rectangles_share_their_common_area() {
        let r = |x0: f64, y0: f64, x1: f64, y1: f64| {
            vec![
                Point::new(x0, y0),
                Point::new(x1, y0),
                Point::new(x1, y1),
                Point::new(x0, y1),
            ]
        };
        assert!(
            (convex_intersection_area(&r(0.0, 0.0, 10.0, 10.0), &r(5.0, 5.0, 20.0, 20.0)) - 25.0)
                .abs()
                < 1e-9
        );
        let mut reversed = r(5.0, 5.0, 20.0, 20.0);
        reversed.reverse();
        assert!((convex_iou(&r(0.0, 0.0, 10.0, 10.0), &reversed) - 25.0 / 300.0).abs() < 1e-9);
        assert_eq!(
            convex_iou(&r(0.0, 0.0, 1.0, 1.0), &r(2.0, 2.0, 3.0, 3.0)),
            0.0
        );
        assert!((convex_iou(&r(1.0, 1.0, 4.0, 4.0), &r(1.0, 1.0, 4.0, 4.0)) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_filled_rectangle_covers_its_border_pixels() {
        let quad = [
            Point::new(2.0, 1.0),
            Point::new(5.0, 1.0),
            Point::new(5.0, 3.0),
            Point::new(2.0, 3.0),
        ];
        assert_eq!(
            fill_convex_polygon(&quad, 10, 10),
            vec![(1, 2, 5), (2, 2, 5), (3, 2, 5)]
        );
        // Clipped to the grid.
        assert_eq!(fill_convex_polygon(&quad, 4, 2), vec![(1, 2, 3)]);
    }

    #[test]
    fn the_perspective_transform_maps_each_corner_and_inverts() {
        let src = [
            Point::new(12.0, 7.0),
            Point::new(90.0, 15.0),
            Point::new(88.0, 40.0),
            Point::new(10.0, 30.0),
        ];
        let dst = [
            Point::new(0.0, 0.0),
            Point::new(80.0, 0.0),
            Point::new(80.0, 25.0),
            Point::new(0.0, 25.0),
        ];
        let m = perspective_transform(&src, &dst).unwrap();
        let inv = invert3(&m).unwrap();
        for (s, d) in src.iter().zip(&dst) {
            let w = m[6] * s.x + m[7] * s.y + m[8];
            let (x, y) = (
                (m[0] * s.x + m[1] * s.y + m[2]) / w,
                (m[3] * s.x + m[4] * s.y + m[5]) / w,
            );
            assert!((x - d.x).abs() < 1e-6 && (y - d.y).abs() < 1e-6);
            let w = inv[6] * d.x + inv[7] * d.y + inv[8];
            let (x, y) = (
                (inv[0] * d.x + inv[1] * d.y + inv[2]) / w,
                (inv[3] * d.x + inv[4] * d.y + inv[5]) / w,
            );
            assert!((x - s.x).abs() < 1e-6 && (y - s.y).abs() < 1e-6);
        }
        let line = [Point::new(0.0, 0.0); 4];
        assert!(perspective_transform(&line, &dst).is_none());
    }
}
