//! Tools of DistZero's own binary, built on the applications: the sum network's demo and
//! benchmarks.

pub mod sum;
