//! Listing order (SPEC §2.1): relative paths sorted as whole strings in byte order.

/// Sorts relative paths the way the reference does: by the whole path string in byte order,
/// not component by component (`ab-c.json` < `ab/c.json` because `-` < `/`).
pub fn listing_order(paths: &mut [String]) {
    paths.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
}

#[cfg(test)]
mod tests {
    use super::listing_order;

    #[test]
    fn byte_order_not_component_order() {
        let mut v: Vec<String> = ["ab/c.json", "ab-c.json", "Z.json", "a.json", "ab.json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        listing_order(&mut v);
        assert_eq!(v, ["Z.json", "a.json", "ab-c.json", "ab.json", "ab/c.json"]);
    }

    #[test]
    fn non_ascii_sorts_after_ascii() {
        let mut v = vec!["é.json".to_string(), "z.json".to_string()];
        listing_order(&mut v);
        assert_eq!(v, ["z.json", "é.json"]);
    }
}
