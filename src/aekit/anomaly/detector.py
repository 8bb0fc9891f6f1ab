"""The default anomaly detector: an autoencoder's residual plus the distance to the nearest training rows.

    detector, train_scores = fit_detector(model, x_train)       # x in the model's (scaled) space
    detector.scores(model, x)                                   # (N,) higher = more anomalous
    detector.contributions(model, x)                            # (N, D), rows sum to the scores

The score of a row x (scaled as the model was trained, D features) is

    score(x) = R(x) / R0 + 2 N(x) / N0
    R(x) = sum_j (x_j - xhat_j)^2            the squared residual of x against the reconstruction of
                                             its clipped copy (ModelConfig.input_clip), so a value far
                                             out in a tail counts fully
    N(x) = mean over the k nearest training rows r of sum_j (x_j - r_j)^2,  k = max(10, 3% of them)
                                             (row-normalised profiles: max(5, 1%))

with R0 and N0 the medians of R and N on the training rows (N leave-self-out), so that the two terms
weigh alike whatever the data's units. The residual finds rows that break the correlations the
autoencoder learnt; the neighbour term finds rows in empty regions that the decoder happens to
reconstruct well (a local-density view, Ramaswamy et al. 2000). Each term alone ranked below the
sum on the 14 tables of ../shared/data/adbench (mean AUC 0.868 residual alone, 0.871 neighbours
alone, 0.878 both; README, "Anomaly detection on your tables"). Both terms are sums over features,
so `contributions` splits every score into per-feature shares that add up to it exactly.

Thresholds: `threshold` is the (1 - contamination) quantile of the training scores (PyOD's rule);
`novelty_threshold(alpha)` is the split-conformal quantile of held-out clean rows' scores, which a
new clean row exceeds with probability at most alpha (Vovk et al. 2005; Angelopoulos & Bates 2021).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aekit.anomaly import scores as anomaly
from aekit.data.base import evenly_spaced
from aekit.data.validation import as_array
from aekit.errors import CheckpointError, ConfigError, check_number
from aekit.inference import threads_for_work, torch_threads

RESIDUAL_WEIGHT, NEIGHBOUR_WEIGHT = 1.0, 2.0
# k = max(MIN_NEIGHBOURS, NEIGHBOUR_FRACTION of the reference rows). For row-normalised "profile" data
# (pixels, counts: many features, distances concentrate) a tighter neighbourhood, 1% and at least 5, did
# better on one-class MNIST (mean AUC 0.971 against 0.970); on the tables 3% and 1% did alike (0.878).
NEIGHBOUR_FRACTION, MIN_NEIGHBOURS = 0.03, 10
PROFILE_NEIGHBOUR_FRACTION, PROFILE_MIN_NEIGHBOURS = 0.01, 5
MAX_REFERENCE_ROWS = 10_000  # training rows kept for the neighbour term (an evenly spread sample beyond)
MAX_REFERENCE_VALUES = 1 << 22  # and at most this many numbers (16 MB of float32) for wide data
GATHER_VALUES = 1 << 22  # query rows x neighbours x features gathered at once
WEIGHT_FLOOR = 0.05  # column_weights: a column's median term counts as at least this share of the typical column's
PREFIX = "detector."  # tensors of the detector inside a run's weights.safetensors


COMBINED = "combined"  # the score above; any other name is a model-only score of anomaly.SCORES


def default_score(config) -> str:
    """The score a run's detector uses: "combined" for vector input (tables), else the model's own
    loss ("elbo" for a VAE, "reconstruction" otherwise), as for images the neighbour term in pixel
    space adds little and its reference rows would be large."""
    if len(config.input_shape) == 1:
        return COMBINED
    return "elbo" if config.variational else "reconstruction"


@dataclass
class Detector:
    score: str  # "combined", or a name of anomaly.SCORES
    contamination: float
    threshold: float  # (1 - contamination) quantile of the training scores
    calibration: np.ndarray  # sorted scores of held-out clean rows (may be empty)
    # "combined" only:
    reference: np.ndarray | None = None  # (m, D) float32: training rows in the model's space
    k: int = 0  # neighbours per query
    residual_scale: float = 1.0  # R0
    neighbour_scale: float = 1.0  # N0
    # Per input (D,), a table with categorical columns only (None: all 1): 1 / its column's median term
    # on the training rows, for the residual and for the neighbour distance (see column_weights).
    residual_weights: np.ndarray | None = None
    neighbour_weights: np.ndarray | None = None
    # Per input (D,): the median weighted term of the training rows, which an imputed cell counts instead
    # of its own (its value is a stand-in, no evidence either way). None: imputed cells count as they are.
    typical: np.ndarray | None = None  # (2, D): residual, neighbour

    # ----- scores -----

    def contributions(self, model, x, imputed=None) -> np.ndarray:
        """(N, D) float64: each feature's share of each row's score (rows sum to `scores`). imputed: (N, D)
        bool, the inputs that hold an imputed value (they count the typical share of their column)."""
        if self.score != COMBINED:
            return anomaly.per_feature(model, x, self.score)
        residual = anomaly.per_feature(model, x, "squared_error")  # checks x's shape and values first
        residual, neighbours = self._terms(residual, _flat(x))
        if imputed is not None and self.typical is not None:
            imputed = np.asarray(imputed, dtype=bool)
            residual = np.where(imputed, self.typical[0], residual)
            neighbours = np.where(imputed, self.typical[1], neighbours)
        return RESIDUAL_WEIGHT * residual / self.residual_scale + NEIGHBOUR_WEIGHT * neighbours / self.neighbour_scale

    def _terms(self, residual: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The weighted per-input residual and neighbour terms of rows z (their residual terms given)."""
        weights = 1.0 if self.residual_weights is None else self.residual_weights
        return residual * weights, self.neighbours(z)

    def neighbours(self, z: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """(N, D) neighbour_terms of rows z in the weighted space (each input scaled by the root of its weight)."""
        if self.neighbour_weights is None:
            return neighbour_terms(self.reference, self.k, z, exclude_self)
        root = np.sqrt(self.neighbour_weights)
        return neighbour_terms(self.reference * root, self.k, z * root, exclude_self)

    def scores(self, model, x, imputed=None) -> np.ndarray:
        """(N,) float64 anomaly scores: higher = more anomalous."""
        if self.score != COMBINED:
            return anomaly.score(model, x, self.score).astype(np.float64)
        return self.contributions(model, x, imputed).sum(1)

    def novelty_threshold(self, false_alarm_rate: float) -> float:
        """The split-conformal threshold of the held-out clean rows' scores (anomaly.conformal_threshold)."""
        return anomaly.conformal_threshold(self.calibration, false_alarm_rate)

    # ----- storage: tensors and JSON metadata inside the run's weights file -----

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {PREFIX + "calibration": torch.from_numpy(np.asarray(self.calibration, dtype=np.float64))}
        if self.reference is not None:
            out[PREFIX + "reference"] = torch.from_numpy(np.ascontiguousarray(self.reference, dtype=np.float32))
        for name in ("residual_weights", "neighbour_weights", "typical"):
            if getattr(self, name) is not None:
                out[PREFIX + name] = torch.from_numpy(np.ascontiguousarray(getattr(self, name), dtype=np.float64))
        return out

    def metadata(self) -> dict:
        return {"score": self.score, "contamination": self.contamination, "threshold": self.threshold, "k": self.k,
                "residual_scale": self.residual_scale, "neighbour_scale": self.neighbour_scale}

    @classmethod
    def from_stored(cls, tensors: dict, metadata: dict, config, where: str) -> Detector:
        """A detector read back from a run, every field checked (CheckpointError naming the fault)."""
        try:
            detector = cls(str(metadata["score"]), float(metadata["contamination"]), float(metadata["threshold"]),
                           tensors[PREFIX + "calibration"].numpy(), None, int(metadata["k"]),
                           float(metadata["residual_scale"]), float(metadata["neighbour_scale"]))
            if detector.score == COMBINED:
                detector.reference = tensors[PREFIX + "reference"].numpy()
                for name in ("residual_weights", "neighbour_weights", "typical"):
                    if PREFIX + name in tensors:
                        setattr(detector, name, tensors[PREFIX + name].numpy())
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"{where}: the detector is incomplete or malformed ({e!r})") from None
        if detector.score != COMBINED:
            try:
                anomaly.check_score(detector.score, config)
            except ConfigError as e:
                raise CheckpointError(f"{where}: the detector's score is invalid ({e})") from None
        else:
            ref = detector.reference
            if ref.ndim != 2 or ref.shape[1] != config.input_size or not 1 <= detector.k < max(2, len(ref)):
                raise CheckpointError(f"{where}: the detector's reference rows {ref.shape} or k={detector.k} "
                                      f"do not fit a model of {config.input_size} features")
            if not np.isfinite(ref).all():
                raise CheckpointError(f"{where}: the detector's reference rows hold non-finite values")
            _check_weights(detector, config.input_size, where)
        values = [detector.residual_scale, detector.neighbour_scale, detector.threshold, detector.contamination]
        if not (np.isfinite(detector.calibration).all() and np.isfinite(values).all()
                and min(detector.residual_scale, detector.neighbour_scale) > 0 and 0 < detector.contamination <= 0.5):
            raise CheckpointError(f"{where}: the detector holds non-finite or out-of-range values")
        return detector


