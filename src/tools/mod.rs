//! Tools of DistZero's own binary, built on the applications: the sum network's demo and
//! benchmarks, and the workloads they generate.

pub mod sum;
