"""The fit loop: shuffled index batches over one in-memory tensor (or a memmap),
validation, early stopping, gradient clipping, NaN guard, per-epoch atomic
checkpoints and exact resume.

Read top to bottom: `fit` checks everything, plans the stages (one, or the
stacked autoencoder's greedy layers then fine-tuning), and runs each stage's
epochs with `_train_epoch` and `evaluate_loss`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import distributed
from .errors import CheckpointError, ConfigError, TrainingError, unknown
from .precision import PRECISIONS, resolve as resolve_precision
from .precision import autocast as precision_autocast
from .validation import as_array, check_data, take


@dataclass
class FitOptions:
    epochs: int = 10  # passes over the training rows (per stage for stacked pretraining: pretrain_epochs)
    batch_size: int = 128  # examples per optimizer step
    lr: float = 1e-3  # Adam learning rate
    seed: int = 0  # validation split, shuffling, corruption noise and VAE sampling
    val_fraction: float = 0.1  # held out when x_val is not given (0 = no validation)
    patience: int | None = None  # early stopping: epochs without validation improvement; restores the best weights
    clip_grad_norm: float | None = None  # clip the global gradient norm to this value
    weight_decay: float = 0.0  # Adam's L2 weight decay
    # "auto": bf16 autocast where the device multiplies bf16 fast and the model is big enough
    # to gain (precision.resolve); "fp32"; "bf16"; "fp16" (CUDA only, with loss scaling).
    precision: str = "auto"
    # "constant", or "cosine": linear warm-up over the first 5% of steps, then cosine decay
    # to zero (Loshchilov & Hutter, SGDR, 2017); lets a larger lr and batch train fast and end smooth.
    lr_schedule: str = "constant"

    def validate(self) -> FitOptions:
        _int_at_least("epochs", self.epochs, 1)
        _int_at_least("batch_size", self.batch_size, 1)
        _int_at_least("seed", self.seed, 0)
        if self.patience is not None:
            _int_at_least("patience", self.patience, 1)
        for name, value, allow_none in (("lr", self.lr, False), ("clip_grad_norm", self.clip_grad_norm, True)):
            if value is None and allow_none:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not isinstance(self.val_fraction, (int, float)) or not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must lie in [0, 1), got {self.val_fraction!r}")
        if self.precision not in PRECISIONS:
            raise unknown("precision", self.precision, PRECISIONS)
        if self.lr_schedule not in LR_SCHEDULES:
            raise unknown("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        return self


LR_SCHEDULES = ("constant", "cosine")
WARMUP_FRACTION = 0.05


def learning_rate(opts: FitOptions, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step `step` (0-based) of a stage of `total_steps` steps."""
    if opts.lr_schedule == "constant":
        return opts.lr
    warmup = max(1, round(WARMUP_FRACTION * total_steps))
    if step < warmup:
        return opts.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return opts.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _int_at_least(name, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")


class History(list):
    """One dict per epoch: stage, epoch, seconds, train_<term>, val_<term>."""

    @property
    def stages(self) -> list[str]:
        return list(dict.fromkeys(row["stage"] for row in self))

    def stage(self, name: str) -> list[dict]:
        return [row for row in self if row["stage"] == name]

    def to_csv(self) -> str:
        columns = list(dict.fromkeys(k for row in self for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self)
        return buf.getvalue()


@dataclass
class Stage:
    """One optimisation phase: `model` (sharing parameters with the main model) trained on `features(data)`."""

    name: str
    model: torch.nn.Module
    epochs: int
    features: Callable | None = None  # maps the main input rows to this stage's input (stacked layers)


def resolve_device(device) -> torch.device:
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device={device!r} is not a torch device; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was asked for, but no CUDA device is available")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device='mps' was asked for, but MPS is not available")
    return dev


_RESIDENT_BYTES = 1 << 30  # training data up to this size are moved to the GPU once


def _split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train rows, validation rows), a seeded random split."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = 0 if fraction == 0 or n < 2 else min(n - 1, max(1, round(n * fraction)))
    return perm[n_val:], perm[:n_val]