def _check_weights(detector: Detector, d: int, where: str) -> None:
    """The per-input weights and typical terms: both weights or neither, of D positive finite values."""
    if (detector.residual_weights is None) != (detector.neighbour_weights is None):
        raise CheckpointError(f"{where}: the detector has one of residual_weights and neighbour_weights only")
    for name, shape in (("residual_weights", (d,)), ("neighbour_weights", (d,)), ("typical", (2, d))):
        value = getattr(detector, name)
        if value is not None and (value.shape != shape or not np.isfinite(value).all() or (value < 0).any()):
            raise CheckpointError(f"{where}: the detector's {name} {value.shape} do not fit a model of {d} "
                                  "features, or hold negative or non-finite values")


def _flat(x) -> np.ndarray:
    data = as_array(x, "x", torch.float64)
    data = data.cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data, dtype=np.float64)
    return data.reshape(len(data), -1)


def neighbour_terms(reference: np.ndarray, k: int, z: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """(N, D): per feature, the mean over the k nearest reference rows of the squared difference.

    exclude_self: the queries are themselves reference rows; each one's nearest (itself) is dropped.

    Per chunk of queries: one float64 matrix product for the distances (float32 picked other neighbours
    among near ties on row-normalised data), a partition for the k nearest, then the terms without
    gathering the (N, k, D) neighbours: mean_r (q - r)^2 = (q - m1)^2 + (m2 - m1^2), with m1 and m2 the
    neighbours' means of r and r^2 (embedding_bag). 3-8x faster than the gather on 768 features.
    """
    ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float64))
    ref_squared = ref * ref
    queries = np.ascontiguousarray(z, dtype=np.float64)
    ref_norms = ref_squared.sum(1)
    nearest = k + 1 if exclude_self else k
    out = np.empty_like(queries)
    chunk = max(1, min(4096, GATHER_VALUES // max(1, len(ref))))  # a (chunk, m) block of distances
    threads = min(torch.get_num_threads(), threads_for_work(2.0 * min(chunk, len(queries)) * ref.numel()))
    with torch.no_grad(), torch_threads(threads):
        for start in range(0, len(queries), chunk):
            q = torch.from_numpy(queries[start : start + chunk])
            dist = torch.addmm(ref_norms, q, ref.T, alpha=-2.0).numpy()  # |r|^2 - 2 q.r: |q|^2 keeps the order
            idx = np.argpartition(dist, nearest - 1, axis=1)[:, :nearest]
            if exclude_self:  # the nearest of the k + 1 (the query itself) swapped to the end and dropped
                rows, own = np.arange(len(idx)), np.take_along_axis(dist, idx, 1).argmin(1)
                idx[rows, own] = idx[:, -1]
                idx = idx[:, :-1]
            idx = torch.from_numpy(idx)
            m1 = torch.nn.functional.embedding_bag(idx, ref, mode="mean")
            m2 = torch.nn.functional.embedding_bag(idx, ref_squared, mode="mean")
            out[start : start + chunk] = ((q - m1).pow(2) + (m2 - m1 * m1).clamp_min(0.0)).numpy()
    return out


def reference_rows(n: int, n_features: int) -> np.ndarray:
    """Indices of the training rows kept as neighbours: all, or an evenly spread sample of at most
    MAX_REFERENCE_ROWS rows and MAX_REFERENCE_VALUES numbers."""
    return evenly_spaced(n, min(MAX_REFERENCE_ROWS, max(100, MAX_REFERENCE_VALUES // n_features)))


def fit_detector(model, x, score: str = COMBINED, contamination: float = 0.1, calibration=None,
                 profile: bool = False, imputed=None) -> tuple[Detector, np.ndarray]:
    """The detector of a trained model on its training rows x (in the model's space), and their scores.

    calibration: held-out clean rows (neither trained on nor used as neighbours) whose sorted scores
    give novelty thresholds; None: none. profile: the rows are row-normalised profiles (scaling
    'rownorm'), which take a tighter neighbourhood. imputed: (N, D) bool, the inputs of x that hold
    imputed values (they count their column's typical share).
    """
    check_number("contamination", contamination, 0.0, 0.5, low_open=True, phrase="must be a float in the range")
    if score != COMBINED:
        anomaly.check_score(score, model.config)
        train_scores = anomaly.score(model, x, score).astype(np.float64)
        detector = Detector(score, float(contamination), anomaly.threshold(train_scores, contamination), np.zeros(0))
    else:
        detector, train_scores = _fit_combined(model, x, contamination, profile, imputed)
    if calibration is not None and len(calibration):
        detector.calibration = np.sort(detector.scores(model, calibration))
    return detector, train_scores


def _fit_combined(model, x, contamination: float, profile: bool, imputed=None) -> tuple[Detector, np.ndarray]:
    residual = anomaly.per_feature(model, x, "squared_error")  # checks x's shape and values first
    z = _flat(x)
    n = len(z)
    if n < 2:
        raise ConfigError(f"a detector needs at least 2 training rows, got {n}")
    keep = reference_rows(n, z.shape[1])
    fraction, least = (PROFILE_NEIGHBOUR_FRACTION, PROFILE_MIN_NEIGHBOURS) if profile else (NEIGHBOUR_FRACTION,
                                                                                          MIN_NEIGHBOURS)
    k = int(min(len(keep) - 1, max(least, round(fraction * len(keep)))))
    detector = Detector(COMBINED, float(contamination), 0.0, np.zeros(0), z[keep].astype(np.float32), k)
    groups = model.config.categorical_groups
    if groups:  # a table with categorical columns: every column in proportion (column_weights)
        columns = input_columns(z.shape[1], groups)
        ones = np.ones(z.shape[1])
        detector.residual_weights, detector.neighbour_weights = column_weights(residual, columns), ones
        # The neighbour distance weighs each column by its own median term, measured in the space it
        # will be measured in: once with equal weights, then again with the weights of the first pass.
        for _ in range(2):
            terms = _training_neighbours(detector, z, keep)
            detector.neighbour_weights = detector.neighbour_weights * column_weights(terms, columns)
    residual = residual * (1.0 if detector.residual_weights is None else detector.residual_weights)
    neighbours = _training_neighbours(detector, z, keep)
    detector.typical = np.stack([np.median(residual, 0), np.median(neighbours, 0)])
    if imputed is not None:
        imputed = np.asarray(imputed, dtype=bool)
        residual = np.where(imputed, detector.typical[0], residual)
        neighbours = np.where(imputed, detector.typical[1], neighbours)
    r_train, n_train = residual.sum(1), neighbours.sum(1)
    detector.residual_scale = float(np.median(r_train)) or 1.0
    detector.neighbour_scale = float(np.median(n_train)) or 1.0
    train_scores = (RESIDUAL_WEIGHT * r_train / detector.residual_scale
                    + NEIGHBOUR_WEIGHT * n_train / detector.neighbour_scale)
    detector.threshold = anomaly.threshold(train_scores, contamination)
    return detector, train_scores


def _training_neighbours(detector: Detector, z: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The weighted neighbour terms of the training rows, each reference row left out of its own neighbours."""
    neighbours = np.empty_like(z)
    in_reference = np.zeros(len(z), dtype=bool)
    in_reference[keep] = True
    neighbours[in_reference] = detector.neighbours(z[in_reference], exclude_self=True)
    if (~in_reference).any():
        neighbours[~in_reference] = detector.neighbours(z[~in_reference])
    return neighbours


def input_columns(d: int, groups) -> np.ndarray:
    """(D,) the column of each input: a categorical group's inputs share one, every other input is its own."""
    columns = np.arange(d)
    for start, width in groups:
        columns[start : start + width] = start
    return np.unique(columns, return_inverse=True)[1]


def column_weights(terms: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(D,) per input, 1 / the median over the training rows of its column's summed term, so that every
    column adds about 1 on a normal row, whatever its encoding (a 50-level one-hot column's distance or
    cross-entropy is larger than a number's squared error). A median below WEIGHT_FLOOR of the columns'
    median is raised to it (an exactly reconstructed column must not turn noise into evidence)."""
    medians = np.median(group_columns(terms, columns), 0)
    floor = WEIGHT_FLOOR * float(np.median(medians))
    medians = np.maximum(medians, floor) if floor > 0 else np.where(medians > 0, medians, 1.0)
    return 1.0 / medians[columns]


def group_columns(contributions: np.ndarray, groups) -> np.ndarray:
    """(N, D) per-input contributions summed into (N, C) columns: groups[j] is input j's column."""
    groups = np.asarray(groups, dtype=np.int64)
    out = np.zeros((len(contributions), int(groups.max()) + 1 if len(groups) else 0))
    np.add.at(out.T, groups, contributions.T)
    return out


def top_features(contributions: np.ndarray, names, count: int = 3) -> list[str]:
    """For each row, the names of its `count` largest contributions, most anomalous first, joined by ';'."""
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :count]
    return [";".join(str(names[j]) for j in row) for row in order]

