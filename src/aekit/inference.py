"""The one batched inference path: `apply(model, data, fn)`.

Everything that runs a trained model over data (encode, decode, reconstruct, the
posterior, anomaly scores, metrics, the estimators, the CLI) goes through `apply`.
It owns what every such loop needs and what copies of it used to get subtly wrong:

- eval mode (no corruption, no dropout), restored to the previous mode afterwards;
- no gradients;
- batches of `batch_size` rows, read lazily from memory-mapped arrays;
- the device (each batch moves to the model's device) and the dtype (float32, or a
  float64 copy of the model for float64 callers such as the scikit-learn estimators);
- the return type: NumPy in (arrays, memmaps, Datasets) gives NumPy out, tensors give tensors;
- class labels for a conditional model, batched with their rows;
- threads: a pass too small to gain from several runs on one (`threads_for_work`), and never more
  than the cores this process may use;
- memory: a batch's activations are checked against the memory limit before the pass (aekit.budget).
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable

import torch

from aekit.budget import check_memory, cores
from aekit.data.validation import as_array, check_labels, check_shape, row_batches
from aekit.errors import DataError

BATCH_SIZE = 1024  # rows per forward pass: large enough to amortise overhead, small enough for any model
# Below this many floating-point operations per call (a training step's forward and backward, or one
# batch of inference), a second thread costs more in synchronisation than it saves, and on a busy
# machine far more: a table model's final metrics took 70x longer on 2 threads than on 1 with the
# machine's two cores taken by other work (benchmarks/threads.py, benchmarks/tables_speed.py).
SMALL_WORK_FLOPS = 60e6


def threads_for_work(flops: float, requested: int | None = None) -> int:
    """Torch threads for work of `flops` operations per call: as requested (at most the cores this process
    may use: more only adds contention), else 1 for small work, else the cores that are not busy (load
    average), at least 1."""
    available = cores()
    if requested is not None:
        return max(1, min(int(requested), available))
    if available == 1 or flops < SMALL_WORK_FLOPS:
        return 1
    return max(1, min(available, round(available - os.getloadavg()[0])))


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's intra-op thread count set to n inside, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pass_threads(model, rows: int) -> int:
    """Threads for a forward pass of `rows` rows: one for a small model's pass (2 operations per
    parameter and row: a lower bound of its cost), else the threads torch is set to."""
    work = 2.0 * sum(p.numel() for p in model.parameters()) * rows
    return 1 if work < SMALL_WORK_FLOPS else torch.get_num_threads()


def check_pass_memory(model, rows: int, name: str = "x") -> None:
    """ConfigError unless a pass of `rows` rows without gradients fits the memory limit: the batch and
    about two layer outputs at once (the widest, from ModelConfig.size: nothing is run to find it)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "size"):
        return
    values = config.size().widest * 2 + config.input_size
    check_memory(f"a batch of {rows} rows of {name}", 4 * rows * values)


@contextlib.contextmanager
def evaluating(model: torch.nn.Module):
    """Eval mode and no gradients inside; the model's previous mode is restored on exit."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def apply(model, data, fn: Callable, *, batch_size: int = BATCH_SIZE, dtype: torch.dtype = torch.float32,
          shape=None, rows: torch.Tensor | None = None, numpy: bool | None = None, name: str = "x", labels=None):
    """fn(model, batch) over every row of data, in batches, in eval mode, without gradients.

    data: (N, *shape) tensor, array, memory-mapped array or Dataset; shape defaults to the
    model's input_shape (pass (latent_dim,) to decode codes). fn returns a tensor of N rows
    per batch, or a tuple of them (then a tuple is returned). A tensor gives tensors on the
    model's device, anything else NumPy arrays (numpy=True/False forces one). `rows` limits
    the pass to those rows, in that order. dtype=torch.float64 runs a float64
    copy of the model: float32 matrix products round differently for different batch sizes,
    in float64 those differences stay far below any tolerance a caller would state.
    `labels` (one class label per row of data, for a conditional model) makes it fn(model, batch,
    batch_labels), the labels an int64 tensor on the model's device.
    """
    as_numpy = not isinstance(data, torch.Tensor) if numpy is None else numpy
    x = as_array(data, name, dtype)
    check_shape(x, model.config.input_shape if shape is None else shape, name)
    if x.shape[0] == 0 or (rows is not None and len(rows) == 0):
        raise DataError(f"{name} is empty (0 examples)")
    y = None if labels is None else check_labels(labels, x.shape[0], model.config.n_classes)
    order = torch.arange(x.shape[0]) if rows is None else torch.as_tensor(rows)
    check_pass_memory(model, min(batch_size, len(order)), name)
    net = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
    device = _device(net)
    parts = []
    with evaluating(net), torch_threads(pass_threads(net, min(batch_size, len(order)))):
        for start, batch in zip(range(0, len(order), batch_size), row_batches(x, batch_size, rows)):
            finite = torch.isfinite(batch).flatten(1).all(1)
            if not bool(finite.all()):
                first = int(order[start + int((~finite).nonzero()[0])])
                raise DataError(f"{name} holds NaN or infinite values (first in example {first}); clean or drop them first")
            args = (batch.to(device=device, dtype=dtype),)
            if y is not None:
                args += (y[order[start:start + batch_size]].to(device),)
            parts.append(fn(net, *args))
    several = isinstance(parts[0], tuple)
    columns = zip(*parts) if several else [parts]
    joined = tuple(torch.cat(column).cpu().numpy() if as_numpy else torch.cat(column) for column in columns)
    return joined if several else joined[0]


def codes(model, data, batch_size: int = BATCH_SIZE):
    """The deterministic codes (posterior means for a VAE) of every example, (N, latent_dim), as NumPy."""
    return apply(model, data, lambda m, b: m.code(b), batch_size=batch_size, numpy=True, name="data")
