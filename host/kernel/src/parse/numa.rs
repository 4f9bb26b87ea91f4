//! NUMA topology text: node distance rows and memory tier names. Never opens files.

/// Parses `/sys/devices/system/node/nodeN/distance` (`10 20`): the distance from node N
/// to each online node in order.
pub fn parse_distance_row(text: &str) -> Option<Vec<u32>> {
    text.split_ascii_whitespace()
        .map(|t| t.parse().ok())
        .collect()
}

/// The tier id of a `/sys/devices/virtual/memory_tiering/memory_tierN` directory name.
/// Its `nodelist` file is an id list (see `parse_id_list`).
pub fn parse_memory_tier_name(name: &str) -> Option<u32> {
    name.strip_prefix("memory_tier")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_tiers() {
        assert_eq!(parse_distance_row("10 20\n"), Some(vec![10, 20]));
        assert_eq!(parse_distance_row("10 x"), None);
        assert_eq!(parse_memory_tier_name("memory_tier4"), Some(4));
        assert_eq!(parse_memory_tier_name("memory_tierx"), None);
        assert_eq!(parse_memory_tier_name("power"), None);
    }
}
