//! The wasmtime loader of etmem engines.
