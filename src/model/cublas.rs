//! The encoder's linear layers through cuBLAS, an opt-in experiment on the unfused CUDA
//! backend: `SHARDFLOW_CUDA_GEMM=cublas`. The only module where `unsafe` is allowed.
//!
//! Why: cubecl 0.10's matrix kernels have no Hopper warpgroup MMA and stay well below cuBLAS on
//! an H100, and the linear layers hold almost all of a T5 encoder's FLOPs. Everything else
//! (attention, norms, softmax) stays Burn.
//!
//! How: a layer's input and weight are Burn tensors of the unfused CUDA backend
//! ([`burn_cubecl::CubeBackend`] on CUDA), whose buffers are plain device allocations on the
//! CUDA primary context, which cuBLAS shares. cubecl does not expose the stream it queues
//! kernels on, so each product waits for cubecl's queue, runs on the legacy default stream and
//! waits for cuBLAS before cubecl may read the result: two host waits per product, which
//! [`benches/gpu/run_device.sh`] weighs against the faster kernel. Under fusion (the default)
//! the tensors are fusion handles and every layer stays Burn's.
//!
//! fp32 runs as TF32 (`CUBLAS_COMPUTE_32F_FAST_TF32`), as cubecl's own fp32 products do;
//! bf16 and fp16 accumulate in fp32, as PyTorch does.
#![allow(unsafe_code)]

use std::any::Any;
use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::OnceLock;

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::{DType, TensorPrimitive};
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::cubecl::future::block_on;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use cudarc::cublas::{result as blas, sys};
use cudarc::driver::result as driver;

use super::cuda_env::gemm_from_env;

/// Whether `SHARDFLOW_CUDA_GEMM=cublas` asks for cuBLAS (read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| gemm_from_env(std::env::var("SHARDFLOW_CUDA_GEMM").ok().as_deref()))
}

/// `layer(x)` for `x` of shape `[1, rows, in]`: through cuBLAS when it is [`enabled`] and `B`
/// is the unfused CUDA backend, else Burn's `Linear`.
pub fn linear<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    if enabled() && layer.bias.is_none() {
        if let Some(y) = try_matmul(&x, &layer.weight.val()) {
            return y;
        }
    }
    layer.forward(x)
}

fn downcast<T: 'static, U: 'static>(value: T) -> Option<U> {
    let boxed: Box<dyn Any> = Box::new(value);
    boxed.downcast::<U>().ok().map(|b| *b)
}

/// `x · w` (`[1, m, k]` · `[k, n]`) through cuBLAS, or `None` when the backend is not the
/// unfused CUDA one, the dtype is not a float cuBLAS takes, or a call fails (logged).
fn try_matmul<B: Backend>(x: &Tensor<B, 3>, w: &Tensor<B, 2>) -> Option<Tensor<B, 3>> {
    let [one, m, k] = x.dims();
    let [k2, n] = w.dims();
    if one != 1 || k != k2 || m == 0 || n == 0 || k == 0 {
        return None;
    }
    let xc: CubeTensor<CudaRuntime> = downcast(x.clone().into_primitive().tensor())?;
    let wc: CubeTensor<CudaRuntime> = downcast(w.clone().into_primitive().tensor())?;
    if xc.dtype != wc.dtype || xc.qparams.is_some() || wc.qparams.is_some() {
        return None;
    }
    let out = match gemm(xc, wc, m, n, k) {
        Ok(out) => out,
        Err(e) => {
            tracing::warn!("cuBLAS product failed, using Burn's: {e}");
            return None;
        }
    };
    let primitive: B::FloatTensorPrimitive = downcast(out)?;
    Some(Tensor::from_primitive(TensorPrimitive::Float(primitive)))
}

/// A thread's cuBLAS handle, the device it was made for and that device's primary context.
type ThreadBlas = (usize, sys::cublasHandle_t, cudarc::driver::sys::CUcontext);

thread_local! {
    static HANDLE: RefCell<Option<ThreadBlas>> = const { RefCell::new(None) };
}

