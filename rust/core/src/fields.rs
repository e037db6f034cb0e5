//! The numeric fields of the parameter structs by the names users spell (the
//! Python config fields): [`FieldTables`], implemented by [`field_tables!`]
//! from one list per struct, through which the bindings convert config dicts
//! both ways (so a field is listed once, next to its struct, and not again
//! in each direction of each conversion).

/// Name tables of a parameter struct's numeric fields, and access by name.
pub trait FieldTables {
    /// Names of the real-valued (`f64`) fields, in declaration order.
    const REAL_FIELDS: &'static [&'static str];
    /// Names of the unsigned integer fields, each with the largest value its
    /// type holds, in declaration order.
    const INT_FIELDS: &'static [(&'static str, u64)];

    /// The real-valued field `name`, if there is one.
    fn real_field(&self, name: &str) -> Option<f64>;
    /// The real-valued field `name`, mutably, if there is one.
    fn real_field_mut(&mut self, name: &str) -> Option<&mut f64>;
    /// The integer field `name`, if there is one.
    fn int_field(&self, name: &str) -> Option<u64>;
    /// Sets the integer field `name` to `v`; false when there is no such
    /// field or `v` exceeds its type (its bound in `INT_FIELDS`).
    fn set_int_field(&mut self, name: &str, v: u64) -> bool;
}

/// Implements [`FieldTables`] for a struct from its lists of real fields and
/// of integer fields with their types.
macro_rules! field_tables {
    ($ty:ident { real: [$($r:ident),* $(,)?], int: [$($i:ident: $it:ty),* $(,)?] $(,)? }) => {
        impl $crate::fields::FieldTables for $ty {
            const REAL_FIELDS: &'static [&'static str] = &[$(stringify!($r)),*];
            const INT_FIELDS: &'static [(&'static str, u64)] =
                &[$((stringify!($i), <$it>::MAX as u64)),*];

            fn real_field(&self, name: &str) -> Option<f64> {
                match name {
                    $(stringify!($r) => Some(self.$r),)*
                    _ => None,
                }
            }

            fn real_field_mut(&mut self, name: &str) -> Option<&mut f64> {
                match name {
                    $(stringify!($r) => Some(&mut self.$r),)*
                    _ => None,
                }
            }

            fn int_field(&self, name: &str) -> Option<u64> {
                match name {
                    $(stringify!($i) => u64::try_from(self.$i).ok(),)*
                    _ => None,
                }
            }

            fn set_int_field(&mut self, name: &str, v: u64) -> bool {
                match name {
                    $(stringify!($i) => <$it>::try_from(v).map(|v| self.$i = v).is_ok(),)*
                    _ => false,
                }
            }
        }
    };
}

pub(crate) use field_tables;
