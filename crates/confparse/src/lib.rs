//! The Ecelerity / Momentum configuration language.
