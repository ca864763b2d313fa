//! Development certificates.
#![forbid(unsafe_code)]
