//! Small node programs shared by the integration tests of several modes.

pub mod spawn_race;
