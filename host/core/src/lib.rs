//! The etmemd core.
