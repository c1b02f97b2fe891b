//! Deserializing a struct while some of its keys are handled outside its derived code.
//!
//! Two kinds of keys do not fit `#[derive(Deserialize)]` with `deny_unknown_fields`: dynamic key
//! families (`max_attempts_<labourer_id>`) and keys shared by many structs (the keys every sosw 0.7
//! Processor accepts). `#[serde(flatten)]` would take them, but it turns unknown-key rejection off and
//! hides error paths. Instead, a struct derives its code with `#[serde(remote = "Self")]` (an inherent
//! `deserialize`, see [`Derived`]) and its `Deserialize` impl runs that code over the map with the
//! [`KeyFilter`]'s keys taken out. Every key and value is still read from the original map, so
//! `serde_path_to_error` keeps tracking paths.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};

/// A struct's derived deserialization code (the inherent `deserialize` of `#[serde(remote = "Self")]`).
pub(crate) trait Derived<'de>: Sized {
    /// Runs the derived code.
    fn derived<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

/// Keys taken out of a map before the struct's derived code sees it.
pub(crate) trait KeyFilter<'de> {
    /// The keys (or key patterns) this filter accepts, offered as suggestions for a mistyped key.
    const KEYS: &'static [&'static str];

    /// Reads the value of `key` from `map` and returns `true`, or returns `false` (reading nothing) to
    /// leave the key to the struct.
    fn take<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// Deserializes a `T` from a map, handing the keys `filter` takes to `filter`.
pub(crate) fn deserialize<'de, D, T, F>(
    deserializer: D,
    filter: F,
    expecting: &'static str,
) -> Result<(T, F), D::Error>
where
    D: Deserializer<'de>,
    T: Derived<'de>,
    F: KeyFilter<'de>,
{
    deserializer.deserialize_map(FilteringVisitor {
        filter,
        expecting,
        target: PhantomData,
    })
}

struct FilteringVisitor<T, F> {
    filter: F,
    expecting: &'static str,
    target: PhantomData<fn() -> T>,
}

impl<'de, T: Derived<'de>, F: KeyFilter<'de>> Visitor<'de> for FilteringVisitor<T, F> {
    type Value = (T, F);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, map: A) -> Result<Self::Value, A::Error> {
        let filtered = FilteredMap {
            map,
            filter: &mut self.filter,
        };
        let value = T::derived(MapAccessDeserializer::new(filtered))?;
        Ok((value, self.filter))
    }
}

struct FilteredMap<'f, A, F> {
    map: A,
    filter: &'f mut F,
}

impl<'de, A: MapAccess<'de>, F: KeyFilter<'de>> MapAccess<'de> for FilteredMap<'_, A, F> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            if self.filter.take(&key, &mut self.map)? {
                continue;
            }
            return seed
                .deserialize(key.as_str().into_deserializer())
                .map(Some)
                .map_err(with_filter_keys::<A::Error, F>);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// Adds the filter's keys to serde's list of valid keys, so a typo of one of them gets a suggestion.
fn with_filter_keys<'de, E: de::Error, F: KeyFilter<'de>>(err: E) -> E {
    let message = err.to_string();
    if !message.starts_with("unknown field") || F::KEYS.is_empty() {
        return err;
    }
    let keys: Vec<String> = F::KEYS.iter().map(|k| format!("`{k}`")).collect();
    E::custom(format!("{message}; also accepted: {}", keys.join(", ")))
}
