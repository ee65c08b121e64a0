//! Rectangles of the detector-scale image, and the windows the detector is run in
//! around the gate's rows.

/// An axis-aligned rectangle, `x0..x1` by `y0..y1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

impl Rect {
    pub fn width(&self) -> usize {
        self.x1 - self.x0
    }

    pub fn height(&self) -> usize {
        self.y1 - self.y0
    }

    pub fn area(&self) -> usize {
        self.width() * self.height()
    }

    /// The rectangle in an image halved `k` times, covering every pixel it covered.
    pub fn halved(&self, k: u32) -> Rect {
        let d = 1usize << k;
        Rect {
            x0: self.x0 / d,
            y0: self.y0 / d,
            x1: self.x1.div_ceil(d),
            y1: self.y1.div_ceil(d),
        }
    }

    /// A rectangle of an image halved `k` times, back in the `width` x `height` image.
    pub fn doubled(&self, k: u32, width: usize, height: usize) -> Rect {
        Rect {
            x0: (self.x0 << k).min(width),
            y0: (self.y0 << k).min(height),
            x1: (self.x1 << k).min(width),
            y1: (self.y1 << k).min(height),
        }
    }

    fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    fn union(&self, o: &Rect) -> Rect {
        Rect {
            x0: self.x0.min(o.x0),
            y0: self.y0.min(o.y0),
            x1: self.x1.max(o.x1),
            y1: self.y1.max(o.y1),
        }
    }
}

/// Seeds grown to multiples of `multiple` on each side (the detector's stride), and to
/// at least two of them, as far as the image allows, and merged while any two overlap.
/// Around a short line, a window one stride high leaves the detector too little of the
/// line's surroundings to find it.
pub fn detector_windows(seeds: &[Rect], width: usize, height: usize, multiple: usize) -> Vec<Rect> {
    let grow = |a: usize, b: usize, limit: usize| -> (usize, usize) {
        let want = ((b - a).div_ceil(multiple) * multiple).max(2 * multiple);
        if want >= limit {
            return (0, limit);
        }
        let extra = want - (b - a);
        let a = a.saturating_sub(extra / 2);
        let a = a.min(limit - want);
        (a, a + want)
    };
    let mut windows: Vec<Rect> = seeds
        .iter()
        .map(|r| {
            let (x0, x1) = grow(r.x0, r.x1, width);
            let (y0, y1) = grow(r.y0, r.y1, height);
            Rect { x0, y0, x1, y1 }
        })
        .collect();
    loop {
        let mut merged = false;
        'outer: for i in 0..windows.len() {
            for j in i + 1..windows.len() {
                if windows[i].overlaps(&windows[j]) {
                    let u = windows[i].union(&windows[j]);
                    windows.swap_remove(j);
                    windows[i] = u;
                    merged = true;
                    break 'outer;
                }
            }
        }
        if !merged {
            return windows;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_halved_rectangle_covers_what_it_covered_and_doubles_back_within_the_image() {
        let r = Rect {
            x0: 5,
            y0: 8,
            x1: 99,
            y1: 17,
        };
        let half = r.halved(1);
        assert_eq!(
            half,
            Rect {
                x0: 2,
                y0: 4,
                x1: 50,
                y1: 9
            }
        );
        let back = half.doubled(1, 99, 120);
        assert!(back.x0 <= r.x0 && back.y0 <= r.y0 && back.x1 >= r.x1 && back.y1 >= r.y1);
        assert_eq!(back.x1, 99, "clipped to the image");
        assert_eq!(r.halved(0), r);
        assert_eq!(r.halved(2).doubled(2, 1000, 1000).x0, 4);
    }

    #[test]
    fn windows_grow_to_the_stride_and_merge() {
        let seeds = [
            Rect {
                x0: 10,
                y0: 10,
                x1: 50,
                y1: 20,
            },
            Rect {
                x0: 45,
                y0: 12,
                x1: 90,
                y1: 22,
            },
            Rect {
                x0: 300,
                y0: 300,
                x1: 310,
                y1: 305,
            },
        ];
        let w = detector_windows(&seeds, 400, 320, 32);
        assert_eq!(w.len(), 2, "{w:?}");
        for r in &w {
            assert!(r.x1 <= 400 && r.y1 <= 320);
        }
        // A seed smaller than the stride grows to two strides.
        let far = w.iter().find(|r| r.x0 >= 200).unwrap();
        assert_eq!((far.width(), far.height()), (64, 64));
        // Grown about the seed, as far as the image's edge allows.
        assert!(far.x0 <= 300 && far.x1 >= 310 && far.y0 <= 300 && far.y1 >= 305);
        assert_eq!((far.x0, far.x1), (273, 337));
        assert_eq!((far.y0, far.y1), (256, 320));
        let near = w.iter().find(|r| r.x0 < 200).unwrap();
        assert_eq!((near.width(), near.height()), (100, 64));
        let edge = detector_windows(
            &[Rect {
                x0: 300,
                y0: 310,
                x1: 310,
                y1: 318,
            }],
            400,
            320,
            32,
        );
        assert_eq!(edge[0].y1, 320);
        // A window as wide as the image takes all of it.
        let all = detector_windows(
            &[Rect {
                x0: 0,
                y0: 0,
                x1: 30,
                y1: 5,
            }],
            30,
            5,
            32,
        );
        assert_eq!(
            all,
            vec![Rect {
                x0: 0,
                y0: 0,
                x1: 30,
                y1: 5
            }]
        );
    }
}
