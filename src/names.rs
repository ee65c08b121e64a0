//! Enums written as text (records, the store, bank files, the policy, the API): one macro
//! gives each its list of values, its names, `Display` and `FromStr`, so that every name
//! is spelled once and every unknown name fails the same way.

/// Text that names none of an enum's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {text:?} (expected {})", .known.join(", "))]
pub struct UnknownName {
    /// What the text should have named, e.g. `verdict`.
    pub what: &'static str,
    pub text: String,
    /// Every name it could have been.
    pub known: &'static [&'static str],
}

/// Declares a fieldless enum from `Variant => "name"` pairs and gives it `ALL` (in
/// declaration order), `NAMES`, `as_str`, `Display` and `FromStr` erring with
/// [`UnknownName`]. Derives and serde attributes are written on the enum as usual.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];
            /// Every value's name, in declaration order.
            pub const NAMES: [&'static str; [$($text),+].len()] = [$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::names::UnknownName;

            fn from_str(text: &str) -> Result<Self, $crate::names::UnknownName> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::names::UnknownName {
                        what: $what,
                        text: other.to_string(),
                        known: &$name::NAMES,
                    }),
                }
            }
        }
    };
}

pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    named_enum!(
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Colour ("colour") {
            Red => "red",
            /// Documented variants keep their docs.
            DarkBlue => "dark_blue",
        }
    );

    #[test]
    fn every_value_reads_back_from_its_name() {
        assert_eq!(Colour::ALL, [Colour::Red, Colour::DarkBlue]);
        for colour in Colour::ALL {
            assert_eq!(colour.to_string().parse::<Colour>(), Ok(colour));
        }
        assert_eq!(Colour::NAMES, ["red", "dark_blue"]);
    }

    #[test]
    fn an_unknown_name_says_what_was_expected() {
        let err = "Red".parse::<Colour>().unwrap_err();
        assert_eq!(err.text, "Red");
        assert_eq!(
            err.to_string(),
            "unknown colour \"Red\" (expected red, dark_blue)"
        );
    }
}
