//! etmem-sdk: the crate engine authors use. Its contents arrive with the plug-in host
//! (engine traits, `Params`, `EngineError`, `export_engine!`); it depends on no host crate.
#![warn(missing_docs)]
