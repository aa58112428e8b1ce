//! Where `--device cuda` finds CUDA's run-time pieces when they are not installed system-wide:
//! the NVIDIA wheels (`pip install shardflow[cuda]`) in the Python environment the command
//! was installed into.
//!
//! The search order (README "Install"): the system first (the dynamic loader's path for
//! `libnvrtc.so`; `CUDA_PATH`, `/usr/local/cuda`, `/opt/cuda`, `/usr` for the headers NVRTC
//! compiles against, as Burn's CUDA backend looks); then, for what is missing, the
//! `site-packages/nvidia/<component>/lib` folders of, in order, the environment holding the
//! executable (`<prefix>/bin/shardflow`), `$VIRTUAL_ENV` and `$CONDA_PREFIX`. Everything here
//! only reads directories; the binary prepends what it finds to `LD_LIBRARY_PATH` and runs
//! itself again (the loader reads that variable only when a process starts).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The variable that marks a process already started again with the wheels' libraries, so
/// that it happens at most once.
pub const REEXEC_MARKER: &str = "SHARDFLOW_CUDA_WHEELS";

/// What the NVIDIA wheels of some Python environments provide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WheelCuda {
    /// Every `site-packages/nvidia/*/lib` folder, environments in search order, components
    /// by name within one.
    pub lib_dirs: Vec<PathBuf>,
    /// The first `site-packages/nvidia/cuda_runtime` holding `include/cuda_runtime.h`: a
    /// `CUDA_PATH` for the headers NVRTC compiles against.
    pub cuda_path: Option<PathBuf>,
}

impl WheelCuda {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.lib_dirs.is_empty() && self.cuda_path.is_none()
    }
}

/// The Python environment prefixes to search, in order and without repeats: the one holding
/// `exe` (`<prefix>/bin/shardflow`, also `~/.local` for `pip install --user`), then
/// `$VIRTUAL_ENV`, then `$CONDA_PREFIX` (`env` reads a variable).
pub fn python_prefixes(exe: &Path, env: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let mut prefixes: Vec<PathBuf> = Vec::new();
    let from_exe = exe
        .parent()
        .filter(|bin| bin.file_name().is_some_and(|n| n == "bin"))
        .and_then(Path::parent)
        .map(Path::to_path_buf);
    let from_env = ["VIRTUAL_ENV", "CONDA_PREFIX"]
        .into_iter()
        .filter_map(|k| env(k).filter(|v| !v.is_empty()).map(PathBuf::from));
    for prefix in from_exe.into_iter().chain(from_env) {
        if !prefixes.contains(&prefix) {
            prefixes.push(prefix);
        }
    }
    prefixes
}

/// The `site-packages` folders of `prefix`: `lib/python3.*/site-packages` and the same under
/// `lib64`, sorted by name, each followed by its `dist-packages` (Debian's name, as in
/// `/usr/local/lib/python3.11/dist-packages`).
pub fn site_packages(prefix: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for lib in ["lib", "lib64"] {
        for python in sorted_dirs(&prefix.join(lib)) {
            let is_python3 = python
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python3"));
            for name in ["site-packages", "dist-packages"] {
                let site = python.join(name);
                if is_python3 && site.is_dir() && !found.contains(&site) {
                    found.push(site);
                }
            }
        }
    }
    found
}

/// What the NVIDIA wheels installed in `prefixes` (searched in order) provide.
pub fn find_wheel_cuda(prefixes: &[PathBuf]) -> WheelCuda {
    let mut found = WheelCuda::default();
    for site in prefixes.iter().flat_map(|p| site_packages(p)) {
        for component in sorted_dirs(&site.join("nvidia")) {
            let lib = component.join("lib");
            if lib.is_dir() && !found.lib_dirs.contains(&lib) {
                found.lib_dirs.push(lib);
            }
            let is_runtime = component.file_name().is_some_and(|n| n == "cuda_runtime");
            if is_runtime && found.cuda_path.is_none() && has_cuda_headers(&component) {
                found.cuda_path = Some(component);
            }
        }
    }
    found
}

