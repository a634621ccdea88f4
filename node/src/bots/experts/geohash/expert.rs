//! `intelmq.bots.experts.geohash.expert`: the geohash of `source`/`destination` latitude and
//! longitude goes into `extra.<dir>.geolocation.geohash` (`precision` characters).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::types::parse_py_float;
use crate::message::{AddOptions, Message};

/// A boolean given as JSON bool or as `"true"`/`"false"`.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(serde::de::Error::custom(format!("{other} is not a boolean"))),
    }
}

/// A non-negative integer given as a number or a numeric string.
fn lenient_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a precision"))),
        Value::String(s) => s.trim().parse().map_err(|_| serde::de::Error::custom(format!("`{s}` is not a precision"))),
        other => Err(serde::de::Error::custom(format!("{other} is not a precision"))),
    }
}

/// Parameters of the geohash expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeohashExpertParams {
    /// Replace an existing geohash; default false.
    #[serde(deserialize_with = "lenient_bool")]
    pub overwrite: bool,
    /// The geohash length; default 7.
    #[serde(deserialize_with = "lenient_usize")]
    pub precision: usize,
}

impl Default for GeohashExpertParams {
    fn default() -> Self {
        GeohashExpertParams { overwrite: false, precision: 7 }
    }
}

/// Adds geohashes of the geolocations.
pub struct GeohashExpertBot {
    overwrite: bool,
    precision: usize,
}

impl BuildBot for GeohashExpertBot {
    type Params = GeohashExpertParams;

    fn build(params: GeohashExpertParams) -> Result<Self, ParamError> {
        if params.precision == 0 {
            return Err(ParamError::new("precision", "must be at least 1"));
        }
        Ok(GeohashExpertBot { overwrite: params.overwrite, precision: params.precision })
    }
}

const BASE32: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// The geohash of a position (bits interleaved from longitude first; a value on a cell's middle
/// goes to the upper half).
pub fn encode(lat: f64, lon: f64, precision: usize) -> String {
    let (mut lat_min, mut lat_max) = (-90.0_f64, 90.0_f64);
    let (mut lon_min, mut lon_max) = (-180.0_f64, 180.0_f64);
    let mut out = String::with_capacity(precision);
    let (mut idx, mut bit, mut even) = (0usize, 0, true);
    while out.len() < precision {
        if even {
            let mid = (lon_min + lon_max) / 2.0;
            if lon >= mid {
                idx = idx * 2 + 1;
                lon_min = mid;
            } else {
                idx *= 2;
                lon_max = mid;
            }
        } else {
            let mid = (lat_min + lat_max) / 2.0;
            if lat >= mid {
                idx = idx * 2 + 1;
                lat_min = mid;
            } else {
                idx *= 2;
                lat_max = mid;
            }
        }
        even = !even;
        bit += 1;
        if bit == 5 {
            out.push(char::from(BASE32[idx]));
            bit = 0;
            idx = 0;
        }
    }
    out
}

fn as_float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_py_float(s),
        _ => None,
    }
}

impl ExpertBot for GeohashExpertBot {
    fn process(&mut self, mut event: Message, _ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        for dir in ["source", "destination"] {
            let lat_key = format!("{dir}.geolocation.latitude");
            let lon_key = format!("{dir}.geolocation.longitude");
            let (Some(lat), Some(lon)) = (event.get(&lat_key), event.get(&lon_key)) else {
                continue;
            };
            let (Some(lat), Some(lon)) = (as_float(lat), as_float(lon)) else {
                return Err(BotError::Invalid(format!("{lat_key}/{lon_key} are not numbers")));
            };
            let hash = encode(lat, lon, self.precision);
            let opts = AddOptions { overwrite: Some(self.overwrite), ..AddOptions::default() };
            event.add_with(&format!("extra.{dir}.geolocation.geohash"), Value::String(hash), opts)?;
        }
        out.send(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_geohashes() {
        assert_eq!(encode(48.2, 16.366666666666667, 7), "u2edhqt");
        assert_eq!(encode(-22.908333, -43.196389, 7), "75cm9j9");
        assert_eq!(encode(57.64911, 10.40744, 11), "u4pruydqqvj");
    }
}
