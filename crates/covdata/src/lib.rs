//! Go's binary coverage data (`covmeta.*`, `covcounters.*`, Go 1.20+): decode,
//! merge, encode, and the coverage model reports are made from.

pub mod model;