def _batches(n: int, batch_size: int, generator=None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return order.split(batch_size)


@torch.no_grad()
def evaluate_loss(model, data, rows=None, batch_size: int = 1024) -> dict[str, float]:
    """Mean loss terms over data[rows] in eval mode (no corruption), plus mse_per_feature."""
    was_training = model.training
    model.eval()
    rows = torch.arange(data.shape[0]) if rows is None else rows
    sums: dict[str, torch.Tensor] = {}
    for idx in _batches(len(rows), batch_size):
        xb = take(data, rows[idx]).to(model.device)
        terms = model.loss(xb)
        x_hat = model.output(model.decoder(model.code(xb)))
        terms.tensors["mse_per_feature"] = (x_hat - xb).pow(2).mean()
        for k, v in terms.tensors.items():
            sums[k] = sums.get(k, 0) + v * len(idx)
    model.train(was_training)
    return {k: float(v) / len(rows) for k, v in sums.items()}


class Objective(torch.nn.Module):
    """model.loss as a forward pass, so that DistributedDataParallel sees and synchronises it."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        terms = self.model.loss(x)
        return terms.total, terms.tensors


@dataclass
class Step:
    """What one optimizer step needs besides the batch: built once per stage."""

    objective: torch.nn.Module  # Objective, in DDP when distributed
    optimizer: torch.optim.Optimizer
    autocast: Callable  # () -> the precision's autocast context
    scaler: object | None  # fp16 gradient scaler (CUDA only)
    dist: distributed.Context
    total_steps: int  # optimizer steps of the whole stage (the lr schedule's length)


def _train_epoch(model, data, rows, step: Step, opts: FitOptions, generator, bar, first_step: int) -> dict[str, float]:
    model.train()
    sums: dict[str, torch.Tensor] = {}
    params = [p for p in model.parameters() if p.requires_grad]
    dev = model.device
    for i, idx in enumerate(_batches(len(rows), opts.batch_size, generator)):
        mine, weight = step.dist.shard(idx)
        xb = take(data, rows[mine]).to(dev, non_blocking=True)
        for group in step.optimizer.param_groups:
            group["lr"] = learning_rate(opts, first_step + i, step.total_steps)
        with step.autocast():
            total, terms = step.objective(xb)
        loss = total if weight == 1.0 else total * weight
        step.optimizer.zero_grad(set_to_none=True)
        # inputs=params: no gradient for the batch itself (the contractive penalty makes it require grad).
        (loss if step.scaler is None else step.scaler.scale(loss)).backward(inputs=params)
        if step.scaler is not None:
            step.scaler.unscale_(step.optimizer)
        if opts.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, opts.clip_grad_norm)
        if step.scaler is not None:
            step.scaler.step(step.optimizer)
            step.scaler.update()
        else:
            step.optimizer.step()
        rows_here = len(mine) if weight else 0
        for k, v in terms.items():  # accumulate on device: no host sync per step
            sums[k] = sums.get(k, 0) + v.float() * rows_here
        bar.update(1)
    names = list(sums)
    totals = step.dist.sum(torch.stack([sums[k] for k in names]))  # one all-reduce per epoch
    return {k: float(v) / len(rows) for k, v in zip(names, totals.tolist())}


def _progress(total: int, desc: str, verbose: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=True, disable=not verbose or not sys.stderr.isatty())


def _plan(model, opts: FitOptions) -> list[Stage]:
    stages = []
    if model.config.kind == "stacked" and model.config.pretrain_epochs > 0:
        from .stacked import greedy_stages

        stages += greedy_stages(model)
    return stages + [Stage("finetune" if stages else "train", model, opts.epochs)]


# ----- training state: everything resume needs, in one safetensors file -----


def _state_tensors(optimizer, shuffle, best, device) -> tuple[dict, dict]:
    tensors, scalars = {}, {}
    state = optimizer.state_dict()
    for pid, slots in state["state"].items():
        for key, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.shuffle"] = shuffle.get_state()
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    for name, value in (best or {}).items():
        tensors[f"best.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer, tensors: dict, meta: dict) -> None:
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, slot = key.split(".", 2)
            state.setdefault(int(pid), {})[slot] = value
    for pid, slots in meta["optimizer"]["scalars"].items():
        state.setdefault(int(pid), {}).update(slots)
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})


def _make_optimizer(model, opts: FitOptions):
    """Adam, fused into one kernel per step where this PyTorch supports it (CPU since 2.4, CUDA), else foreach."""
    try:
        return torch.optim.Adam(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay, foreach=True)


def _output_bias_init(model, data, rows, max_rows: int = 10000) -> None:
    """Start the decoder's output at the data mean: its last bias = logit(mean) for bce, the mean otherwise.

    Without it, sigmoid (or tanh) codes on MNIST-like data can saturate in the first
    steps while the decoder learns the mean image, and never recover (seen with a
    single sigmoid code layer; the usual remedy of initialising the final bias from
    the data, cf. Karpathy, "A recipe for training neural networks", 2019).
    """
    last = next((m for m in reversed(list(model.decoder.modules()))
                 if isinstance(m, (torch.nn.Linear, torch.nn.ConvTranspose2d)) and m.bias is not None), None)
    if last is None:
        return
    sample = take(data, rows[:max_rows])
    mean = sample.mean(dim=0)
    if isinstance(last, torch.nn.ConvTranspose2d):
        mean = mean.flatten(1).mean(1)  # one bias per output channel
    else:
        mean = mean.flatten()
    if mean.shape != last.bias.shape:
        return
    if model.config.reconstruction == "bce":
        mean = torch.logit(mean.clamp(1e-3, 1 - 1e-3))
    with torch.no_grad():
        last.bias.copy_(mean.to(last.bias.device))


def _pca_init(model, data, rows) -> None:
    """Closed-form start for the linear autoencoder: encoder = top components, decoder = their transpose."""
    from sklearn.decomposition import PCA

    from .nets import linears

    flat = take(data, rows).flatten(1).numpy()
    k = model.config.latent_dim
    if k > min(flat.shape):
        return  # more components than the data has: random start instead
    pca = PCA(n_components=k, svd_solver="full").fit(flat)
    w = torch.from_numpy(pca.components_).float()
    mean = torch.from_numpy(pca.mean_).float()
    enc, dec = linears(model.encoder)[0], linears(model.decoder)[0]
    with torch.no_grad():
        enc.weight.copy_(w)
        enc.bias.copy_(-(w @ mean))
        dec.weight.copy_(w.T)
        dec.bias.copy_(mean)


def fit(
    model,
    x,
    x_val=None,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    out=None,
    resume: bool = False,
    overwrite: bool = False,
    val_fraction: float = 0.1,
    patience: int | None = None,
    clip_grad_norm: float | None = None,
    weight_decay: float = 0.0,
    precision: str = "auto",
    lr_schedule: str = "constant",
    device=None,
    verbose: int = 1,
    report: bool = False,
    command: str | None = None,
    callback: Callable | None = None,
) -> History:
    """Train `model` on x (array, tensor or Dataset of shape (N, *input_shape)); labels are never needed.

    With `out`, writes the run folder (config.json, weights.safetensors,
    training_state.safetensors, history.csv, metrics.json) after every epoch,
    atomically. `resume=True` continues an interrupted run in `out` and ends
    with exactly the weights an uninterrupted run would have. Returns the
    History (one row per epoch of every stage). `report=True` also writes report.html
    (figures need matplotlib); `command` is recorded in config.json and the report.
    `callback(row, model)` is called after every epoch with its History row; returning
    True stops training there (the run folder is complete, as after the last epoch).

    Started by torchrun (WORLD_SIZE > 1), every process runs this with the same
    arguments: the model trains in DistributedDataParallel, each rank on its slice
    of every global batch of `batch_size` rows, and only rank 0 writes `out`.
    """
    opts = FitOptions(epochs, batch_size, lr, seed, val_fraction, patience, clip_grad_norm, weight_decay,
                      precision, lr_schedule).validate()
    cfg = model.config
    bce = cfg.reconstruction == "bce"
    data = as_array(x, "x")
    check_data(data, cfg.input_shape, "x", unit_range=bce)
    scaling = getattr(x, "scaling", None)
    if x_val is not None:
        val_data = as_array(x_val, "x_val")
        check_data(val_data, cfg.input_shape, "x_val", unit_range=bce)
        train_rows, val_rows = torch.arange(data.shape[0]), torch.arange(val_data.shape[0])
    else:
        val_data = data
        train_rows, val_rows = _split(data.shape[0], opts.val_fraction, opts.seed)
    dist, dev = distributed.context(resolve_device(device))
    folder = Path(out) if out is not None else None
    state_meta, state_tensors = None, None
    if folder is not None:
        has_run = (folder / ckpt.CONFIG).exists()
        if resume and (folder / ckpt.STATE).exists():
            saved = ckpt.read_config(folder)
            if saved["model"] != json.loads(json.dumps(cfg.to_json())):
                raise CheckpointError(f"{folder} holds a run of a different model configuration; cannot resume it with this model")
            state_tensors = ckpt.read_tensors(folder / ckpt.STATE)
            state_meta = ckpt.read_tensor_metadata(folder / ckpt.STATE)
            ckpt.load_weights(model, folder / ckpt.WEIGHTS)
        elif has_run and not overwrite and not resume:
            raise CheckpointError(f"{folder} already holds a run; pass resume=True (--resume) to continue it, "
                                  "overwrite=True (--overwrite) to replace it, or another out")
        elif folder.exists() and not folder.is_dir():
            raise CheckpointError(f"out={str(folder)!r} exists and is not a folder")

    model.to(dev)
    used_precision = resolve_precision(opts.precision, dev, model)
    writes = folder is not None and dist.main
    dist.barrier()  # every rank has checked the run folder before rank 0 changes it
    stages = _plan(model, opts)
    history = History(state_meta["history"] if state_meta else [])
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(opts.seed)
        shuffle = torch.Generator().manual_seed(opts.seed)
        if state_tensors is not None:
            torch.set_rng_state(state_tensors["rng.torch"])
            shuffle.set_state(state_tensors["rng.shuffle"])
            if "rng.cuda" in state_tensors and dev.type == "cuda":
                torch.cuda.set_rng_state(state_tensors["rng.cuda"], dev)
        elif cfg.init == "pca":
            _pca_init(model, data, train_rows)
            model.to(dev)
        else:
            _output_bias_init(model, data, train_rows)
        if writes and state_meta is None:
            folder.mkdir(parents=True, exist_ok=True)
            for stale in (ckpt.STATE, ckpt.METRICS, ckpt.HISTORY):
                (folder / stale).unlink(missing_ok=True)
            ckpt.save_model(
                model, folder,
                training=asdict(opts),
                data={"scaling": scaling, "source": getattr(x, "source", None), "n_train": len(train_rows),
                      "n_val": len(val_rows), "device": str(dev), "precision": used_precision,
                      "processes": dist.world},
                command=command,
            )
        # On an accelerator, data that fit comfortably stay there: no host-to-device copy per batch.
        if dev.type != "cpu" and isinstance(data, torch.Tensor) and data.numel() * data.element_size() <= _RESIDENT_BYTES:
            val_data = val_data.to(dev) if val_data is data else val_data
            data = data.to(dev)
            train_rows, val_rows = train_rows.to(dev), val_rows.to(dev)
        for index, stage in enumerate(stages):
            resumed = state_meta is not None and state_meta["stage_index"] == index
            # A finished stage is skipped unless it ran out of epochs and more are asked for now.
            finished = resumed and state_meta["stage_done"] and (
                state_meta["stopped_early"] or state_meta["epoch"] >= stage.epochs)
            if state_meta is not None and (index < state_meta["stage_index"] or finished):
                continue
            stopped = _run_stage(model, stage, index, data, train_rows, val_data, val_rows, opts, shuffle, dev,
                                 folder if writes else None, history, state_meta if resumed else None,
                                 state_tensors if resumed else None, verbose if dist.main else 0,
                                 Run(dist, used_precision, callback))
            if stopped:
                break
    if writes:
        _write_metrics(model, folder, data, train_rows, val_data, val_rows, time.perf_counter() - started)
        if report:
            from .report import write_report

            write_report(folder, data=x if hasattr(x, "input_shape") else None)
    dist.barrier()  # the other ranks return once rank 0 has written the run folder
    model.eval()
    return history


@dataclass
class Run:
    """Per-run settings every stage shares."""

    dist: distributed.Context
    precision: str  # resolved: fp32, bf16 or fp16
    callback: Callable | None


def _run_stage(model, stage, index, data, train_rows, val_data, val_rows, opts, shuffle, dev, folder, history,
               meta, tensors, verbose, run: Run) -> bool:
    """Train one stage; True when the callback asked to stop the whole run."""
    sub = stage.model
    optimizer = _make_optimizer(sub, opts)
    first_epoch, best, best_val, bad_epochs = 1, None, math.inf, 0
    if meta is not None:
        _restore_optimizer(optimizer, tensors, meta)
        first_epoch = meta["epoch"] + 1
        best_val, bad_epochs = meta["best_val"], meta["bad_epochs"]
        best = {k[5:]: v.to(dev) for k, v in tensors.items() if k.startswith("best.")} or None
    features = stage.features
    # Stacked layers train on the codes of the layers below, computed once (they are frozen).
    if features is not None:
        data_s, rows_s = _features_of(data, train_rows, features, dev)
        val_s, vrows_s = _features_of(val_data, val_rows, features, dev) if len(val_rows) else (None, val_rows)
    else:
        data_s, rows_s, val_s, vrows_s = data, train_rows, val_data, val_rows
    steps = math.ceil(len(rows_s) / opts.batch_size)
    scaler = _grad_scaler(dev) if run.precision == "fp16" else None
    step = Step(distributed.wrap(Objective(sub), run.dist, dev), optimizer,
                lambda: precision_autocast(dev, run.precision), scaler, run.dist, steps * stage.epochs)
    last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
    stop_run = False
    with _progress(steps * (stage.epochs - first_epoch + 1), stage.name, verbose) as bar:
        for epoch in range(first_epoch, stage.epochs + 1):
            t0 = time.perf_counter()
            if run.dist.enabled:
                # Each rank its own noise stream (corruption, VAE sampling), reproducible per epoch
                # whatever the number of processes a resumed run has.
                torch.manual_seed(hash((opts.seed, index, epoch, run.dist.rank)) % 2**63)
            train = _train_epoch(sub, data_s, rows_s, step, opts, shuffle, bar, (epoch - 1) * steps)
            val = evaluate_loss(sub, val_s, vrows_s) if len(vrows_s) else {}
            seconds = time.perf_counter() - t0
            for prefix, terms in (("train", train), ("validation", val)):
                for term, value in terms.items():
                    if not math.isfinite(value):
                        model.load_state_dict(last_good)
                        raise TrainingError(
                            f"{prefix} loss term {term!r} became {value} in epoch {epoch} of stage {stage.name!r}; "
                            "the weights of the last good epoch were kept (try a lower lr or clip_grad_norm)"
                        )
            row = {"stage": stage.name, "epoch": epoch, "seconds": round(seconds, 4)}
            row.update({f"train_{k}": v for k, v in train.items()})
            row.update({f"val_{k}": v for k, v in val.items()})
            history.append(row)
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k.endswith("total")})
            stop_run = bool(run.callback(row, model)) if run.callback is not None else False
            done, stopped_early = epoch == stage.epochs or stop_run, False
            if val and opts.patience is not None:
                if val["total"] < best_val:
                    best_val, bad_epochs = val["total"], 0
                    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    bad_epochs += 1
                    stopped_early = bad_epochs >= opts.patience
                    done = done or stopped_early
                if done and best is not None:
                    model.load_state_dict(best)  # early stopping keeps the best validation weights
            last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if folder is not None:
                tensors_out, optim_meta = _state_tensors(optimizer, shuffle, best, dev)
                meta_out = {"stage_index": index, "stage": stage.name, "epoch": epoch, "stage_done": done,
                            "stopped_early": stopped_early,
                            "best_val": best_val, "bad_epochs": bad_epochs, "history": list(history),
                            "optimizer": optim_meta}
                ckpt.save_weights(model, folder)
                ckpt.atomic_write(folder / ckpt.HISTORY, lambda tmp: Path(tmp).write_text(history.to_csv()))
                ckpt.write_tensors(folder / ckpt.STATE, tensors_out, meta_out)
            if done:
                break
    return stop_run


def _grad_scaler(dev):
    """Loss scaling for fp16 autocast (its range is too narrow for small gradients)."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(dev.type)
    return torch.cuda.amp.GradScaler()


def _features_of(data, rows, features, dev):
    parts = []
    with torch.no_grad():
        for idx in rows.split(4096):
            parts.append(features(take(data, idx).to(dev)))
    codes = torch.cat(parts)
    return codes, torch.arange(codes.shape[0])


UNITS = {
    "total": "the training objective per example (reconstruction + weighted penalties)",
    "reconstruction": "per example, summed over features: nats for bce/gaussian, squared error for mse",
    "kl": "nats per example, KL(q(z|x) || N(0, I))",
    "sparsity": "per example, before its weight: sum_j |z_j| (l1) or sum_j KL(rho || rho_hat_j) (kl)",
    "contractive": "||J_f(x)||_F^2 per example, before its weight",
    "mse_per_feature": "mean squared error per feature of the deterministic reconstruction",
}


def _write_metrics(model, folder, data, train_rows, val_data, val_rows, seconds):
    metrics = {"train": evaluate_loss(model, data, train_rows)}
    if len(val_rows):
        metrics["validation"] = evaluate_loss(model, val_data, val_rows)
    metrics["units"] = {k: v for k, v in UNITS.items() if k in metrics["train"]}
    metrics["reconstruction_loss"] = model.config.reconstruction
    metrics["seconds"] = round(seconds, 3)
    ckpt.write_json(folder / ckpt.METRICS, metrics)
