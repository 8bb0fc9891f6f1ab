"""Mixed precision: which autocast dtype a training step runs in.

bfloat16 keeps float32's exponent range, so it needs no loss scaling: the
matrix multiplies run in bf16 while the losses and the optimizer's master
weights stay float32 (autocast keeps reductions and losses in float32, and the
models cast their outputs to float32 before the loss). fp16 has a narrow range
and needs a gradient scaler; it is offered on CUDA only.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time

import torch

from aekit.errors import ConfigError, unknown
from aekit.inference import evaluating

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CONVOLUTIONAL = ("conv", "fully_conv")  # architectures that "auto" keeps in fp32 on a CPU
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

# Below this many forward FLOPs per example a CPU step is bound by per-operation
# overhead, not by matrix multiplies: bf16 would cost precision and gain nothing.
MIN_FORWARD_FLOPS = 1e6
# bf16 must multiply at least this much faster than fp32 for "auto" to pick it
# (CPUs with AVX512-BF16 or AMX: 3x to 10x; without them bf16 is emulated and slower).
MIN_BF16_SPEEDUP = 1.5


@functools.cache
def cpu_bf16_speedup(size: int = 512, repeats: int = 7) -> float:
    """How much faster this CPU multiplies (size x size) matrices in bf16 autocast than in fp32 (median)."""
    a, b = torch.randn(size, size), torch.randn(size, size)

    def seconds(dtype) -> float:
        times = []
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            a @ b  # warm-up: kernels, caches, thread pool
            for _ in range(repeats):
                start = time.perf_counter()
                a @ b
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    return seconds(None) / seconds(torch.bfloat16)


_COUNTED = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)


def forward_flops(model) -> float:
    """Floating-point operations of encoder and decoder for one example (forward only): 2 per
    multiply-add of every linear and (transposed) convolution layer, counted by forward hooks from
    the shapes one example takes. (torch.utils.flop_counter counts the same, but importing it loads
    torch._dynamo: 1.4 s added to every fit, which calls this to choose threads and precision.)"""
    total = 0.0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Linear):
            total += 2.0 * output.numel() * module.in_features
        elif isinstance(module, torch.nn.Conv2d):  # each output value: in/groups x kh x kw multiply-adds
            total += 2.0 * output.numel() * module.weight[0].numel()
        else:  # transposed: each input value is spread over out/groups x kh x kw outputs
            total += 2.0 * inputs[0].numel() * module.weight[0].numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, _COUNTED)]
    try:
        x = torch.zeros(1, *model.config.input_shape, device=model.device)
        with evaluating(model):
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return total


def resolve(precision: str, device: torch.device, model) -> str:
    """The precision a run uses: 'fp32', 'bf16' or 'fp16'; 'auto' decides from the device and the model."""
    if precision not in PRECISIONS:
        raise unknown("precision", precision, PRECISIONS)
    cuda = device.type == "cuda"
    if precision == "fp16" and not cuda:
        raise ConfigError("precision='fp16' needs a CUDA device (it relies on loss scaling); use 'bf16' on a CPU")
    if precision == "bf16":
        if cuda and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"precision='bf16' is not supported by {torch.cuda.get_device_name(device)}; use 'fp16'")
        if device.type not in ("cpu", "cuda"):
            raise ConfigError(f"precision='bf16' is supported on cpu and cuda, not {device.type}")
    if precision != "auto":
        return precision
    c = model.config
    # Linear models are compared with PCA (and factor analysis with scikit-learn) to a few parts in a
    # thousand: keep them exact.
    if c.init == "pca" or c.activation == "linear" or c.posterior == "exact":
        return "fp32"
    if cuda:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    # CPU convolutions gain little from bf16 (1.07x for the conv VAE of benchmarks/speed.py,
    # against 1.5x for the MLP VAE): not worth the lost mantissa bits. The same holds for the
    # fully convolutional models, which are nothing but convolutions (issue 25).
    if device.type != "cpu" or c.architecture in CONVOLUTIONAL or forward_flops(model) < MIN_FORWARD_FLOPS:
        return "fp32"
    return "bf16" if cpu_bf16_speedup() >= MIN_BF16_SPEEDUP else "fp32"


def autocast(device: torch.device, precision: str):
    """The autocast context of a training step in `precision` (a no-op for fp32)."""
    dtype = DTYPES[precision]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)
