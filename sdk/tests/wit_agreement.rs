//! The WIT file is the one source of the plug-in contract: check that `wit/engine.wit`
//! parses and that the SDK (its `contract` lists, the native root module's fields, the
//! FakeHost's recorded call names) follows it name for name.

use etmem_sdk::contract;
use std::path::Path;
use wit_parser::{Resolve, TypeDefKind, WorldItem, WorldKey};

fn resolve() -> (Resolve, wit_parser::PackageId) {
    let mut resolve = Resolve::default();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let (pkg, _) = resolve.push_dir(&dir).expect("wit/ parses");
    (resolve, pkg)
}

fn interface_functions(resolve: &Resolve, pkg: wit_parser::PackageId, name: &str) -> Vec<String> {
    let id = resolve.packages[pkg].interfaces[name];
    resolve.interfaces[id].functions.keys().cloned().collect()
}

#[test]
fn package_and_world_names() {
    let (resolve, pkg) = resolve();
    assert_eq!(resolve.packages[pkg].name.to_string(), contract::PACKAGE);
    let world = resolve.packages[pkg].worlds[contract::WORLD];
    let w = &resolve.worlds[world];
    let name_of = |k: &WorldKey, item: &WorldItem| match (k, item) {
        (WorldKey::Interface(id), _) => resolve.interfaces[*id].name.clone().unwrap_or_default(),
        (WorldKey::Name(n), _) => n.clone(),
    };
    let imports: Vec<String> = w.imports.iter().map(|(k, i)| name_of(k, i)).collect();
    let exports: Vec<String> = w.exports.iter().map(|(k, i)| name_of(k, i)).collect();
    assert!(
        imports.contains(&"host".to_string()),
        "imports: {imports:?}"
    );
    assert_eq!(exports, vec!["engine".to_string()]);
}

#[test]
fn engine_exports_match_sdk_and_native_module() {
    let (resolve, pkg) = resolve();
    let wit = interface_functions(&resolve, pkg, "engine");
    assert_eq!(wit, contract::ENGINE_EXPORTS);
    let native: Vec<String> = etmem_sdk::native::engine_mod_field_names()
        .iter()
        .map(|n| n.replace('_', "-"))
        .collect();
    assert_eq!(native, contract::ENGINE_EXPORTS);
}

#[test]
fn host_imports_match_sdk_and_fake_host() {
    use etmem_sdk::Host;
    let (resolve, pkg) = resolve();
    assert_eq!(
        interface_functions(&resolve, pkg, "host"),
        contract::HOST_IMPORTS
    );
    // Every Host method records its WIT name: call each once.
    let host = etmem_sdk::testing::FakeHost::new();
    host.log(etmem_sdk::LogLevel::Info, "x");
    let _ = host.task_vmas("t", 1);
    let _ = host.task_scan("t");
    let _ = host.task_memory("t", 1);
    let _ = host.task_page_nodes("t", 1, &[0x1000]);
    let _ = host.request_swap_out("t", 1, &[0x1000]);
    let _ = host.request_migrate("t", 1, &[0x1000], 1);
    let _ = host.system_facts();
    let _ = host.reclaim_swapcache("t", 1, 10, 30);
    let _ = host.task_smaps_vmas("t", 1, &["us"]);
    let _ = host.send_page_list(
        "t",
        "@_memdcd.server",
        &etmem_sdk::ScanResult::from_runs(1, 1, []).expect("empty scan"),
    );
    let _ = host.damon_apply_scheme(
        "t",
        1,
        &etmem_sdk::DamonAttrs::default(),
        &etmem_sdk::DamonScheme::default(),
    );
    let _ = host.damon_remove_scheme("t", 1);
    let _ = host.cgroup_glob("t");
    let _ = host.cgroup_memory("t", "c");
    let _ = host.cgroup_reclaim("t", "c", 4096);
    assert_eq!(host.calls(), contract::HOST_IMPORTS);
}

#[test]
fn engine_error_cases_match() {
    let (resolve, pkg) = resolve();
    let types = resolve.packages[pkg].interfaces["types"];
    let id = resolve.interfaces[types].types["engine-error"];
    let TypeDefKind::Variant(v) = &resolve.types[id].kind else {
        panic!("engine-error is not a variant");
    };
    let cases: Vec<&str> = v.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(cases, contract::ENGINE_ERROR_CASES);
}

#[test]
fn root_module_symbol_is_abi_stable_s() {
    assert_eq!(
        etmem_sdk::native::ROOT_MODULE_SYMBOL,
        abi_stable::library::ROOT_MODULE_LOADER_NAME
    );
}
