"""Models that leave Python: a model's encoder and decoder, and a run's anomaly scorer, as ONNX files.

    ae.export("runs/sensors", "exported")     # encoder.onnx, decoder.onnx, scorer.onnx and export.json
    ae.export(model, "exported")              # a model without a run: encoder.onnx and decoder.onnx

Every file takes any batch size (dimension 0, "batch") and runs with ONNX opset OPSET:

    encoder.onnx  x (batch, *input_shape) float32 [, labels (batch,) int64]  ->  code (batch, latent_dim)
                  a variational model:  ->  mean, logvar (batch, latent_dim): the posterior q(z|x)
    decoder.onnx  z (batch, latent_dim) float32 [, labels]  ->  x_hat (batch, *input_shape): probabilities
                  for a Bernoulli model, means otherwise (never logits), as `model.decode`
    scorer.onnx   x (batch, *input_shape) float64, in the data's own units (a table: its encoded feature
                  matrix, columns as export.json's "features")  ->  score (batch,) float64, the run's
                  detector's anomaly score (`aekit detect`), and outlier (batch,) int64, score > threshold

labels: a conditional model's class per row (-1: unknown), turned into the one-hot input as the model does.
The scorer holds the run's scaling (in float64, as aekit applies it) and its detector: for tables the
residual term and the neighbour term, the distances to the stored reference rows, TopK and their mean.
The exact posterior of factor analysis and PPCA is an affine map of x; it is read from the model, in float64,
when exporting (ONNX has no Cholesky factorisation). Every file is checked against PyTorch with onnxruntime
before anything is written (export.json records the errors measured); files are written atomically.
"""

from __future__ import annotations

import copy
import importlib
import io
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aekit._version import __version__
from aekit.anomaly import scores as anomaly
from aekit.anomaly.detector import COMBINED, NEIGHBOUR_WEIGHT, RESIDUAL_WEIGHT, Detector
from aekit.data.base import _affine, unscaled
from aekit.data.schema import as_schema
from aekit.errors import ConfigError, unknown
from aekit.models.autoencoder import Autoencoder
from aekit.models.distributions import (
    DiagonalGaussian,
    categorical_terms,
    reconstruction_nll_per_example,
    reconstruction_nll_per_feature,
)
from aekit.runs import storage
from aekit.runs.run import Run, load_run

OPSET = 18  # ONNX opset of every file (onnxruntime >= 1.14 runs it)
FORMATS = ("onnx",)
EXPORTERS = ("auto", "torchscript", "dynamo")  # torch.onnx.export's two exporters (to_onnx says which does what)
FORMAT = "aekit-export"  # export.json's "format"
MANIFEST = "export.json"
ENCODER, DECODER, SCORER = "encoder.onnx", "decoder.onnx", "scorer.onnx"
FILES = (ENCODER, DECODER, SCORER, MANIFEST)
# What the export needs beyond aekit's own dependencies (the `export` extra): onnx to write the files,
# onnxruntime to check them; the dynamo exporter also needs onnxscript.
REQUIRED = ("onnx", "onnxruntime")
CHECK_ROWS = 16  # rows each file is checked on
TOLERANCE = 1e-4  # the largest error allowed in that check, relative to the output's scale (max |PyTorch|, 1)
SMOOTHING = 1.0  # sigma in pixels of the smoothed score: the detector's (anomaly.score's default)


def require(*names: str) -> dict:
    """The modules named (default REQUIRED), imported; a ConfigError naming the package to install for one missing."""
    found = {}
    for name in names or REQUIRED:
        try:
            found[name] = importlib.import_module(name)
        except ImportError:
            raise ConfigError(f"exporting to ONNX needs the package {name!r}, which is not installed: "
                              "pip install 'aekit[export]' (onnx, onnxruntime and onnxscript)") from None
    return found


# ----- the exported computations, as torch modules -----


