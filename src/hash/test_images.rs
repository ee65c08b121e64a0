//! Synthetic pictures for the hash and matching tests.

/// A smooth, low-texture picture (wide gradients and one soft blob): the kind whose DCT
/// coefficients crowd the median.
pub fn smooth(width: u32, height: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
            let blob = (-((fx - 0.3).powi(2) + (fy - 0.6).powi(2)) * 12.0).exp();
            let v = (60.0 + 90.0 * fx + 40.0 * fy * fy + 60.0 * blob) as u8;
            rgb.extend_from_slice(&[v, v, v]);
        }
    }
    rgb
}

/// A busy picture, well over PDQ's quality gate.
pub fn textured(width: u32, height: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let v = ((x * 7 + y * 13) ^ (x * y / 5)) as u8;
            rgb.extend_from_slice(&[v, v / 2 + 40, 255 - v]);
        }
    }
    rgb
}
