//! The cslide engine.