/// The CUDA installation whose `include/` Burn's CUDA backend hands NVRTC, looked up as it
/// does: `$CUDA_PATH`, else `/usr/local/cuda`, `/opt/cuda`, or `/usr` when `/usr/bin/nvcc`
/// exists. `None` when there is none: the backend would panic on its first kernel.
pub fn system_cuda_path(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    if let Some(path) = env("CUDA_PATH") {
        return Some(PathBuf::from(path));
    }
    if Path::new("/usr/local/cuda").exists() {
        Some(PathBuf::from("/usr/local/cuda"))
    } else if Path::new("/opt/cuda").exists() {
        Some(PathBuf::from("/opt/cuda"))
    } else if Path::new("/usr/bin/nvcc").exists() {
        Some(PathBuf::from("/usr"))
    } else {
        None
    }
}

/// Whether `cuda_path` holds the header NVRTC compiles Burn's kernels against.
pub fn has_cuda_headers(cuda_path: &Path) -> bool {
    cuda_path.join("include/cuda_runtime.h").is_file()
}

/// The directory holding cubecl's autotune results and compiled PTX for the CUDA backend:
/// `$SHARDFLOW_CACHE_DIR`, else `$XDG_CACHE_HOME/shardflow`, else `$HOME/.cache/shardflow`;
/// `None` when none of them is set (cubecl's defaults then apply). cubecl keeps its files in
/// `autotune/` and `cuda/` below it, per cubecl version and device, so one directory can be
/// shared by several versions, GPUs and concurrent processes (its cache files are locked).
pub fn cubecl_cache_dir(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("SHARDFLOW_CACHE_DIR")
        .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("shardflow")))
        .or_else(|| set("HOME").map(|d| d.join(".cache/shardflow")))
}

/// `SHARDFLOW_CUDA_FUSION`'s meaning: fusion stays on unless the value is `0`, `off` or
/// `false` (in any case).
pub fn fusion_from_env(value: Option<&str>) -> bool {
    !value.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "off" | "false"
        )
    })
}

/// `SHARDFLOW_CUDA_GEMM`'s meaning: `cublas` (in any case) runs the linear layers through
/// cuBLAS; anything else, or nothing, keeps Burn's kernels.
pub fn gemm_from_env(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("cublas"))
}

/// `dirs` in front of `current` (a `LD_LIBRARY_PATH` value), leaving out those already in it.
pub fn prepend_library_path(dirs: &[PathBuf], current: Option<&OsString>) -> OsString {
    let existing: Vec<PathBuf> = current
        .map(|c| std::env::split_paths(c).collect())
        .unwrap_or_default();
    let new = dirs.iter().filter(|d| !existing.contains(d)).cloned();
    let all: Vec<PathBuf> = new
        .chain(
            existing
                .iter()
                .filter(|p| !p.as_os_str().is_empty())
                .cloned(),
        )
        .collect();
    // a path holding ':' cannot be listed; such a folder is left out rather than split
    std::env::join_paths(all.iter().filter(|p| !p.to_string_lossy().contains(':')))
        .unwrap_or_default()
}

