//! Where and in which precision the encoder runs: `--device cpu|cuda[:N]`,
//! `--t5-dtype fp32|bf16|fp16`, and the dispatch from those run-time choices to a Burn
//! backend type.

use burn::tensor::backend::Backend;

use super::ModelError;

/// A compute device chosen on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU (Burn's flex backend).
    #[default]
    Cpu,
    /// A CUDA GPU by index (needs the `cuda` feature and an NVIDIA driver).
    Cuda(usize),
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| format!("expected cpu, cuda or cuda:N, got {s:?}")),
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The encoder's compute precision. The output is always rounded to fp16 (SPEC §5); fp32
/// is the reference's choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats, as the reference computes.
    #[default]
    Fp32,
    /// bfloat16 weights and activations.
    Bf16,
    /// IEEE half precision, with Hugging Face's overflow guards (fp32 norms and softmax,
    /// clamping after each residual).
    Fp16,
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            "fp16" => Ok(Precision::Fp16),
            _ => Err(format!("expected fp32, bf16 or fp16, got {s:?}")),
        }
    }
}

/// Work to run on whichever backend the run-time choices select.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B` and its `device`.
    fn run<B: Backend>(self, device: B::Device) -> Self::Output;
}

/// Runs `job` on the backend for `device` and `precision`, or says clearly why it cannot.
pub fn dispatch<J: BackendJob>(
    device: DeviceSpec,
    precision: Precision,
    job: J,
) -> Result<J::Output, ModelError> {
    match (device, precision) {
        (DeviceSpec::Cpu, Precision::Fp32) => Ok(job.run::<super::CpuBackend>(Default::default())),
        (DeviceSpec::Cpu, p) => Err(ModelError::Unsupported(format!(
            "--t5-dtype {} runs on --device cuda only; the CPU backend computes in fp32",
            match p {
                Precision::Bf16 => "bf16",
                _ => "fp16",
            }
        ))),
        #[cfg(feature = "cuda")]
        (DeviceSpec::Cuda(index), precision) => {
            cuda::probe()?;
            cuda::configure_once();
            let dev = burn::backend::cuda::CudaDevice { index };
            use cuda::{Fused, Unfused};
            // cuBLAS reads the unfused backend's buffers; fusion handles are not buffers
            let cublas = crate::model::cublas::enabled();
            if cublas {
                tracing::info!("SHARDFLOW_CUDA_GEMM=cublas: linear layers through cuBLAS, without fusion");
            }
            Ok(match (precision, cuda::fusion_enabled() && !cublas) {
                (Precision::Fp32, true) => job.run::<Fused<f32>>(dev),
                (Precision::Bf16, true) => job.run::<Fused<half::bf16>>(dev),
                (Precision::Fp16, true) => job.run::<Fused<half::f16>>(dev),
                (Precision::Fp32, false) => job.run::<Unfused<f32>>(dev),
                (Precision::Bf16, false) => job.run::<Unfused<half::bf16>>(dev),
                (Precision::Fp16, false) => job.run::<Unfused<half::f16>>(dev),
            })
        }
        #[cfg(not(feature = "cuda"))]
        (DeviceSpec::Cuda(_), _) => Err(ModelError::Unsupported(
            "this shardflow was built without CUDA support; install the wheel (`pip install shardflow[cuda]`) or rebuild with `cargo build --release --features cuda`".into(),
        )),
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::ModelError;
    use crate::model::cuda_env::{cubecl_cache_dir, fusion_from_env};

    /// burn's CUDA backend without fusion: one kernel per tensor operation.
    pub type Unfused<F> =
        burn_cubecl::CubeBackend<burn_cubecl::cubecl::cuda::CudaRuntime, F, i32, u8>;
    /// burn's CUDA backend with fusion (`burn::backend::Cuda` with its default features).
    pub type Fused<F> = burn_fusion::Fusion<Unfused<F>>;

    /// Whether kernels are fused: on unless `SHARDFLOW_CUDA_FUSION` is `0`/`off`/`false`
    /// (a switch for comparing the two and for working around a fusion fault).
    pub fn fusion_enabled() -> bool {
        fusion_from_env(std::env::var("SHARDFLOW_CUDA_FUSION").ok().as_deref())
    }

    /// Points cubecl's autotune results and compiled PTX at shardflow's cache directory
    /// (see [`cubecl_cache_dir`]) once per process, before the first kernel. cubecl's own
    /// default keeps autotune results under the `target/` of whatever Cargo project the
    /// current directory is in, and compiles every kernel again in each process. A
    /// `cubecl.toml` and the `CUBECL_*` variables are still read; a cache location they set
    /// is kept.
    pub fn configure_once() {
        static DONE: std::sync::Once = std::sync::Once::new();
        DONE.call_once(|| {
            use burn_cubecl::cubecl::config::cache::CacheConfig;
            use burn_cubecl::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
            if CubeClRuntimeConfig::storage().lock().is_some() {
                return; // already read by cubecl: too late to change
            }
            let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
            let Some(dir) = cubecl_cache_dir(|k| std::env::var_os(k)) else {
                CubeClRuntimeConfig::set(config);
                return;
            };
            if matches!(config.autotune.cache, CacheConfig::Target) {
                config.autotune.cache = CacheConfig::File(dir.clone());
            }
            if config.compilation.cache.is_none() {
                config.compilation.cache = Some(CacheConfig::File(dir.clone()));
            }
            tracing::debug!(dir = %dir.display(), "cubecl autotune and PTX cache");
            CubeClRuntimeConfig::set(config);
        });
    }

    /// Loads the CUDA driver and NVRTC before Burn does: Burn would panic on a device thread
    /// where they are missing; here the panic is caught and becomes a clear error.
    pub fn probe() -> Result<(), ModelError> {
        // the library's panic is expected here; keep its message off the terminal
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result = probe_quietly();
        std::panic::set_hook(hook);
        result
    }

    fn probe_quietly() -> Result<(), ModelError> {
        let driver = std::panic::catch_unwind(cudarc::driver::result::init);
        match driver {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ModelError::Unsupported(format!("CUDA driver failed to initialise: {e:?}"))),
            Err(_) => {
                return Err(ModelError::Unsupported(
                    "no CUDA driver found (libcuda.so could not be loaded); is this a GPU host with the NVIDIA driver installed?".into(),
                ))
            }
        }
        if !nvrtc_loads_quietly() {
            return Err(ModelError::Unsupported(
                "CUDA's NVRTC library (libnvrtc.so) could not be loaded; install the CUDA toolkit, or `pip install shardflow[cuda]` (the NVIDIA wheels, found in the environment shardflow is installed into), or add its folder to LD_LIBRARY_PATH".into(),
            ));
        }
        // Burn hands NVRTC the toolkit's include/ and panics on its first kernel without it
        use crate::model::cuda_env::{has_cuda_headers, system_cuda_path};
        match system_cuda_path(|k| std::env::var_os(k)) {
            Some(path) if has_cuda_headers(&path) => Ok(()),
            found => Err(ModelError::Unsupported(format!(
                "CUDA's headers (include/cuda_runtime.h) were not found{}: set CUDA_PATH to a CUDA toolkit, or `pip install shardflow[cuda]` (the nvidia-cuda-runtime wheel)",
                found.map(|p| format!(" in {}", p.display())).unwrap_or_default()
            ))),
        }
    }

    /// Whether NVRTC loads (and compiles an empty kernel) from the current library path.
    pub fn nvrtc_loads() -> bool {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let loads = nvrtc_loads_quietly();
        std::panic::set_hook(hook);
        loads
    }

    fn nvrtc_loads_quietly() -> bool {
        matches!(
            std::panic::catch_unwind(|| cudarc::nvrtc::compile_ptx(
                "extern \"C\" __global__ void probe() {}"
            )),
            Ok(Ok(_))
        )
    }
}

#[cfg(feature = "cuda")]
pub use cuda::nvrtc_loads;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_devices_and_precisions() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert!("gpu".parse::<DeviceSpec>().is_err());
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert!("fp8".parse::<Precision>().is_err());
    }

    struct Name;
    impl BackendJob for Name {
        type Output = String;
        fn run<B: Backend>(self, _device: B::Device) -> String {
            B::name(&Default::default())
        }
    }

    #[test]
    fn cpu_runs_fp32_only() {
        assert!(dispatch(DeviceSpec::Cpu, Precision::Fp32, Name).is_ok());
        let err = dispatch(DeviceSpec::Cpu, Precision::Fp16, Name).unwrap_err();
        assert!(err.to_string().contains("--device cuda"), "{err}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_is_a_clear_error() {
        let err = dispatch(DeviceSpec::Cuda(0), Precision::Fp32, Name).unwrap_err();
        assert!(err.to_string().contains("--features cuda"), "{err}");
    }
}
