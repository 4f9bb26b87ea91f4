//! The slide engine.