fn gemm(
    x: CubeTensor<CudaRuntime>,
    w: CubeTensor<CudaRuntime>,
    m: usize,
    n: usize,
    k: usize,
) -> Result<CubeTensor<CudaRuntime>, String> {
    let (data_type, compute, elem) = match x.dtype {
        DType::F32 => (
            sys::cudaDataType::CUDA_R_32F,
            sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
            4,
        ),
        DType::BF16 => (
            sys::cudaDataType::CUDA_R_16BF,
            sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            2,
        ),
        DType::F16 => (
            sys::cudaDataType::CUDA_R_16F,
            sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            2,
        ),
        other => return Err(format!("dtype {other:?}")),
    };
    let x = if x.is_contiguous() {
        x
    } else {
        into_contiguous(x)
    };
    // w is [k, n] row-major, or its transpose stored as [n, k] row-major; anything else is
    // made row-major first
    let w_strides = w.meta.strides().to_vec();
    let (w, w_transposed) = if w_strides == [n, 1] {
        (w, false)
    } else if w_strides == [1, k] {
        (w, true)
    } else {
        (into_contiguous(w), false)
    };
    let client = x.client.clone();
    let device = x.device.clone();
    let out_handle = client.empty(m * n * elem);
    let out = CubeTensor::new_contiguous(
        client.clone(),
        device.clone(),
        [1, m, n].into(),
        out_handle,
        x.dtype,
    );
    // every kernel writing x and w has run, and the three buffers stay alive (held by the
    // ManagedResources and tensors) until cuBLAS is done
    block_on(client.sync()).map_err(|e| format!("waiting for cubecl: {e:?}"))?;
    let xr = client
        .get_resource(x.handle.clone())
        .map_err(|e| format!("{e:?}"))?;
    let wr = client
        .get_resource(w.handle.clone())
        .map_err(|e| format!("{e:?}"))?;
    let or = client
        .get_resource(out.handle.clone())
        .map_err(|e| format!("{e:?}"))?;
    let (alpha, beta) = (1.0f32, 0.0f32);
    // Row-major C[m, n] = X[m, k] · W[k, n] is column-major Cᵀ (n × m) = Wᵀ (n × k) · Xᵀ (k × m):
    // row-major X read column-major is Xᵀ with leading dimension k; row-major W is Wᵀ with
    // leading dimension n; W stored transposed ([n, k] row-major) is W itself, leading
    // dimension k, hence the transpose flag.
    let (op_w, ld_w) = if w_transposed {
        (sys::cublasOperation_t::CUBLAS_OP_T, k)
    } else {
        (sys::cublasOperation_t::CUBLAS_OP_N, n)
    };
    with_handle(device.index, |handle| {
        // Every stream of the context idle, cubecl's others too: a buffer written on another
        // thread's stream (the weights, uploaded at load) is complete as well.
        driver::ctx::synchronize().map_err(|e| format!("waiting for the device: {e:?}"))?;
        // SAFETY: the three pointers are live device allocations of at least m*k, k*n and
        // m*n elements of `data_type` (sizes checked by Burn's shapes and cubecl's handles,
        // offsets applied by cubecl's storage), on the primary context made current by
        // `with_handle`; nothing else runs on the device (synchronised above), and the
        // context is synchronised again before any cubecl kernel can read `out`.
        unsafe {
            blas::gemm_ex(
                handle,
                op_w,
                sys::cublasOperation_t::CUBLAS_OP_N,
                n as i32,
                m as i32,
                k as i32,
                (&alpha as *const f32).cast::<c_void>(),
                wr.resource().ptr as *const c_void,
                data_type,
                ld_w as i32,
                xr.resource().ptr as *const c_void,
                data_type,
                k as i32,
                (&beta as *const f32).cast::<c_void>(),
                or.resource().ptr as *mut c_void,
                data_type,
                n as i32,
                compute,
                sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
            .map_err(|e| format!("cublasGemmEx: {e:?}"))?;
        }
        driver::ctx::synchronize().map_err(|e| format!("waiting for cuBLAS: {e:?}"))
    })?;
    drop((xr, wr, or, x, w));
    Ok(out)
}

/// Runs `f` with this thread's cuBLAS handle for CUDA device `index`, its primary context
/// current.
fn with_handle<T>(
    index: usize,
    f: impl FnOnce(sys::cublasHandle_t) -> Result<T, String>,
) -> Result<T, String> {
    HANDLE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(i, _, _)| *i != index) {
            let dev = driver::device::get(index as i32).map_err(|e| format!("{e:?}"))?;
            // SAFETY: retaining the primary context of a valid device; it is never released,
            // like cubecl's own retain of it, so it outlives the handle
            let ctx = unsafe { driver::primary_ctx::retain(dev) }.map_err(|e| format!("{e:?}"))?;
            // SAFETY: ctx was just retained; cuBLAS binds the handle to the current context
            unsafe { driver::ctx::set_current(ctx) }.map_err(|e| format!("{e:?}"))?;
            let handle = blas::create_handle().map_err(|e| format!("cublasCreate: {e:?}"))?;
            *slot = Some((index, handle, ctx));
        }
        let (_, handle, ctx) = (*slot).expect("set above");
        // SAFETY: ctx is retained for the process's life (above)
        unsafe { driver::ctx::set_current(ctx) }.map_err(|e| format!("{e:?}"))?;
        f(handle)
    })
}
