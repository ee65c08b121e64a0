//! A test animation built frame by frame, as an uploader would build one: its first frame
//! harmless, its second the colour chart that the model sends to review.

use super::common::server::photo;

/// An animated GIF a viewer sees as a harmless photo (coffee.png, frame 0) and then the colour
/// chart (frame 1).
pub fn chart_animation() -> Vec<u8> {
    use image::{Delay, Frame};
    let chart = image::load_from_memory(&photo("color.png"))
        .unwrap()
        .to_rgba8();
    let harmless = image::load_from_memory(&photo("coffee.png"))
        .unwrap()
        .resize_exact(
            chart.width(),
            chart.height(),
            image::imageops::FilterType::Triangle,
        )
        .to_rgba8();
    let delay = Delay::from_numer_denom_ms(500, 1);
    let frames = [harmless, chart].map(|mut picture| {
        // The encoder's own quantiser (NeuQuant, no dithering) flattens the chart's gradients
        // until the model sees nothing in it; error diffusion onto a fixed palette keeps them.
        image::imageops::dither(&mut picture, &Palette252);
        Frame::from_parts(picture, 0, 0, delay)
    });
    let mut gif = Vec::new();
    image::codecs::gif::GifEncoder::new(&mut gif)
        .encode_frames(frames)
        .unwrap();
    gif
}

/// 6 x 7 x 6 evenly spaced levels of red, green and blue: 252 colours, within a GIF palette.
struct Palette252;

impl Palette252 {
    const LEVELS: [u32; 3] = [6, 7, 6];

    fn level(channel: usize, value: u8) -> u32 {
        let steps = Self::LEVELS[channel] - 1;
        (u32::from(value) * steps + 127) / 255
    }
}

impl image::imageops::colorops::ColorMap for Palette252 {
    type Color = image::Rgba<u8>;

    fn index_of(&self, colour: &Self::Color) -> usize {
        let index = (0..3).fold(0, |index, c| {
            index * Self::LEVELS[c] + Self::level(c, colour.0[c])
        });
        index as usize
    }

    fn map_color(&self, colour: &mut Self::Color) {
        for c in 0..3 {
            let steps = Self::LEVELS[c] - 1;
            colour.0[c] = ((Self::level(c, colour.0[c]) * 255 + steps / 2) / steps) as u8;
        }
    }
}
