"""The fit loop: resume exactness, NaN guard, early stopping, run folder contents."""

import csv
import json
import os

import numpy as np
import pytest
import torch

import aekit as ae
from aekit.runs import run as runs
from aekit.training import loop


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("kind", ["denoising", "vae", "stacked", "cvae"])
def test_resume_after_crash_gives_the_uninterrupted_weights(kind, digits, tmp_path, monkeypatch):
    x = digits[0][:600]
    opts = dict(hidden=(16,), latent_dim=4) | ({"pretrain_epochs": 2} if kind == "stacked" else {})
    fit_args = dict(epochs=4, batch_size=50, lr=3e-3, seed=3, verbose=0)
    if kind == "cvae":  # labels in every batch; label dropout draws from the saved generator state
        fit_args["y"] = digits[1][:600]
        opts["label_dropout"] = 0.2

    reference = ae.build(kind, input_shape=(64,), **opts)
    ae.fit(reference, x, out=tmp_path / "ref", **fit_args)

    # Crash in the 3rd epoch of the last stage, after two epochs were checkpointed.
    real_epoch, calls = loop.train_epoch, []

    def crashing(model, *args, **kwargs):
        calls.append(1)
        if len(calls) == (2 + 2 + 3 if kind == "stacked" else 3):
            raise KeyboardInterrupt("simulated crash")
        return real_epoch(model, *args, **kwargs)

    monkeypatch.setattr(loop, "train_epoch", crashing)
    crashed = ae.build(kind, input_shape=(64,), **opts)
    with pytest.raises(KeyboardInterrupt):
        ae.fit(crashed, x, out=tmp_path / "run", **fit_args)
    monkeypatch.setattr(loop, "train_epoch", real_epoch)

    resumed = ae.build(kind, input_shape=(64,), **opts)
    history = ae.fit(resumed, x, out=tmp_path / "run", resume=True, **fit_args)
    _assert_same_weights(_weights(resumed), _weights(reference))
    _assert_same_weights(_weights(ae.load(tmp_path / "run")), _weights(reference))
    ref_rows = list(csv.DictReader(open(tmp_path / "ref" / "history.csv")))
    assert len(history) == len(ref_rows)
    assert [r["val_total"] for r in ref_rows] == [str(r["val_total"]) for r in history]


def test_resume_with_more_epochs_extends_the_run(digits, tmp_path):
    x = digits[0][:400]
    a = ae.build("ae", input_shape=(64,), hidden=(16,), latent_dim=4)
    ae.fit(a, x, epochs=2, out=tmp_path / "a", verbose=0)
    ae.fit(a, x, epochs=5, out=tmp_path / "a", resume=True, verbose=0)
    b = ae.build("ae", input_shape=(64,), hidden=(16,), latent_dim=4)
    ae.fit(b, x, epochs=5, out=tmp_path / "b", verbose=0)
    _assert_same_weights(_weights(a), _weights(b))


def test_an_existing_run_is_never_overwritten_silently(digits, tmp_path):
    x = digits[0][:200]
    model = ae.build("ae", input_shape=(64,), hidden=(8,), latent_dim=2)
    ae.fit(model, x, epochs=1, out=tmp_path, verbose=0)
    before = (tmp_path / "weights.safetensors").read_bytes()
    with pytest.raises(ae.CheckpointError, match="already holds a run"):
        ae.fit(ae.build("ae", input_shape=(64,), hidden=(8,), latent_dim=2, seed=5), x, epochs=1, out=tmp_path, verbose=0)
    assert (tmp_path / "weights.safetensors").read_bytes() == before
    ae.fit(ae.build("ae", input_shape=(64,), hidden=(8,), latent_dim=2, seed=5), x, epochs=1, out=tmp_path,
           overwrite=True, verbose=0)
    assert (tmp_path / "weights.safetensors").read_bytes() != before


def test_resume_refuses_a_different_model(digits, tmp_path):
    x = digits[0][:200]
    ae.fit(ae.build("ae", input_shape=(64,), hidden=(8,), latent_dim=2), x, epochs=1, out=tmp_path, verbose=0)
    with pytest.raises(ae.CheckpointError, match="different model"):
        ae.fit(ae.build("ae", input_shape=(64,), hidden=(8,), latent_dim=3), x, epochs=2, out=tmp_path, resume=True, verbose=0)