/// The sub-folders of `dir`, sorted by name; none when it cannot be read.
fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    #[test]
    fn the_cubecl_cache_follows_shardflow_then_xdg_then_home() {
        fn env<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| OsString::from(v))
            }
        }
        let all = [
            ("SHARDFLOW_CACHE_DIR", "/scratch/sf"),
            ("XDG_CACHE_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(
            cubecl_cache_dir(env(&all)),
            Some(PathBuf::from("/scratch/sf"))
        );
        assert_eq!(
            cubecl_cache_dir(env(&[
                ("SHARDFLOW_CACHE_DIR", ""),
                ("XDG_CACHE_HOME", "/xdg")
            ])),
            Some(PathBuf::from("/xdg/shardflow"))
        );
        assert_eq!(
            cubecl_cache_dir(env(&[("HOME", "/home/u")])),
            Some(PathBuf::from("/home/u/.cache/shardflow"))
        );
        assert_eq!(cubecl_cache_dir(env(&[])), None);
    }

    #[test]
    fn cublas_is_asked_for_by_name() {
        assert!(!gemm_from_env(None));
        assert!(!gemm_from_env(Some("burn")));
        assert!(!gemm_from_env(Some("")));
        assert!(gemm_from_env(Some("cublas")));
        assert!(gemm_from_env(Some(" cuBLAS ")));
    }

    #[test]
    fn fusion_is_on_unless_switched_off() {
        assert!(fusion_from_env(None));
        assert!(fusion_from_env(Some("1")));
        assert!(fusion_from_env(Some("on")));
        for off in ["0", "off", "OFF", "false", " False "] {
            assert!(!fusion_from_env(Some(off)), "{off:?}");
        }
    }

    #[test]
    fn prefixes_come_from_the_executable_then_the_environment_without_repeats() {
        let env = |k: &str| match k {
            "VIRTUAL_ENV" => Some(OsString::from("/venv")),
            "CONDA_PREFIX" => Some(OsString::from("/conda")),
            _ => None,
        };
        assert_eq!(
            python_prefixes(Path::new("/opt/tools/bin/shardflow"), env),
            [
                PathBuf::from("/opt/tools"),
                PathBuf::from("/venv"),
                PathBuf::from("/conda")
            ]
        );
        // an executable outside a bin/ folder (target/release) says nothing about a prefix
        let same = |k: &str| (k == "VIRTUAL_ENV").then(|| OsString::from("/venv"));
        assert_eq!(
            python_prefixes(Path::new("/venv/bin/shardflow"), same),
            [PathBuf::from("/venv")]
        );
        assert_eq!(
            python_prefixes(Path::new("/src/target/release/shardflow"), |_| None),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn wheel_libraries_are_found_in_environment_order() {
        let root = tempfile::tempdir().unwrap();
        let venv = root.path().join("venv");
        let conda = root.path().join("conda");
        let site = venv.join("lib/python3.12/site-packages/nvidia");
        touch(&site.join("cuda_nvrtc/lib/libnvrtc.so.12"));
        touch(&site.join("cuda_runtime/lib/libcudart.so.12"));
        touch(&site.join("cuda_runtime/include/cuda_runtime.h"));
        touch(&site.join("__init__.py"));
        // a component without lib/ and a Python 2 tree are not searched
        touch(&site.join("empty/README"));
        touch(&venv.join("lib/python2.7/site-packages/nvidia/old/lib/libold.so"));
        let conda_site = conda.join("lib64/python3.11/site-packages/nvidia");
        touch(&conda_site.join("cublas/lib/libcublas.so.12"));
        touch(&conda_site.join("cuda_runtime/include/cuda_runtime.h"));
        let debian = conda.join("lib/python3.11/dist-packages/nvidia");
        touch(&debian.join("cuda_nvrtc/lib/libnvrtc.so.12"));

        let found = find_wheel_cuda(&[venv.clone(), conda.clone(), root.path().join("none")]);
        assert_eq!(
            found.lib_dirs,
            [
                site.join("cuda_nvrtc/lib"),
                site.join("cuda_runtime/lib"),
                debian.join("cuda_nvrtc/lib"),
                conda_site.join("cublas/lib")
            ]
        );
        assert_eq!(found.cuda_path, Some(site.join("cuda_runtime")));
        assert!(!found.is_empty());
        // a runtime wheel without its headers is no CUDA_PATH
        std::fs::remove_file(site.join("cuda_runtime/include/cuda_runtime.h")).unwrap();
        let found = find_wheel_cuda(&[venv, conda]);
        assert_eq!(found.cuda_path, Some(conda_site.join("cuda_runtime")));
        assert!(find_wheel_cuda(&[root.path().join("none")]).is_empty());
    }

    #[test]
    fn library_path_gains_the_new_folders_in_front_once() {
        let dirs = [PathBuf::from("/w/a/lib"), PathBuf::from("/w/b/lib")];
        assert_eq!(prepend_library_path(&dirs, None), "/w/a/lib:/w/b/lib");
        let current = OsString::from("/usr/lib:/w/b/lib");
        assert_eq!(
            prepend_library_path(&dirs, Some(&current)),
            "/w/a/lib:/usr/lib:/w/b/lib"
        );
        assert_eq!(prepend_library_path(&[PathBuf::from("/odd:dir")], None), "");
    }

    #[test]
    fn cuda_path_variable_comes_first() {
        let env = |k: &str| (k == "CUDA_PATH").then(|| OsString::from("/cuda-12.4"));
        assert_eq!(system_cuda_path(env), Some(PathBuf::from("/cuda-12.4")));
        let root = tempfile::tempdir().unwrap();
        assert!(!has_cuda_headers(root.path()));
        touch(&root.path().join("include/cuda_runtime.h"));
        assert!(has_cuda_headers(root.path()));
    }
}
