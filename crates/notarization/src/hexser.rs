//! Serde helpers: fixed-size byte arrays as lowercase hex strings in JSON.

macro_rules! hex_array {
    ($name:ident, $n:expr) => {
        pub(crate) mod $name {
            use serde::{Deserialize, Deserializer, Serializer};

            pub(crate) fn serialize<S: Serializer>(v: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(v))
            }

            pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
                d: D,
            ) -> Result<[u8; $n], D::Error> {
                let s = String::deserialize(d)?;
                let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
                v.try_into().map_err(|_| {
                    serde::de::Error::custom(concat!("expected ", stringify!($n), " bytes of hex"))
                })
            }
        }
    };
}

hex_array!(h16, 16);
hex_array!(h32, 32);
hex_array!(h64, 64);