def test_nan_loss_stops_naming_epoch_and_term_and_keeps_last_good_checkpoint(digits, tmp_path, monkeypatch):
    x = digits[0][:300]
    model = ae.build("sparse", input_shape=(64,), hidden=(8,), latent_dim=4)
    real_loss, epochs_seen = type(model).loss, []

    def poisoned(self, xb, *args, **kwargs):
        terms = real_loss(self, xb, *args, **kwargs)
        if self.training and len(epochs_seen) >= 2:
            terms.tensors["sparsity"] = terms.tensors["sparsity"] * float("nan")
        return terms

    real_epoch = loop.train_epoch

    def counting(*args, **kwargs):
        out = real_epoch(*args, **kwargs)
        epochs_seen.append(1)
        return out

    monkeypatch.setattr(loop, "train_epoch", counting)
    monkeypatch.setattr(type(model), "loss", poisoned)  # from epoch 3 on: detected at its end
    with pytest.raises(ae.TrainingError, match=r"'sparsity'.*epoch 3"):
        ae.fit(model, x, epochs=5, out=tmp_path, verbose=0)
    monkeypatch.undo()
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert len(rows) == 2
    loaded = ae.load(tmp_path)
    assert all(torch.isfinite(p).all() for p in loaded.parameters())
    _assert_same_weights(_weights(model), _weights(loaded))  # in memory too: the last good weights


def test_early_stopping_restores_best_weights(digits, tmp_path):
    x = digits[0]
    model = ae.build("ae", input_shape=(64,), hidden=(32,), latent_dim=8)
    # A learning rate this high makes validation loss go up and down: patience 1 stops early.
    history = ae.fit(model, x, epochs=40, lr=0.05, patience=1, out=tmp_path, verbose=0)
    assert len(history) < 40
    best = min(r["val_total"] for r in history)
    final = ae.evaluate_loss(model, torch.from_numpy(x), loop.split(len(x), 0.1, 0)[1])["total"]
    assert final == pytest.approx(best, rel=1e-5)


def test_run_folder_contents(digits, tmp_path):
    x = digits[0][:500]
    model = ae.build("vae", input_shape=(64,), hidden=(16,), latent_dim=2)
    ae.fit(model, x, epochs=3, out=tmp_path, verbose=0, seed=1)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"]["kind"] == "vae" and config["model"]["input_shape"] == [64]
    assert config["library_version"] == ae.__version__ and config["training"]["seed"] == 1
    assert config["data"]["n_train"] == 450 and config["data"]["n_val"] == 50
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for term in ("total", "reconstruction", "kl"):
        assert f"train_{term}" in rows[0] and f"val_{term}" in rows[0]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"train", "validation", "units"} <= set(metrics)
    assert "nats" in metrics["units"]["kl"]
    assert metrics["validation"]["total"] == pytest.approx(
        metrics["validation"]["reconstruction"] + metrics["validation"]["kl"], rel=0.05)
    assert not list(tmp_path.glob("*.tmp"))


def test_stacked_history_has_every_stage_and_pretraining_changes_weights(digits):
    x = digits[0]
    model = ae.build("stacked", input_shape=(64,), hidden=(32, 16), latent_dim=8, pretrain_epochs=3,
                     noise="masking", noise_level=0.2)
    first = model.encoder[1].weight.detach().clone()
    history = ae.fit(model, x, epochs=2, verbose=0)
    assert history.stages == ["pretrain_layer_1", "pretrain_layer_2", "pretrain_layer_3", "finetune"]
    assert [len(history.stage(s)) for s in history.stages] == [3, 3, 3, 2]
    assert not torch.equal(first, model.encoder[1].weight)
    for stage in history.stages[:-1]:
        rows = history.stage(stage)
        assert rows[-1]["train_total"] < rows[0]["train_total"], stage


def test_greedy_layer_trains_on_codes_of_the_layer_below(digits):
    from aekit.models.stacked import greedy_layers

    model = ae.build("stacked", input_shape=(64,), hidden=(32,), latent_dim=8, pretrain_epochs=1)
    stages = greedy_layers(model)
    x = torch.from_numpy(digits[0][:5])
    h1 = torch.relu(model.encoder[1](x))
    assert torch.allclose(stages[1].features(x), h1)
    assert stages[1].model.config.input_shape == (32,) and stages[1].model.config.reconstruction == "mse"
    assert stages[1].model.encoder[0] is model.encoder[3]  # shares parameters with the deep model


def test_memmap_array_trains_from_disk(digits, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, digits[0])
    x = np.load(path, mmap_mode="r")
    model = ae.build("ae", input_shape=(64,), hidden=(16,), latent_dim=4)
    history = ae.fit(model, x, epochs=2, verbose=0)
    assert history[-1]["val_total"] < history[0]["val_total"]


# ----- speed options: precision, lr schedule, callback, memmap page release -----


