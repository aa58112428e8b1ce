//! The metadata parser (Python `json.loads` semantics) on arbitrary bytes: no panic, and
//! whatever parses writes back (`json.dumps`, also `indent=4`) to text that parses to the
//! same value and writes identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardflow::formats::pyjson::{dumps, dumps_indent4, parse};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = parse(data) {
        let text = dumps(&v);
        let back = parse(text.as_bytes()).expect("our output parses");
        assert_eq!(dumps(&back), text);
        let indented = dumps_indent4(&v);
        let back = parse(indented.as_bytes()).expect("our indented output parses");
        assert_eq!(dumps(&back), text);
    }
});
