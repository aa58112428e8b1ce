//! The dataset summaries: one `wdinfo.json` per bin and `wdinfo_list.csv` per version.

use super::pyjson::{dumps_indent4, PyValue};

/// The content of one bin's `wdinfo.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WdInfo {
    /// The dataset's stream names: `data_keys`.
    pub names: crate::layout::StreamNames,
    /// Tars per part directory (`--max-tars-per-part`).
    pub chunk_size: usize,
    /// Tar paths relative to `<bin>/video`, sorted, e.g. `part_000000/000000.tar`.
    pub data_list: Vec<String>,
    /// The bin directory: a local path, or the S3 key prefix without the bucket.
    pub root: String,
    /// Number of clips written in the bin.
    pub total_key_count: u64,
}

impl WdInfo {
    /// The file's bytes, as the reference writes them: Python
    /// `json.dumps({"data_keys": [...], "chunk_size": .., "data_list": [...], "root": ..,
    /// "total_key_count": ..}, indent=4)`, no trailing newline.
    pub fn to_json(&self) -> String {
        dumps_indent4(&self.to_value())
    }

    /// The summary as a JSON value, keys in the reference's order.
    pub fn to_value(&self) -> PyValue {
        let strs = |items: &[String]| {
            PyValue::Array(items.iter().map(|s| PyValue::Str(s.clone())).collect())
        };
        PyValue::Object(vec![
            (
                "data_keys".into(),
                strs(&self.names.data_keys().map(String::from)),
            ),
            (
                "chunk_size".into(),
                PyValue::Int(self.chunk_size.to_string()),
            ),
            ("data_list".into(), strs(&self.data_list)),
            ("root".into(), PyValue::Str(self.root.clone())),
            (
                "total_key_count".into(),
                PyValue::Int(self.total_key_count.to_string()),
            ),
        ])
    }
}

/// `wdinfo_list.csv`: one row per path, written like Python's `csv.writer` with the default
/// dialect (`\r\n` after every row; a field is quoted only when it contains `,`, `"`, `\r`
/// or `\n`, or is empty, and quotes inside are doubled).
pub fn wdinfo_list_csv(paths: &[String]) -> String {
    let mut out = String::new();
    for p in paths {
        out.push_str(&csv_field(p));
        out.push_str("\r\n");
    }
    out
}

/// A one-field row under Python's `csv.QUOTE_MINIMAL`, excel dialect. A lone empty field is
/// quoted (`""`), as `csv.writer` does to tell it from an empty row.
fn csv_field(field: &str) -> String {
    if field.is_empty() || field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_python::{pack, run_python, unpack};

    fn expected(rel: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/sample-dataset-expected")
            .join(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn wdinfo_matches_reference_file() {
        let bin = "v0/resolution_1080/aspect_ratio_16_9/frames_0_120";
        let info = WdInfo {
            names: Default::default(),
            chunk_size: 100,
            data_list: vec![
                "part_000000/000000.tar".into(),
                "part_000000/000001.tar".into(),
            ],
            root: format!("sample-dataset-expected/{bin}"),
            total_key_count: 5,
        };
        assert_eq!(info.to_json(), expected(&format!("{bin}/wdinfo.json")));
    }

    #[test]
    fn wdinfo_with_no_tars_and_odd_root() {
        let mut info = WdInfo {
            names: Default::default(),
            chunk_size: 2,
            data_list: vec![],
            root: "bucket-less/prefix/é".into(),
            total_key_count: 0,
        };
        let want = "{\n    \"data_keys\": [\n        \"video\",\n        \"t5_xxl\",\n        \"metas\"\n    ],\n    \"chunk_size\": 2,\n    \"data_list\": [],\n    \"root\": \"bucket-less/prefix/\\u00e9\",\n    \"total_key_count\": 0\n}";
        assert_eq!(info.to_json(), want);
        info.names.embedding = crate::layout::EmbeddingName::Umt5Xxl;
        assert_eq!(info.to_json(), want.replace("\"t5_xxl", "\"umt5_xxl"));
    }

    #[test]
    fn csv_matches_reference_file() {
        let want = expected("v0/wdinfo_list.csv");
        let paths: Vec<String> = want
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        assert_eq!(paths.len(), 12);
        assert_eq!(wdinfo_list_csv(&paths), want);
        assert_eq!(wdinfo_list_csv(&[]), "");
    }

    #[test]
    fn csv_quoting_matches_python_csv_writer() {
        let fields = [
            "plain/path/wdinfo.json",
            "with,comma",
            "with \"quote\"",
            "line\nbreak",
            "cr\rhere",
            "",
            " spaces ",
            "semi;colon'single",
            "tab\there",
            "é/ü/😀",
        ];
        let ours = wdinfo_list_csv(&fields.map(String::from));
        let script = r#"
import csv, io
buf = io.StringIO(newline='')
w = csv.writer(buf)
for r in read_records():
    w.writerow([r.decode('utf-8')])
write_records([buf.getvalue().encode('utf-8')])
"#;
        let records: Vec<Vec<u8>> = fields.iter().map(|f| f.as_bytes().to_vec()).collect();
        let out = unpack(&run_python("python3", script, pack(&records)));
        assert_eq!(ours.as_bytes(), &out[0][..]);
    }
}