def test_cosine_schedule_warms_up_then_decays_to_zero():
    from aekit.training import FitOptions, learning_rate

    opts = FitOptions(lr=0.01, lr_schedule="cosine")
    lrs = [learning_rate(opts, step, 200) for step in range(200)]
    assert lrs[0] == pytest.approx(0.01 / 10)  # warm-up: 5% of 200 steps = 10
    assert max(lrs) == pytest.approx(0.01) and lrs.index(max(lrs)) == 9
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # then never rises
    assert lrs[-1] < 1e-5
    assert learning_rate(FitOptions(lr=0.01), 123, 200) == 0.01


def test_precision_choices_and_errors(digits):
    from aekit.training.precision import resolve

    cpu = torch.device("cpu")
    small = ae.build("ae", input_shape=(64,), hidden=(32,), latent_dim=8)
    assert resolve("fp32", cpu, small) == "fp32" and resolve("bf16", cpu, small) == "bf16"
    assert resolve("auto", cpu, small) == "fp32"  # 4 kFLOP per example: overhead-bound, bf16 gains nothing
    assert resolve("auto", cpu, ae.build("pca", input_shape=(784,))) == "fp32"  # linear: kept exact
    with pytest.raises(ae.ConfigError, match="fp16.*needs a CUDA device"):
        resolve("fp16", cpu, small)
    with pytest.raises(ae.ConfigError, match=r"unknown precision 'bf61'.*valid: auto, bf16, fp16, fp32"):
        ae.fit(small, digits[0], precision="bf61", verbose=0)
    with pytest.raises(ae.ConfigError, match="unknown lr_schedule 'cosin'"):
        ae.fit(small, digits[0], lr_schedule="cosin", verbose=0)


def test_bf16_training_matches_fp32_quality(digits):
    x = digits[0]
    finals = {}
    for precision in ("fp32", "bf16"):
        model = ae.build("vae", input_shape=(64,), hidden=(128, 64), latent_dim=8, seed=1)
        history = ae.fit(model, x, epochs=8, lr=3e-3, seed=1, precision=precision, verbose=0)
        finals[precision] = history[-1]["val_total"]
    # bf16 keeps losses and optimizer state in float32: the validation -ELBO ends within 2%.
    assert finals["bf16"] == pytest.approx(finals["fp32"], rel=0.02)


def test_callback_sees_every_epoch_and_can_stop_the_run(digits, tmp_path):
    seen = []

    def callback(row, model):
        seen.append((row["epoch"], row["train_total"], model.training))
        return row["epoch"] == 2

    model = ae.build("ae", input_shape=(64,), hidden=(32,), latent_dim=8)
    history = ae.fit(model, digits[0], epochs=5, out=tmp_path / "run", callback=callback, verbose=0)
    assert [e for e, _, _ in seen] == [1, 2] and len(history) == 2
    assert (tmp_path / "run" / runs.METRICS).exists()  # the folder is complete, as after a last epoch
    resumed = ae.fit(model, digits[0], epochs=5, out=tmp_path / "run", resume=True, verbose=0)
    assert [row["epoch"] for row in resumed] == [1, 2, 3, 4, 5]


def test_ddp_shard_weights_make_the_global_mean():
    from aekit.training.distributed import Context

    idx = torch.arange(5)
    for world in (1, 2, 3, 8):
        parts = [Context(rank, world).shard(idx) for rank in range(world)]
        covered = sorted(int(i) for rows, weight in parts if weight for i in rows)
        assert covered == list(range(5))  # every row once; empty ranks run one row weighted 0
        # DDP averages the ranks' gradients: (1 / world) sum_r weight_r * mean_r must give every
        # row the factor 1 / n of the global mean, i.e. weight_r / (world * n_r) = 1 / n.
        for rows, weight in parts:
            if weight:
                assert weight / (world * len(rows)) == pytest.approx(1 / len(idx))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RssFile from /proc")
def test_training_from_a_memmap_keeps_file_pages_out_of_resident_memory(tmp_path):
    def rss_file_mb():
        for line in open("/proc/self/status"):
            if line.startswith("RssFile:"):
                return int(line.split()[1]) / 1024
        return 0.0

    rng = np.random.default_rng(0)
    path = tmp_path / "big.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(80_000, 784))  # 251 MB
    for i in range(0, 80_000, 10_000):
        out[i:i + 10_000] = rng.random((10_000, 784), dtype=np.float32)
    out.flush()
    del out
    data = ae.data.load(path, memmap_threshold=0, scale="none")
    before = rss_file_mb()
    model = ae.build("ae", input_shape=(784,), hidden=(16,), latent_dim=4)
    ae.fit(model, data, epochs=1, batch_size=512, val_fraction=0.01, verbose=0, precision="fp32")
    grown = rss_file_mb() - before
    # One shuffled epoch touches every page of the 251 MB file; each read releases its pages.
    assert grown < 100, f"resident file pages grew by {grown:.0f} MB"
