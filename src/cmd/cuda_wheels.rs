//! `--device cuda` with CUDA's run-time libraries from the NVIDIA wheels
//! (`pip install shardflow[cuda]`): when NVRTC or CUDA's headers are missing from the system,
//! the command runs itself again with the wheels' folders in front of `LD_LIBRARY_PATH` (the
//! loader reads it only at start) and, without a system toolkit, `CUDA_PATH` at the runtime
//! wheel. Search order: [`shardflow::model::cuda_env`].

use std::os::unix::process::CommandExt;

use shardflow::model::cuda_env::{self, REEXEC_MARKER};

/// Runs this command again with the NVIDIA wheels' libraries when the system lacks what
/// `--device cuda` needs and the wheels have it; returns when there is nothing to do (or the
/// new start failed), leaving the device probe to say what is missing.
pub(crate) fn use_wheel_libraries() {
    let env = |k: &str| std::env::var_os(k);
    if env(REEXEC_MARKER).is_some() {
        return;
    }
    let headers = cuda_env::system_cuda_path(env).is_some_and(|p| cuda_env::has_cuda_headers(&p));
    if headers && shardflow::model::device::nvrtc_loads() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let wheels = cuda_env::find_wheel_cuda(&cuda_env::python_prefixes(&exe, env));
    if wheels.is_empty() {
        return;
    }
    let library_path =
        cuda_env::prepend_library_path(&wheels.lib_dirs, env("LD_LIBRARY_PATH").as_ref());
    tracing::info!(
        "using CUDA libraries from the NVIDIA wheels: {}",
        library_path.to_string_lossy()
    );
    let mut again = std::process::Command::new(&exe);
    again
        .args(std::env::args_os().skip(1))
        .env("LD_LIBRARY_PATH", library_path)
        .env(REEXEC_MARKER, "1");
    if let (false, Some(path)) = (headers, &wheels.cuda_path) {
        again.env("CUDA_PATH", path);
    }
    // exec returns only when the new start failed
    let e = again.exec();
    tracing::warn!(
        "could not start {} again with the NVIDIA wheels' libraries: {e}",
        exe.display()
    );
}
