//! The commands the tests run: the real `shardflow` binary and the Python tools of
//! `tests/tools/`, each built in one place.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use super::{data, root, SAMPLE_ROOT};

/// The `shardflow` binary under test.
pub const SHARDFLOW: &str = env!("CARGO_BIN_EXE_shardflow");

/// `shardflow` in `cwd`, logging warnings only; callers add the arguments (and may override
/// the environment).
pub fn shardflow_command(cwd: &Path) -> Command {
    let mut cmd = Command::new(SHARDFLOW);
    cmd.current_dir(cwd).env("SHARDFLOW_LOG", "warn");
    cmd
}

/// Runs `shardflow` with `args` in `cwd`.
pub fn shardflow(cwd: &Path, args: &[&str]) -> Output {
    shardflow_command(cwd)
        .args(args)
        .output()
        .expect("shardflow runs")
}

/// Runs `shardflow shard` on `input` into `output` (relative to `cwd`) with the tiny model.
pub fn shard(cwd: &Path, input: &Path, output: &str, extra: &[&str]) -> Output {
    shard_with_model(cwd, input, output, &data("t5-tiny"), extra)
}

/// [`shard`] with the encoder model directory `model`.
pub fn shard_with_model(
    cwd: &Path,
    input: &Path,
    output: &str,
    model: &Path,
    extra: &[&str],
) -> Output {
    let remap = format!("{SAMPLE_ROOT}={}", input.display());
    let mut args = vec![
        "shard",
        "--input-clip-path",
        input.to_str().unwrap(),
        "--output-dataset-path",
        output,
        "--annotation-version",
        "v0",
        "--t5-model",
        model.to_str().unwrap(),
        "--remap-clip-location",
        &remap,
    ];
    // the sample dataset holds one deliberately broken metadata file of 28
    if !extra.contains(&"--max-rejected-fraction") {
        args.extend_from_slice(&["--max-rejected-fraction", "0.05"]);
    }
    args.extend_from_slice(extra);
    shardflow(cwd, &args)
}

/// `python3 tests/tools/<name>`: one of the Python test tools (each documents its arguments),
/// run by the `python3` first on PATH (CI puts a venv with numpy, webdataset, pyarrow and boto3
/// there). Callers add the arguments.
pub fn tool(name: &str) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("tests/tools").join(name));
    cmd
}

/// Runs `cmd` and returns its stdout; unless it succeeds, the test fails with
/// "`what` failed:", its stdout and its stderr.
pub fn stdout_of(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().expect("python3 runs");
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the tool `name` with `args`; returns its stdout, failing the test on error.
pub fn run_tool<I, S>(name: &str, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    stdout_of(tool(name).args(args), name)
}

/// Runs `compare_datasets.py` strictly; returns its last line.
pub fn compare_strict(expected: &Path, actual: &Path) -> String {
    let stdout = stdout_of(
        tool("compare_datasets.py").arg(expected).arg(actual).args([
            "--strict-bytes",
            "--check-headers",
            "--strict-csv-order",
        ]),
        "compare",
    );
    stdout.lines().last().unwrap_or_default().to_string()
}
