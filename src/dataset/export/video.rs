//! Cutting a window out of a clip with `ffmpeg`. A stream copy (`-c copy`) can only start at a
//! keyframe, so its cut would hold frames before the window (or miss some); the window's
//! frames are decoded and re-encoded instead (H.264, CRF 18), exactly `[start, end]`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// A private scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shardflow-export-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The arguments that make `ffmpeg` write frames `start..=end` of `input` to `output`.
pub fn cut_args(input: &Path, output: &Path, start: u64, end: u64) -> Vec<String> {
    let filter = format!(
        "trim=start_frame={start}:end_frame={},setpts=PTS-STARTPTS",
        end + 1
    );
    let mut args: Vec<String> = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"]
        .map(String::from)
        .to_vec();
    args.push(input.display().to_string());
    args.extend(
        [
            "-map",
            "0:v:0",
            "-vf",
            &filter,
            // every trimmed frame once, none duplicated or dropped to a constant rate
            "-fps_mode",
            "passthrough",
            "-an",
            "-c:v",
            "libx264",
            "-crf",
            "18",
            "-f",
            "mp4",
        ]
        .map(String::from),
    );
    args.push(output.display().to_string());
    args
}

/// Frames `start..=end` of the mp4 `clip`, re-encoded by the program `ffmpeg`. The error
/// says why (ffmpeg's own message when it ran).
pub fn cut(ffmpeg: &str, clip: &[u8], start: u64, end: u64) -> Result<Vec<u8>, String> {
    let scratch = Scratch::new().map_err(|e| format!("scratch directory: {e}"))?;
    let input = scratch.0.join("in.mp4");
    let output = scratch.0.join("out.mp4");
    std::fs::write(&input, clip).map_err(|e| format!("{}: {e}", input.display()))?;
    let out = Command::new(ffmpeg)
        .args(cut_args(&input, &output, start, end))
        .output()
        .map_err(|e| format!("running {ffmpeg}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{ffmpeg} failed ({}): {}",
            out.status,
            crate::text::shown_within(err.trim(), 500)
        ));
    }
    std::fs::read(&output).map_err(|e| format!("{}: {e}", output.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_keeps_exactly_the_window_frames() {
        let args = cut_args(Path::new("i.mp4"), Path::new("o.mp4"), 256, 511);
        let vf = args.iter().position(|a| a == "-vf").unwrap();
        // trim's end_frame is exclusive, the window's inclusive
        assert_eq!(
            args[vf + 1],
            "trim=start_frame=256:end_frame=512,setpts=PTS-STARTPTS"
        );
        assert_eq!(args.last().unwrap(), "o.mp4");
        assert!(args.windows(2).any(|w| w == ["-c:v", "libx264"]));
    }

    #[test]
    fn a_missing_ffmpeg_is_a_message() {
        let e = cut("/nonexistent/ffmpeg", b"x", 0, 1).unwrap_err();
        assert!(e.contains("running /nonexistent/ffmpeg"), "{e}");
    }
}
