use std::path::PathBuf;

fn main() {
    // The store embeds its migrations with sqlx::migrate!; rebuild when they change.
    println!("cargo:rerun-if-changed=migrations");
    jpeg_simd();
    // `debug` when the crate is built with debug assertions, as `cfg!(debug_assertions)`
    // says in the crate itself; one name for `--version` and `/metrics`.
    let profile = if std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some() {
        "debug"
    } else {
        "release"
    };
    println!("cargo:rustc-env=COVERGUARD_PROFILE={profile}");
}

/// Whether libjpeg-turbo was built with its SIMD decoder, from the `jconfig.h` mozjpeg-sys
/// generated (its directory is in `DEP_JPEG_INCLUDE`), for `--version` and `/metrics`.
fn jpeg_simd() {
    let include = std::env::var_os("DEP_JPEG_INCLUDE")
        .expect("mozjpeg-sys names its include directories (DEP_JPEG_INCLUDE)");
    let config = std::env::split_paths(&include)
        .map(|dir| dir.join("jconfig.h"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("jconfig.h"));
    println!("cargo:rerun-if-changed={}", config.display());
    let text = std::fs::read_to_string(&config)
        .unwrap_or_else(|e| panic!("reading mozjpeg-sys's {}: {e}", config.display()));
    let simd = text
        .lines()
        .any(|line| line.split_whitespace().eq(["#define", "WITH_SIMD", "1"]));
    println!(
        "cargo:rustc-env=COVERGUARD_JPEG_SIMD={}",
        if simd { "on" } else { "off" }
    );
}
