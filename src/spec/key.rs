//! Sample keys: a `span_uuid` becomes tar member names `<key>.<ext>`, so it must be safe.

/// The longest key, in bytes: file names are at most 255 bytes, and `<key>.pickle`, an
/// export's `<key>_<window>.mp4` and their temporary names must all fit.
pub const MAX_KEY_BYTES: usize = 200;

/// Checks that `key` can name tar members and files: not empty, not `..`, and free of `/`,
/// `.` and NUL (webdataset splits a member name at its first `.`), of whitespace and of control
/// characters (a DALI index is whitespace-separated text, one sample a line), and at most
/// [`MAX_KEY_BYTES`] long. Returns why not.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        Err("is empty")
    } else if key.contains('/') {
        Err("contains '/'")
    } else if key.contains('.') {
        Err("contains '.'")
    } else if key.contains('\0') {
        Err("contains NUL")
    } else if key.contains('\\') {
        Err("contains '\\'")
    } else if key
        .chars()
        .any(|c| c.is_ascii_whitespace() || c.is_control())
    {
        Err("contains whitespace or a control character")
    } else if key.len() > MAX_KEY_BYTES {
        Err("is longer than 200 bytes, too long for a file name")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{check_key, MAX_KEY_BYTES};

    #[test]
    fn safe_and_unsafe_keys() {
        assert!(check_key("22756df8-ac7e-5b10-bbe1-b392e219c386").is_ok());
        assert!(check_key("clip_01").is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        for bad in [
            "", "..", ".", "a/b", "a.b", "a\0b", "../x", "a\\b", "a b", " ", "a\nb", "a\tb",
            "a\rb", "a\x0bb", "a\x7fb", "a\u{85}b", &long,
        ] {
            assert!(check_key(bad).is_err(), "{bad:?} accepted");
        }
    }
}
