//! How this binary was built, for `coverguard --version` and the `coverguard_build_info`
//! metric: a decoder without SIMD or a debug build is several times slower and otherwise
//! gives no sign of it.

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `on` when libjpeg-turbo was built with its SIMD decoder (read from mozjpeg-sys's
/// `jconfig.h` by the build script), else `off`.
pub const JPEG_SIMD: &str = env!("COVERGUARD_JPEG_SIMD");

/// `release` or `debug` (built with debug assertions).
pub const PROFILE: &str = env!("COVERGUARD_PROFILE");

/// What `--version` prints: the version, then one line per build property.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\njpeg simd: ",
    env!("COVERGUARD_JPEG_SIMD"),
    "\nprofile: ",
    env!("COVERGUARD_PROFILE")
);

/// The build's labels, in the order the metric shows them.
pub fn labels() -> [(&'static str, &'static str); 3] {
    [
        ("version", VERSION),
        ("jpeg_simd", JPEG_SIMD),
        ("profile", PROFILE),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The build cannot succeed without nasm on x86 (the patched mozjpeg-sys fails it), and
    /// other targets assemble their SIMD with the compiler: every build has it.
    #[test]
    fn this_build_has_the_simd_jpeg_decoder() {
        assert_eq!(JPEG_SIMD, "on");
        assert!(LONG_VERSION.contains("\njpeg simd: on\n"));
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        assert_eq!(
            PROFILE, profile,
            "the build script reads the crate's own setting"
        );
        assert!(LONG_VERSION.ends_with(&format!("\nprofile: {profile}")));
    }
}