class Graph(nn.Module):
    """A model's code, posterior and reconstruction as traceable tensor functions. The exact posterior
    (factor analysis, PPCA) is affine in x, mean = (x - mu) @ map, with a covariance that does not depend
    on x: map, log-variances and the KL's constant are read from a float64 copy of the model."""

    traceable = True  # whether the TorchScript exporter can convert it (to_onnx)

    def __init__(self, model: Autoencoder):
        super().__init__()
        self.model = model
        self.exact = model.config.posterior == "exact"
        if self.exact:
            wide = copy.deepcopy(model).double()
            d, shape = model.config.input_size, tuple(model.config.input_shape)
            bias = wide.decoder[0].bias.detach()  # mu: the decoder is one Linear layer (LinearGaussian)
            with torch.no_grad():
                probe = wide.posterior_of((bias + torch.eye(d, dtype=bias.dtype)).reshape(d, *shape))
                centre = wide.posterior_of(bias.reshape(1, *shape))
            self.register_buffer("exact_bias", bias.float())
            self.register_buffer("exact_map", (probe.mean - centre.mean).float())  # (D, k): row j = the map of e_j
            self.register_buffer("exact_logvar", centre.logvar[0].float())
            self.exact_kl = float(centre.kl()[0])  # KL at mean 0; the KL is 1/2 |mean|^2 more elsewhere

    def posterior(self, x, labels=None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.exact:
            mean = (x.flatten(1) - self.exact_bias) @ self.exact_map
            return mean, self.exact_logvar.expand_as(mean)
        q = self.model.posterior_of(x, labels)
        return q.mean, q.logvar

    def kl(self, mean, logvar) -> torch.Tensor:
        if self.exact:
            return 0.5 * mean.pow(2).sum(1) + self.exact_kl
        return DiagonalGaussian(mean, logvar).kl()

    def code(self, x, labels=None) -> torch.Tensor:
        return self.posterior(x, labels)[0] if self.model.config.variational else self.model.code(x, labels)

    def reconstruction(self, x, labels=None) -> torch.Tensor:
        """model(x): the deterministic reconstruction in data space."""
        return self.model.decoded(self.code(x, labels), labels)


class Encoder(Graph):
    def forward(self, x, labels=None):
        return self.posterior(x, labels) if self.model.config.variational else self.code(x, labels)


class Decoder(Graph):
    def forward(self, z, labels=None):
        return self.model.decoded(z, labels)


class Scorer(Graph):
    """Raw rows (batch, *input_shape) float64 -> the detector's scores (float64) and outlier labels:
    the run's scaling in float64 (data.base.scaled), the model in float32, the score as detector.py
    computes it."""

    def __init__(self, model: Autoencoder, detector: Detector, scaling: dict):
        super().__init__(model)
        if detector.score != COMBINED:
            anomaly.check_score(detector.score, model.config)
        self.score_name, self.method = detector.score, scaling["method"]
        # The smoothing kernel's shape is read from the input's channels: the TorchScript exporter refuses a
        # convolution whose kernel it cannot size, the dynamo exporter sizes it.
        self.traceable = self.score_name != "smoothed_squared_error"
        self.threshold = float(detector.threshold)
        d = model.config.input_size
        if self.method not in ("none", "rownorm"):
            shift, factor = (np.broadcast_to(np.asarray(v, dtype=np.float64), (d,)) for v in _affine(scaling))
            self.register_buffer("shift", torch.tensor(shift, dtype=torch.float64))
            self.register_buffer("factor", torch.tensor(factor, dtype=torch.float64))
        self.tail = float(scaling.get("tail", 0.0))
        if self.score_name == COMBINED:
            # A table with categorical columns weighs every input by its column's weight (detector.column_weights):
            # the residual directly, the neighbour distance by scaling each input by the root of its weight.
            ones = np.ones(d)
            residual_weights = ones if detector.residual_weights is None else detector.residual_weights
            root = np.sqrt(ones if detector.neighbour_weights is None else detector.neighbour_weights)
            self.register_buffer("residual_weights", torch.tensor(residual_weights, dtype=torch.float64))
            self.register_buffer("neighbour_root", torch.tensor(root, dtype=torch.float64))
            reference = torch.from_numpy(np.asarray(detector.reference, dtype=np.float64) * root)
            self.register_buffer("reference", reference)
            self.register_buffer("reference_norms", (reference**2).sum(1))
            self.k = int(detector.k)
            self.residual_scale, self.neighbour_scale = float(detector.residual_scale), float(detector.neighbour_scale)

    def scaled(self, flat: torch.Tensor) -> torch.Tensor:
        """data.base.scaled, in float64."""
        if self.method == "rownorm":
            norm = flat.pow(2).sum(1, keepdim=True).sqrt()
            return flat / torch.where(norm > 0, norm, torch.ones_like(norm)) * math.sqrt(flat.shape[1])
        if self.method == "none":
            return flat
        out = (flat - self.shift) * self.factor
        if self.method != "robust":
            return out
        size = out.abs()  # data.base.compress_tails
        compressed = torch.sign(out) * (self.tail + torch.log1p(torch.clamp(size - self.tail, min=0.0)))
        return torch.where(size > self.tail, compressed, out)

    def forward(self, x):
        shape = tuple(self.model.config.input_shape)
        z = self.scaled(x.reshape(x.shape[0], -1).to(torch.float64)).to(torch.float32).reshape(-1, *shape)
        # A conditional model scores with the class unknown (-1), as the detector does; labels of the batch's
        # size, so that the one-hot rows follow the batch (model.condition(None, n) would fix n when traced).
        labels = torch.zeros_like(z.flatten(1)[:, 0], dtype=torch.int64) - 1 if self.model.config.n_classes else None
        score = self.combined(z, labels) if self.score_name == COMBINED else self.model_score(z, labels)
        return score, (score > self.threshold).to(torch.int64)

    def combined(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """detector.Detector.contributions summed: weighted residual / R0 + 2 * neighbours / N0, the residual of a
        categorical column the cross-entropy of its observed level (anomaly.scores._squared_error_terms)."""
        groups = self.model.config.categorical_groups
        if groups:
            out = self.model.decoder_out(self.code(z, labels), labels)
            residual = categorical_terms((self.model.output(out) - z) ** 2, out, z, groups)
        else:
            residual = reconstruction_nll_per_feature("mse", self.reconstruction(z, labels), z)
        residual = residual.flatten(1).to(torch.float64) * self.residual_weights
        q = z.flatten(1).to(torch.float64) * self.neighbour_root
        distances = q.pow(2).sum(1, keepdim=True) + self.reference_norms - 2.0 * q @ self.reference.T
        nearest = torch.topk(distances, self.k, dim=1, largest=False).indices  # (batch, k)
        neighbours = (q.unsqueeze(1) - self.reference[nearest]).pow(2).mean(1)  # (batch, D): detector.neighbour_terms
        shares = (RESIDUAL_WEIGHT * residual / self.residual_scale
                  + NEIGHBOUR_WEIGHT * neighbours / self.neighbour_scale)
        return shares.sum(1)

    def model_score(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """anomaly.SCORES[self.score_name], in float32 as anomaly.score computes it."""
        c = self.model.config
        if self.score_name == "elbo":
            mean, logvar = self.posterior(z, labels)
            out = reconstruction_nll_per_example(c.reconstruction, self.model.decoder_out(mean, labels), z,
                                                 self.model.log_sigma)
            return (out + self.kl(mean, logvar)).to(torch.float64)
        if self.score_name == "reconstruction":
            out = self.model.decoder_out(self.code(z, labels), labels)
            terms = reconstruction_nll_per_feature(c.reconstruction, out, z, self.model.log_sigma)
        elif self.score_name == "squared_error":
            terms = reconstruction_nll_per_feature("mse", self.reconstruction(z, labels), z)
        elif self.score_name == "smoothed_squared_error":
            terms = reconstruction_nll_per_feature("mse", anomaly.gaussian_smooth(self.reconstruction(z, labels), SMOOTHING),
                                                   anomaly.gaussian_smooth(z, SMOOTHING))
        else:
            raise ConfigError(f"the detector's score {self.score_name!r} cannot be exported to ONNX; exportable: "
                              f"{', '.join([COMBINED, *anomaly.SCORES])}")
        return terms.flatten(1).sum(1).to(torch.float64)


# ----- conversion and the check against PyTorch -----


def _io(name: str, dtype: str, shape) -> dict:
    return {"name": name, "dtype": dtype, "shape": ["batch", *map(int, shape)]}


def to_onnx(module: nn.Module, args: tuple, inputs: list[dict], outputs: list[dict], exporter: str) -> tuple[bytes, str]:
    """The serialised ONNX model of module(*args) at opset OPSET, its dimension 0 ("batch") dynamic.

    exporter: "torchscript", torch.onnx.export's tracing exporter, or "dynamo", its torch.export-based
    one (the default of torch >= 2.9, through onnxscript). Both give files that agree with PyTorch to
    float32 rounding (export.json's check); the TorchScript one converts a small model in about 0.03 s
    where the dynamo one takes seconds (it traces with torch.export, decomposes and optimises the graph)
    and works with every torch this package supports, but torch deprecates it: "auto" takes it and
    falls back to dynamo when it fails or is gone. Returns the bytes and the exporter that made them."""
    names, output_names = [spec["name"] for spec in inputs], [spec["name"] for spec in outputs]
    if exporter == "auto" and not module.traceable:
        exporter = "dynamo"
    if exporter == "auto":
        try:
            return to_onnx(module, args, inputs, outputs, "torchscript")
        except ConfigError as e:
            try:
                return to_onnx(module, args, inputs, outputs, "dynamo")
            except ConfigError as again:
                raise ConfigError(f"{again} (and the TorchScript exporter: {e})") from None
    if exporter == "torchscript":
        options = dict(dynamo=False, dynamic_axes={name: {0: "batch"} for name in names + output_names})
    else:
        require("onnxscript")
        options = dict(dynamo=True, dynamic_shapes={name: {0: torch.export.Dim.DYNAMIC} for name in names},
                       external_data=False, verbose=False)
    buffer, quiet = io.BytesIO(), logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the dynamo exporter logs each optional operator library it skips
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation, the tracer's warnings
            program = torch.onnx.export(module.eval(), args, buffer if exporter == "torchscript" else None,
                                        input_names=names, output_names=output_names, opset_version=OPSET, **options)
    except Exception as e:  # the exporters' own errors name the operator they could not translate
        raise ConfigError(f"the {type(module).__name__.lower()} of this {_describe(module)} model cannot be "
                          f"exported to ONNX ({exporter} exporter): {type(e).__name__}: "
                          f"{' '.join(str(e).split())[:400]}") from None
    finally:
        quiet.setLevel(level)
    onnx = importlib.import_module("onnx")
    proto = onnx.load_from_string(buffer.getvalue()) if exporter == "torchscript" else program.model_proto
    proto.doc_string = f"aekit {__version__}: the {type(module).__name__.lower()} of a {_describe(module)} model"
    proto.producer_name, proto.producer_version = "aekit", __version__
    return proto.SerializeToString(), exporter


def _describe(module: Graph) -> str:
    c = module.model.config
    return f"{c.kind!r} ({c.architecture})"


def check(data: bytes, module: nn.Module, args: tuple, names: list[str], ort) -> dict:
    """Run the file with onnxruntime on args (all rows, then the first 3) and compare with PyTorch: the
    largest absolute error and that error relative to the output's scale (max |PyTorch output|, or 1)."""
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    worst_abs = worst_rel = 0.0
    for rows in (len(args[0]), 3):
        part = tuple(a[:rows] for a in args)
        with torch.no_grad():
            expected = module(*part)
        expected = expected if isinstance(expected, tuple) else (expected,)
        try:
            got = session.run(None, {name: a.numpy() for name, a in zip(names, part)})
        except Exception as e:  # onnxruntime's errors: a shape the trace fixed, an operator it lacks
            raise ConfigError(f"the ONNX {type(module).__name__.lower()} of this {_describe(module)} model fails on "
                              f"{rows} rows in onnxruntime: {' '.join(str(e).split())[:400]}") from None
        for want, have in zip(expected, got):
            if not want.is_floating_point():  # the outlier labels follow the scores
                continue
            want = want.numpy().astype(np.float64)
            if want.shape != have.shape:
                raise ConfigError(f"the ONNX {type(module).__name__.lower()} gives shape {have.shape}, "
                                  f"PyTorch {want.shape}: it cannot be exported faithfully")
            error = float(np.abs(have.astype(np.float64) - want).max(initial=0.0))
            scale = max(1.0, float(np.abs(want).max(initial=0.0)))
            worst_abs, worst_rel = max(worst_abs, error), max(worst_rel, error / scale)
    if not worst_rel <= TOLERANCE:
        raise ConfigError(f"the ONNX {type(module).__name__.lower()} of this {_describe(module)} model differs from "
                          f"PyTorch by {worst_rel:.3g} of the output's scale (more than {TOLERANCE:g}): it cannot "
                          "be exported faithfully")
    return {"rows": [len(args[0]), 3], "max_abs_error": worst_abs, "max_rel_error": worst_rel}


# ----- the export -----


def export(model_or_run, out, format: str = "onnx", overwrite: bool = False, exporter: str = "auto") -> Path:
    """Write encoder.onnx, decoder.onnx and, for a run with a detector, scorer.onnx into the folder `out`,
    with export.json (the opset, each file's inputs and outputs with their shapes and dtypes, the kind, the
    scorer's input columns, score and threshold, the library version, the errors measured against
    PyTorch, and what was not exported and why); returns the folder.

    model_or_run: a model, a Run or a run folder (a model alone has no detector: no scorer.onnx).
    format: "onnx". overwrite: replace the files of a previous export in `out` (refused otherwise).
    exporter: torch's ONNX exporter, "auto" (TorchScript, dynamo where that fails), "torchscript" or
    "dynamo" (see to_onnx). Without the `export` extra (onnx, onnxruntime, onnxscript): a ConfigError
    naming the package to install; what cannot be exported: a ConfigError naming it.
    """
    if format not in FORMATS:
        raise unknown("export format", format, FORMATS)
    if exporter not in EXPORTERS:
        raise unknown("ONNX exporter", exporter, EXPORTERS)
    ort = require("onnx", "onnxruntime")["onnxruntime"]
    run = model_or_run if isinstance(model_or_run, Run) else None
    if isinstance(model_or_run, (str, Path)):
        run = load_run(model_or_run, device="cpu")
    model = run.model if run is not None else model_or_run
    if not isinstance(model, Autoencoder):
        raise ConfigError(f"export takes a model, a Run or a run folder, got {type(model_or_run).__name__}")
    folder = _output_folder(out, overwrite)
    model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x, labels = _samples(model, run)
    manifest = _manifest(model, run)
    written, files = {}, manifest["files"]
    written[ENCODER], files[ENCODER] = _encoder(model, x, labels, exporter, ort)
    with torch.no_grad():
        z = Graph(model).code(x, labels)
    written[DECODER], files[DECODER] = _decoder(model, z, labels, exporter, ort)
    reason = _no_scorer(run)
    if reason is None:
        written[SCORER], files[SCORER] = _scorer(model, run, x, exporter, ort)
        manifest["scorer"] = _scorer_facts(run)
    else:
        manifest["not_exported"] = {SCORER: reason}
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in written.items():  # every file is made and checked before the first is written
        storage.write_bytes(folder / name, data)
    if SCORER not in written:
        (folder / SCORER).unlink(missing_ok=True)  # of an export this one replaces
    storage.write_json(folder / MANIFEST, manifest)
    return folder


def _output_folder(out, overwrite: bool) -> Path:
    """The folder to export into, checked before any work (it is made when the files are written)."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} exists and is not a folder: give a folder to export into")
    present = [name for name in FILES if (folder / name).exists()]
    if present and not overwrite:
        raise ConfigError(f"{folder} already holds {', '.join(present)}: pass overwrite=True (--overwrite) to replace "
                          "them, or choose another folder")
    return folder


def _samples(model: Autoencoder, run: Run | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """CHECK_ROWS inputs in the model's space to trace and check with: the detector's reference rows
    (training rows) when there are any, else seeded uniform values in [0, 1]; and labels for a
    conditional model, every class and -1 (unknown)."""
    c = model.config
    reference = getattr(getattr(run, "detector", None), "reference", None)
    if reference is not None:
        x = torch.from_numpy(np.asarray(reference[:CHECK_ROWS], dtype=np.float32)).reshape(-1, *c.input_shape)
    else:
        x = torch.rand((CHECK_ROWS, *c.input_shape), generator=torch.Generator().manual_seed(0))
    if not c.n_classes:
        return x, None
    labels = torch.arange(len(x)) % (c.n_classes + 1) - 1
    return x, labels


def _file(module: Graph, args: tuple, inputs: list[dict], outputs: list[dict], exporter: str, ort):
    """One file's bytes, made and checked, and what export.json says of it."""
    data, used = to_onnx(module, args, inputs, outputs, exporter)
    facts = {"inputs": inputs, "outputs": outputs, "exporter": used,
             "check": check(data, module, args, [spec["name"] for spec in inputs], ort)}
    return data, facts


def _encoder(model, x, labels, exporter, ort):
    c = model.config
    args, inputs = _with_labels((x,), [_io("x", "float32", c.input_shape)], labels)
    outputs = ([_io("mean", "float32", (c.latent_dim,)), _io("logvar", "float32", (c.latent_dim,))]
               if c.variational else [_io("code", "float32", (c.latent_dim,))])
    return _file(Encoder(model), args, inputs, outputs, exporter, ort)


def _decoder(model, z, labels, exporter, ort):
    c = model.config
    args, inputs = _with_labels((z,), [_io("z", "float32", (c.latent_dim,))], labels)
    return _file(Decoder(model), args, inputs, [_io("x_hat", "float32", c.input_shape)], exporter, ort)


def _scorer(model, run: Run, x, exporter, ort):
    """The scorer, traced and checked on x (model space) taken back to the data's units."""
    c = model.config
    scaling = run.scaling or {"method": "none"}
    raw = torch.from_numpy(unscaled(x.reshape(len(x), -1).numpy(), scaling)).reshape(len(x), *c.input_shape)
    outputs = [{"name": "score", "dtype": "float64", "shape": ["batch"]},
               {"name": "outlier", "dtype": "int64", "shape": ["batch"]}]
    return _file(Scorer(model, run.detector, scaling), (raw,), [_io("x", "float64", c.input_shape)], outputs,
                 exporter, ort)


def _with_labels(args: tuple, inputs: list[dict], labels) -> tuple[tuple, list[dict]]:
    if labels is None:
        return args, inputs
    return (*args, labels), [*inputs, {"name": "labels", "dtype": "int64", "shape": ["batch"]}]


def _names(inputs: list[dict]) -> list[str]:
    return [spec["name"] for spec in inputs]


def _no_scorer(run: Run | None) -> str | None:
    """Why a scorer cannot be exported, or None when it can."""
    if run is None:
        return "a model without its run folder has no anomaly detector or scaling: export the run folder"
    if run.detector is None:
        return f"the run {run.folder} has no anomaly detector: {run.why_no_detector()}"
    return None


def _manifest(model: Autoencoder, run: Run | None) -> dict:
    c = model.config
    return {"format": FORMAT, "format_version": 1, "library_version": __version__, "opset": OPSET,
            "torch_version": torch.__version__, "kind": c.kind,
            "architecture": c.architecture, "input_shape": list(c.input_shape), "latent_dim": c.latent_dim,
            "variational": bool(c.variational), "n_classes": c.n_classes, "reconstruction": c.reconstruction,
            "run": None if run is None else str(run.folder), "files": {}}


def _scorer_facts(run: Run) -> dict:
    """What the scorer's input columns are and how its scores are made."""
    d = run.detector
    table = run.data.get("table")
    schema = as_schema(table) if table is not None else None
    if schema is not None:
        features = schema.encoded_names()
    elif len(run.config.input_shape) == 3:
        shape = run.config.input_shape
        features = [f"c{c}y{y}x{x}" for c in range(shape[0]) for y in range(shape[1]) for x in range(shape[2])]
    else:
        features = [f"x{j}" for j in range(run.config.input_size)]
    return {"score": d.score, "threshold": d.threshold, "contamination": d.contamination,
            "neighbours": d.k if d.score == COMBINED else None,
            "reference_rows": None if d.reference is None else len(d.reference),
            "scaling": (run.scaling or {"method": "none"})["method"], "features": features,
            "table": None if schema is None else schema.to_json()}
