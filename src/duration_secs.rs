//! Durations in config files: one unit everywhere, (fractional) seconds.
//!
//! Use as `#[serde(with = "crate::duration_secs")]`. Values are checked when the file is read:
//! negative, NaN and absurdly long ones (over [`MAX_SECS`]) fail there with the setting's name,
//! instead of overflowing `Instant + Duration` at run time.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// The longest duration a setting may hold: about 31 years. Adding it to any `Instant` a running
/// process sees cannot overflow, and no timeout or lifetime needs more.
pub const MAX_SECS: f64 = 1e9;

/// Writes a duration as seconds.
///
/// # Errors
/// The serializer's.
pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64())
}

/// Reads seconds (an integer or a float) into a duration.
///
/// # Errors
/// Negative, NaN, or above [`MAX_SECS`].
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(deserializer)?;
    if !(0.0..=MAX_SECS).contains(&secs) {
        return Err(serde::de::Error::custom(format!("{secs} s is not a duration from 0 to {MAX_SECS} seconds")));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Setting {
        #[serde(with = "super")]
        after: std::time::Duration,
    }

    #[test]
    fn reads_whole_and_fractional_seconds_and_refuses_absurd_ones() {
        let read = |text: &str| toml::from_str::<Setting>(text).map(|s| s.after);
        assert_eq!(read("after = 3").unwrap().as_secs(), 3);
        assert_eq!(read("after = 0.25").unwrap().as_millis(), 250);
        assert!(read("after = -1").is_err());
        assert!(read("after = 1e30").is_err());
        assert!(read("after = nan").is_err());
    }
}
