//! Column encodings both backends share that sqlx cannot decode on its own: enums, JSON
//! documents and lists kept in text columns, and counts kept as `BIGINT`. The wrappers decode
//! (so a bad value fails with its reason, naming the column) and a
//! `#[sqlx(try_from = …)]` attribute unwraps them, so a row's fields keep their plain types.

use serde::de::DeserializeOwned;

use super::{ConsoleSettings, ViewPdq};

/// Reads a type from a `TEXT` column through its `FromStr`: store enums by name, and the
/// wrappers below as their text.
macro_rules! text_column {
    (impl<$($param:ident: $bound:path),*> $name:ty) => {
        impl<DB: sqlx::Database, $($param: $bound),*> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database, $($param: $bound),*> sqlx::Decode<'r, DB> for $name
        where
            String: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<String as sqlx::Decode<'r, DB>>::decode(value)?.parse::<$name>()?)
            }
        }
    };
    ($($name:ty),+ $(,)?) => {$(
        text_column!(impl<> $name);
    )+};
}

/// A JSON document in a `TEXT` column: Postgres's `json` type would not read back from SQLite,
/// so both keep the text.
pub(crate) struct JsonText<T>(pub T);
text_column!(impl<T: DeserializeOwned> JsonText<T>);

impl<T: DeserializeOwned> std::str::FromStr for JsonText<T> {
    type Err = serde_json::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        serde_json::from_str(text).map(JsonText)
    }
}

/// Lets a `#[sqlx(try_from = "JsonText<…>")]` field of each type take its document.
macro_rules! json_column {
    ($($ty:ty),+ $(,)?) => {$(
        impl From<JsonText<$ty>> for $ty {
            fn from(text: JsonText<$ty>) -> Self {
                text.0
            }
        }
    )+};
}

json_column!(
    serde_json::Value,
    Vec<ViewPdq>,
    Vec<String>,
    ConsoleSettings
);

/// A list of names in a `TEXT` column, kept as `,a,b,` (empty as ``) so that
/// `LIKE '%,a,%'` finds one member on both backends.
pub(crate) struct ListText(Vec<String>);
text_column!(ListText);

impl ListText {
    /// The column text for `items`; a comma inside a name becomes `_`.
    pub(crate) fn encode(items: &[String]) -> String {
        if items.is_empty() {
            return String::new();
        }
        let mut text = String::from(",");
        for item in items {
            text.push_str(&item.replace(',', "_"));
            text.push(',');
        }
        text
    }
}

impl std::str::FromStr for ListText {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let items = text.split(',').filter(|s| !s.is_empty());
        Ok(ListText(items.map(str::to_string).collect()))
    }
}

impl From<ListText> for Vec<String> {
    fn from(list: ListText) -> Self {
        list.0
    }
}

/// A count kept as `BIGINT` and held as `u32`: a stored value out of range fails to decode.
pub(crate) struct Count(u32);

impl<DB: sqlx::Database> sqlx::Type<DB> for Count
where
    i64: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <i64 as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <i64 as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for Count
where
    i64: sqlx::Decode<'r, DB>,
{
    fn decode(
        value: <DB as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Count(u32::try_from(
            <i64 as sqlx::Decode<'r, DB>>::decode(value)?,
        )?))
    }
}

impl From<Count> for u32 {
    fn from(count: Count) -> Self {
        count.0
    }
}
