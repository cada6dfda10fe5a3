//! The built-in applications, each built exactly as a library user's would be.

pub mod broadcast;
pub mod sum;
