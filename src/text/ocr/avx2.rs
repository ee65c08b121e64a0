//! Passes over pixels compiled a second time for AVX2.

/// Defines `$name` to run `$portable`, compiled a second time for AVX2 and chosen at run
/// time where the CPU has it: the gate's passes over pixels are loops the compiler
/// vectorises, twice as wide with AVX2, while release builds target baseline x86-64.
/// Integer work and unfused f32 arithmetic give the same bytes either way. `$portable`
/// and the loops it calls are `#[inline(always)]`, so that the copy holds them too.
macro_rules! avx2_where_present {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $portable:ident;) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            if $crate::text::ocr::avx2::avx2_present() {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) -> $ret {
                    $portable($($arg),*)
                }
                // SAFETY: `avx2` needs nothing of the CPU but AVX2, found just above.
                return unsafe { avx2($($arg),*) };
            }
            $portable($($arg),*)
        }
    };
}

pub(super) use avx2_where_present;

/// Whether the functions [`avx2_where_present`] defines run their AVX2 copies here.
pub(super) fn avx2_present() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    false
}
