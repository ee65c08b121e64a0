//! Writes the starting corpus of each fuzz target into `fuzz/seeds/<target>/`: small valid
//! inputs of every shape the parsers accept, so the fuzzer starts past the magic bytes.
//! Run once, then fuzz and minimise (fuzz/README.md); the minimised corpus is committed.
//!
//! `cargo run --example fuzz_seeds`

use std::path::Path;

use image::{ExtendedColorType, ImageEncoder};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn gradient(width: u32, height: u32, channels: u32) -> Vec<u8> {
    (0..width * height * channels)
        .map(|i| ((i * 7) ^ (i / (width * channels) * 13)) as u8)
        .collect()
}

fn png(
    width: u32,
    height: u32,
    color: ExtendedColorType,
    channels: u32,
    bytes_per_sample: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            &gradient(width, height, channels * bytes_per_sample),
            width,
            height,
            color,
        )
        .unwrap();
    out
}

fn main() {
    // decode: each format and its common variants, a few pixels each.
    for (name, color, channels, bps) in [
        ("gray.png", ExtendedColorType::L8, 1, 1),
        ("gray_alpha.png", ExtendedColorType::La8, 2, 1),
        ("rgb.png", ExtendedColorType::Rgb8, 3, 1),
        ("rgba.png", ExtendedColorType::Rgba8, 4, 1),
        ("rgb16.png", ExtendedColorType::Rgb16, 3, 2),
    ] {
        write("decode", name, &png(9, 7, color, channels, bps));
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .write_image(&gradient(17, 9, 3), 17, 9, ExtendedColorType::Rgb8)
        .unwrap();
    write("decode", "rgb.jpg", &jpeg);
    // The same JPEG with an EXIF APP1 (orientation 6) after SOI.
    let exif: &[u8] = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
    let mut with_exif = vec![0xFF, 0xD8, 0xFF, 0xE1];
    with_exif.extend_from_slice(&u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
    with_exif.extend_from_slice(exif);
    with_exif.extend_from_slice(&jpeg[2..]);
    write("decode", "exif.jpg", &with_exif);
    let mut gray_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut gray_jpeg, 80)
        .write_image(&gradient(8, 8, 1), 8, 8, ExtendedColorType::L8)
        .unwrap();
    write("decode", "gray.jpg", &gray_jpeg);
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .write_image(&gradient(9, 7, 4), 9, 7, ExtendedColorType::Rgba8)
        .unwrap();
    write("decode", "lossless.webp", &webp);
    let mut gif = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut gif);
        for shift in 0..2u8 {
            let frame = image::RgbaImage::from_fn(6, 5, |x, y| {
                image::Rgba([x as u8 * 40 + shift, y as u8 * 50, 90, 255])
            });
            encoder.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    write("decode", "two_frames.gif", &gif);
    for path in [
        "misc-images/wee.jpg",
        "misc-images/small.jpg",
        "bridge-mods/square-128x128.jpg",
    ] {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pdq-conformance")
            .join(path);
        write(
            "decode",
            &path.replace('/', "_"),
            &std::fs::read(src).unwrap(),
        );
    }

    // pdq: size bytes, then pixels.
    write("pdq", "flat_64x64", &[63, 63, 128, 128, 128]);
    let mut ramp = vec![99, 40];
    ramp.extend(gradient(100, 41, 3));
    write("pdq", "ramp_100x41", &ramp);
    write("pdq", "tiny_3x3", &[2, 2, 1, 2, 3, 4, 5, 6]);

    // bank_file: every signal type, ids, comments, a CRLF line.
    write(
        "bank_file",
        "mixed.txt",
        concat!(
            "# HMA export\n",
            "pdq f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22 case-1\n",
            "md5 d41d8cd98f00b204e9800998ecf8427e\n",
            "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 x # note\r\n",
            "\n"
        )
        .as_bytes(),
    );

    // manifest: CSV with every column, quoting, and JSON lines.
    write(
        "manifest",
        "items.csv",
        b"artwork_id,url,path,owner_id,surface,owner_is_minor,playlist_track_count\n\
          a1,https://cdn.example/a1.jpg,,o1,playlist_cover,false,12\n\
          a2,,art/a2.png,o2,track_cover,,\n\
          \"a,3\",,\"dir/x\"\"y.png\",o3,,true,0\n",
    );
    write(
        "manifest",
        "items.jsonl",
        b"{\"artwork_id\":\"a1\",\"url\":\"https://cdn.example/a1.jpg\",\"owner_id\":\"o1\"}\n\
          {\"artwork_id\":\"a2\",\"path\":\"art/a2.png\",\"context\":{\"surface\":\"playlist_cover\",\"owner_is_minor\":true}}\n",
    );

    // request_body: selector byte (0 JSON, 1 image/png, 2 octet-stream), query, NUL, body.
    write(
        "request_body",
        "screen_json",
        b"\0\0{\"url\":\"https://cdn.example/a.png\",\"artwork_id\":\"a\",\"owner_id\":\"o\",\"context\":{\"surface\":\"playlist_cover\",\"owner_is_minor\":true,\"playlist_track_count\":3},\"deadline_ms\":500}",
    );
    let mut raw =
        b"\x01artwork_id=a&owner_id=o&owner_is_minor=1&playlist_track_count=4&deadline_ms=300\0"
            .to_vec();
    raw.extend_from_slice(&png(2, 2, ExtendedColorType::Rgb8, 3, 1));
    write("request_body", "screen_raw", &raw);
    write(
        "request_body",
        "login",
        b"\0\0{\"username\":\"r1\",\"password\":\"pw\"}",
    );
    write(
        "request_body",
        "decision",
        b"\0\0{\"decision\":\"confirm\",\"reason_code\":\"csam\",\"bank\":\"known-bad\",\"note\":\"n\"}",
    );
    write(
        "request_body",
        "bank",
        b"\0\0{\"name\":\"b\",\"signal_types\":[\"pdq\",\"md5\"],\"category\":\"csam\",\"pdq_threshold\":31,\"action\":\"block\"}",
    );
}
