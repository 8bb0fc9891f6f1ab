"""The tour: the lectures' experiments end to end, in one self-contained HTML report.

Each `section_*` function trains what it needs, measures it, and returns a
report Section with one short paragraph saying what it shows (run_tour numbers
them in SECTIONS order). Everything is seeded; `quick` shrinks epochs and data so
the whole tour runs in about a minute (42 s of CPU).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aekit import data as datasets
from aekit.data.toy import ring_map
from aekit.evaluation import metrics
from aekit.evaluation.generation import extrapolate, interpolate, latent_grid, sample
from aekit.evaluation.quality import frechet_distance, generation_quality, train_judge
from aekit.models.corruption import corrupt, shrink
from aekit.models.kinds import build
from aekit.report.figures import image_grid, image_rows, loss_curves, side_by_side
from aekit.report.html import Page, Section, table
from aekit.sklearn import AutoencoderOutlierDetector
from aekit.training import fit


@dataclass
class Budget:
    """Epochs and sizes: the default tour (4 minutes of CPU, one thread) or --quick (42 s; about a minute of wall
    time on 2 shared cores)."""

    digits_epochs: int
    toy_epochs: int
    n_train: int
    n_test: int
    toy_n: int
    lr: float
    likelihood_samples: int  # K of the importance-sampled log-likelihoods
    likelihood_examples: int  # digits they are estimated on

    @classmethod
    def for_mode(cls, quick: bool) -> Budget:
        return cls(10, 150, 2000, 500, 600, 3e-3, 100, 100) if quick else cls(30, 400, 4000, 1000, 1000, 2e-3, 500, 300)


def dequantise(x: np.ndarray, seed: int) -> np.ndarray:
    """8-bit pixels k / 255 as continuous values (k + u) / 256, u ~ U(0, 1): uniform dequantisation, so
    that every model is a density on the same continuous space (Theis et al. 2016)."""
    return ((np.round(x * 255) + np.random.default_rng(seed).random(x.shape)) / 256).astype(np.float32)


def bits_per_pixel(log_likelihood_nats: float, pixels: int) -> float:
    """The 8-bit convention: -(log p(x) - D log 256) / (D log 2) for a density on [0, 1)^D; 8 is uniform."""
    return 8 - log_likelihood_nats / (pixels * math.log(2))


def _density_findings(rows: list[list]) -> str:
    """What the factor-analysis table shows, from its rows [name, how, train, test, test median, ...]."""
    models = {row[0]: row for row in rows[1:]}
    best = {column: max(models, key=lambda name: models[name][column]) for column in (2, 3)}
    fa = models["factor analysis"]
    return (f"Best on the training digits: {best[2]}; on the test digits: {best[3]}. Factor analysis gives the pixels "
            "that training hardly ever inks almost no noise (the map), so a test digit with ink on one of them costs "
            f"it thousands of nats: its mean held-out log-likelihood is {fa[3]:.0f} against a median of {fa[4]:.0f}.")


def _resolution_findings(rows: list[list]) -> str:
    """What the super-resolution table shows, from its rows [factor, blocks, bicubic, autoencoder, ceiling]."""
    two, four = rows
    text = ("At factor 2 the small image still holds most of the digit: "
            + ("the autoencoder still does better than bicubic interpolation. " if two[3] > two[2] else
               "bicubic interpolation does better, the small MLP autoencoder being capped by its own reconstruction "
               "error (last column: its PSNR given the original). "))
    return text + ("At factor 4 what is lost must be guessed, and the autoencoder, which has learnt what digits look "
                   "like, " + ("wins." if four[3] > four[2] else "still loses."))


def in_band(points: np.ndarray, low: float, high: float) -> float:
    """The fraction of 2-D points whose distance from the origin lies in [low, high]."""
    radius = np.linalg.norm(points, axis=1)
    return float(((radius >= low) & (radius <= high)).mean())


class Tour:
    def __init__(self, data: str, quick: bool, seed: int):
        self.seed = seed
        self.budget = Budget.for_mode(quick)
        ds = datasets.load(data)
        if len(ds.input_shape) != 3 or ds.y is None:
            raise datasets.DataError(f"the tour's digit experiments need labelled images; {data!r} has shape "
                                     f"{ds.input_shape} and {'no' if ds.y is None else ''} labels")
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(ds))
        b = self.budget
        n_test = min(b.n_test, len(ds) // 5)
        test_rows, train_rows = order[:n_test], order[n_test:n_test + b.n_train]
        x = np.asarray(ds.x, dtype=np.float32)
        self.shape = ds.input_shape
        self.x_train, self.y_train = x[train_rows], ds.y[train_rows]
        self.x_test, self.y_test = x[test_rows], ds.y[test_rows]
        self.name, self.quick = data, quick
        self.flat_train, self.flat_test = self.x_train.reshape(len(train_rows), -1), self.x_test.reshape(n_test, -1)
        self._judge = None

    # ----- helpers -----

    def train(self, kind, x=None, epochs=None, lr=None, batch_size=64, lr_schedule="constant", y=None, **options):
        x = self.x_train if x is None else x
        shape = x.shape[1:]
        model = build(kind, input_shape=shape, seed=self.seed, **options)
        fit(model, x, y=y, epochs=epochs or self.budget.digits_epochs, batch_size=batch_size, lr=lr or self.budget.lr,
            lr_schedule=lr_schedule, seed=self.seed, val_fraction=0, verbose=0)
        return model

    def mse(self, model, x=None):
        x = self.x_test if x is None else x
        return float(((np.asarray(model.reconstruct(x)) - x) ** 2).mean())

    def pca(self, k):
        from sklearn.decomposition import PCA

        return PCA(n_components=k, random_state=self.seed).fit(self.flat_train)

    def pca_mse(self, pca):
        return float(((pca.inverse_transform(pca.transform(self.flat_test)) - self.flat_test) ** 2).mean())

    @property
    def judge(self):
        if self._judge is None:
            self._judge = train_judge(self.x_train, self.y_train, epochs=10 if self.budget.n_train < 3000 else 15,
                                      seed=self.seed)
        return self._judge

    # ----- the experiments -----

    def section_pca(self):
        k = 16
        pca = self.pca(k)
        # Adam needs many cheap epochs to align the low-variance directions: the model is tiny.
        lin = self.train("pca", latent_dim=k, init="random", epochs=self.budget.digits_epochs * 4, lr=1e-2)
        w = lin.decoder[0].weight.detach().numpy()
        q, _ = np.linalg.qr(w)
        cosines = np.linalg.svd(pca.components_ @ q, compute_uv=False)
        rows = [["scikit-learn PCA", k, self.pca_mse(pca)], ["linear autoencoder (random start)", k, self.mse(lin)]]
        pca_rec = pca.inverse_transform(pca.transform(self.flat_test[:10]))
        fig = image_rows([("input", self.x_test[:10]), ("PCA", pca_rec), ("linear AE", lin.reconstruct(self.x_test[:10]))],
                         self.shape)
        return Section(
            "PCA versus the linear autoencoder",
            "A linear encoder and decoder trained with squared error from a random start learn the principal "
            f"subspace: the test error matches PCA's with {k} components, and the cosines of the principal angles "
            f"between the two subspaces are close to 1 (smallest {cosines.min():.3f}, mean {cosines.mean():.3f}).",
            [("PCA and linear AE reconstructions", fig)],
            [table(rows, ["model", "components", "test MSE per pixel"])],
        )

    def section_factor_analysis(self):
        """PCA, PPCA, factor analysis and a VAE with a variance per pixel: the recitation's path from linear to
        nonlinear factor analysis, as densities of the same dequantised digits."""
        k, b = 16, self.budget
        train, test = dequantise(self.x_train, self.seed), dequantise(self.x_test, self.seed + 1)
        from sklearn.decomposition import PCA

        flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
        pca = PCA(k, random_state=self.seed).fit(flat_train)
        pca_mse = float(((pca.inverse_transform(pca.transform(flat_test)) - flat_test) ** 2).mean())
        ppca = build("ppca", input_shape=self.shape, latent_dim=k, seed=self.seed)
        ppca.initialise_from_data(torch.from_numpy(train))  # the maximum-likelihood closed form: no gradient steps
        fa = self.train("factor_analysis", train, epochs=b.digits_epochs, batch_size=512, latent_dim=k)  # EM epochs
        # Free bits keep the code in use: at this learning rate the per-pixel variances otherwise win the race
        # and the code collapses to the prior (every sample the mean digit).
        vae = self.train("vae", train, lr=3 * b.lr, latent_dim=k, hidden=(512,), reconstruction="gaussian_per_feature",
                         free_bits=0.5)
        n = b.likelihood_examples  # every model on the same first n training and n test digits

        def log_likelihoods(model, x):
            if model is vae:
                return metrics.log_likelihood(vae, x[:n], samples=b.likelihood_samples, seed=self.seed)
            return metrics.exact_log_likelihood(model, x[:n])

        rows = [["PCA, 16 components", "none (not a density)", "", "", "", "", pca_mse]]
        for name, model, how in (("PPCA (closed form)", ppca, "exact"), ("factor analysis", fa, "exact"),
                                 ("VAE, a variance per pixel", vae, f"importance-sampled, K = {b.likelihood_samples}")):
            ll_train, ll_test = log_likelihoods(model, train), log_likelihoods(model, test)
            rows.append([name, how, float(ll_train.mean()), float(ll_test.mean()), float(np.median(ll_test)),
                         bits_per_pixel(float(ll_test.mean()), train[0].size), self.mse(model, test)])
        psi = torch.exp(2 * fa.log_sigma.detach()).numpy().reshape(self.shape[1:])
        sigma2 = float(torch.exp(2 * ppca.log_sigma.detach()))
        maps = side_by_side([("factor analysis: log10 psi per pixel", lambda ax: (
            ax.figure.colorbar(ax.imshow(np.log10(psi), cmap="viridis"), ax=ax), ax.axis("off"))),
            (f"PPCA: one sigma^2 = {sigma2:.3g} for all", lambda ax: (
                ax.figure.colorbar(ax.imshow(np.full_like(psi, np.log10(sigma2)), cmap="viridis",
                                             vmin=np.log10(psi).min(), vmax=np.log10(psi).max()), ax=ax), ax.axis("off")))],
            width=3.6, height=3.0)
        draws = image_rows([(name, m.sample(12, seed=self.seed))
                            for name, m in (("PPCA", ppca), ("factor analysis", fa), ("VAE", vae))], self.shape)
        return Section(
            "Factor analysis: from PCA to the VAE",
            "Probabilistic PCA reads PCA as a generative model, x = W z + mu + e with z ~ N(0, I) and the same noise "
            "variance on every pixel; factor analysis gives each pixel its own noise variance psi ('the error need not "
            "be orthogonal'); a VAE replaces W z by a neural network: nonlinear factor analysis, here with a variance "
            "per pixel as in FA (trained with free bits, 0.5 nats per code dimension). Compared: the density each "
            "model gives the same digits, dequantised ((k + u) / 256, "
            "u uniform) so that all are densities on the same continuous pixels, in nats per image (a Bernoulli "
            "decoder's likelihood of grey values would not be comparable). PPCA and FA give log p(x) exactly, in closed "
            "form; the VAE's is importance-sampled. Bits per pixel: the 8-bit convention (8 = a uniform density). "
            + _density_findings(rows),
            [("noise variance per pixel", maps), ("samples (decoded means)", draws)],
            [table(rows, ["model", "log-likelihood", f"{n} training digits (nats)", f"{n} test digits (nats)",
                          "test median (nats)", "test bits per pixel", "test MSE per pixel"])],
        )

    def section_circle(self):
        ds = datasets.load("circle", n=self.budget.toy_n, seed=self.seed, noise=0.01)
        x, t = ds.x.numpy(), ds.y
        from sklearn.decomposition import PCA

        pca = PCA(1).fit(x)
        pca_rec = pca.inverse_transform(pca.transform(x))
        model = self.train("ae", x, epochs=self.budget.toy_epochs, latent_dim=1, hidden=(64, 64), activation="tanh",
                           reconstruction="mse")
        rec, z = np.asarray(model.reconstruct(x)), metrics.codes(model, x)
        err = lambda r: float(((r - x) ** 2).sum(1).mean())  # noqa: E731
        fig = side_by_side([
            ("PCA, one component", lambda ax: (ax.scatter(x[:, 0], x[:, 1], s=3, c="0.7"),
                                               ax.scatter(pca_rec[:, 0], pca_rec[:, 1], s=3, c="C3"), ax.set_aspect("equal"))),
            ("autoencoder, one code unit", lambda ax: (ax.scatter(x[:, 0], x[:, 1], s=3, c="0.7"),
                                                       ax.scatter(rec[:, 0], rec[:, 1], s=3, c="C0"), ax.set_aspect("equal"))),
            ("the code against the angle", lambda ax: (ax.scatter(t, z[:, 0], s=3), ax.set_xlabel("angle t"),
                                                       ax.set_ylabel("code"))),
        ])
        return Section(
            "The circle",
            "Points on a circle are described by one number, the angle, but no linear projection to one number "
            "keeps them apart: PCA collapses the circle onto a line. A nonlinear autoencoder with a one-unit code "
            "follows the circle; its code is a monotone function of the angle except where it must cut the loop.",
            [("circle reconstructions and code", fig)],
            [table([["PCA, 1 component", err(pca_rec)], ["autoencoder, 1-unit code", err(rec)]],
                   ["model", "squared error per point"])],
        )

    def section_spiral(self):
        b = self.budget
        train = datasets.load("spiral", n=b.toy_n, seed=self.seed, noise=0.005)
        hold = datasets.load("spiral", n=b.toy_n // 4, seed=self.seed + 1, split="holdout")
        x, xh = train.x.numpy(), hold.x.numpy()
        curve = datasets.load("spiral", n=4000, split="all").x.numpy()
        panels, rows = [], []
        for kind, opts in (("ae", {}), ("vae", {"reconstruction": "gaussian"})):
            model = self.train(kind, x, epochs=b.toy_epochs, latent_dim=1, hidden=(64, 64), activation="tanh",
                               **({"reconstruction": "mse"} if kind == "ae" else opts))
            path = interpolate(model, x[len(x) // 4], x[3 * len(x) // 4], steps=200)
            beyond = extrapolate(model, x[len(x) // 2], x[-1], steps=100, beyond=1.0)
            off_curve = lambda p: float(np.sqrt(((p[:, None] - curve[None]) ** 2).sum(-1).min(1)).mean())  # noqa: E731
            rows.append([kind, off_curve(path), off_curve(beyond), float(((np.asarray(model.reconstruct(xh)) - xh) ** 2).sum(1).mean())])
            panels.append((f"{kind}: interpolation (blue), extrapolation (red)", lambda ax, path=path, beyond=beyond: (
                ax.plot(curve[:, 0], curve[:, 1], c="0.85", lw=1), ax.scatter(x[:, 0], x[:, 1], s=2, c="0.5"),
                ax.scatter(xh[:, 0], xh[:, 1], s=2, c="C2"), ax.plot(path[:, 0], path[:, 1], c="C0"),
                ax.plot(beyond[:, 0], beyond[:, 1], c="C3"), ax.set_aspect("equal"))))
        return Section(
            "The spiral: interpolation and extrapolation",
            "Both models see the inner part of a spiral (grey) and get a one-number code. We decode the straight path "
            "between two training codes (interpolation) and continue past the last training point (extrapolation) "
            "into the held-out range (green). The table gives the mean distance of the decoded points to the true "
            "curve and the error on the held-out points: neither model follows the curve beyond the data it saw.",
            [("spiral interpolation and extrapolation", side_by_side(panels))],
            [table(rows, ["model", "interpolation: distance to curve", "extrapolation: distance to curve",
                          "held-out squared error"])],
        )

    def section_2d(self):
        model = self.train("ae", latent_dim=2, hidden=(256, 64))
        z = metrics.codes(model, self.x_test)
        pca = self.pca(2)
        zp = pca.transform(self.flat_test)
        acc = lambda tr, te: metrics.probe_accuracy(tr, self.y_train, te, self.y_test)["knn_accuracy"]  # noqa: E731
        rows = [["deep autoencoder, 2-D code", acc(metrics.codes(model, self.x_train), z), self.mse(model)],
                ["PCA, first two components", acc(pca.transform(self.flat_train), zp), self.pca_mse(pca)]]
        fig = side_by_side([
            ("deep autoencoder codes", lambda ax: ax.scatter(z[:, 0], z[:, 1], c=self.y_test, cmap="tab10", s=4)),
            ("PCA components 1 and 2", lambda ax: ax.scatter(zp[:, 0], zp[:, 1], c=self.y_test, cmap="tab10", s=4)),
        ])
        return Section(
            "Two numbers per digit: deep autoencoder versus PCA",
            "A deep autoencoder squeezed to a 2-D code separates the digit classes far better than PCA's first two "
            "components (colours are the digit labels; the table gives 5-nearest-neighbour accuracy in 2-D and the "
            "reconstruction error).",
            [("2-D codes coloured by digit", fig)],
            [table(rows, ["model", "5-NN accuracy in 2-D", "test MSE per pixel"])],
        )

    def section_sparse(self):
        k = 64
        sparse = self.train("sparse", latent_dim=k, hidden=(), sparsity="kl", sparsity_weight=3.0, sparsity_target=0.05)
        plain = self.train("ae", latent_dim=k, hidden=(), code_activation="sigmoid")
        zs, zp = metrics.codes(sparse, self.x_test), metrics.codes(plain, self.x_test)
        a_s, a_p = metrics.activity(zs), metrics.activity(zp)
        hist = side_by_side([("code activations", lambda ax: (
            ax.hist(zp.ravel(), bins=40, alpha=0.6, label="plain (sigmoid code)", density=True),
            ax.hist(zs.ravel(), bins=40, alpha=0.6, label="sparse (KL, rho = 0.05)", density=True),
            ax.set_yscale("log"), ax.legend(fontsize=8)))])
        features = sparse.encoder[1].weight.detach().numpy()[:32]
        features = (features - features.min(1, keepdims=True)) / np.ptp(features, 1, keepdims=True).clip(1e-8)
        rows = [["sparse", a_s["active_fraction"], a_s["mean_activation"], self.mse(sparse)],
                ["plain", a_p["active_fraction"], a_p["mean_activation"], self.mse(plain)]]
        return Section(
            "Sparse autoencoder",
            "With the penalty sum_j KL(rho || rho_hat_j), most code units are near zero for any given digit (the "
            "histogram's mass sits at 0) and each unit's encoder weights become a localised stroke detector "
            "(the learned features, one image per code unit).",
            [("activation histogram", hist), ("learned features", image_grid(features, self.shape, ncols=16))],
            [table(rows, ["model", "active fraction (> 0.1)", "mean activation", "test MSE per pixel"])],
        )

    def section_denoising(self):
        dae = self.train("denoising", latent_dim=32, noise="gaussian", noise_level=0.4)
        plain = self.train("ae", latent_dim=32)
        r_d, r_p = metrics.denoising(dae, self.x_test), metrics.denoising(plain, self.x_test, noise="gaussian",
                                                                         noise_level=0.4)
        with torch.random.fork_rng(devices=[]):  # the same corruption the model was trained and measured with
            torch.manual_seed(self.seed)
            noisy = corrupt(torch.from_numpy(self.x_test[:10]), "gaussian", 0.4).numpy()
        fig = image_rows([("noisy", noisy), ("denoising AE", dae.reconstruct(noisy)), ("plain AE", plain.reconstruct(noisy)),
                          ("clean", self.x_test[:10])], self.shape)
        rows = [[name, r["noisy_psnr_db"], r["denoised_psnr_db"], r["psnr_gain_db"]] for name, r in
                (("denoising AE", r_d), ("plain AE", r_p))]
        return Section(
            "Denoising",
            "Trained to map corrupted digits (Gaussian noise, std 0.4) back to the clean ones, the denoising "
            "autoencoder removes most of the noise; the PSNR gain is measured on test digits with fresh noise.",
            [("noisy / denoised / clean", fig)],
            [table(rows, ["model", "noisy PSNR (dB)", "reconstructed PSNR (dB)", "gain (dB)"])],
        )

    def section_super_resolution(self):
        """Denoising with noise='downsample': the lectures' 'increasing the resolution of an image'."""
        from PIL import Image

        clean = torch.from_numpy(self.x_test)
        h, w = self.shape[1:]
        rows, figure_rows = [], [("original", self.x_test[:10])]
        for factor in (2, 4):
            model = self.train("denoising", noise="downsample", noise_level=factor, latent_dim=128, hidden=(256,))
            low = shrink(clean, factor).numpy()  # (N, C, H / factor, W / factor)
            bicubic = np.stack([[np.asarray(Image.fromarray(channel).resize((w, h), Image.BICUBIC))
                                 for channel in image] for image in low]).clip(0, 1)
            blocky = corrupt(clean, "downsample", factor).numpy()
            restored = np.asarray(model.reconstruct(blocky))
            psnr = lambda y: metrics.psnr_db(float(((y - self.x_test) ** 2).mean()))  # noqa: E731
            rows.append([f"{factor} ({h // factor} x {w // factor} pixels)", psnr(blocky), psnr(bicubic), psnr(restored),
                         psnr(np.asarray(model.reconstruct(self.x_test)))])
            figure_rows += [(f"1/{factor}: blocks", blocky[:10]), ("bicubic", bicubic[:10]), ("autoencoder", restored[:10])]
        return Section(
            "Super-resolution",
            "A denoising autoencoder whose corruption is a lower resolution (noise='downsample': each factor x factor "
            "block averaged, then repeated back to full size) learns to restore the detail. PSNR on the test digits "
            "against the original, next to bicubic upsampling of the small image (Pillow). " + _resolution_findings(rows),
            [("low resolution, bicubic, autoencoder, original", image_rows(figure_rows, self.shape, size=0.7))],
            [table(rows, ["downsampling factor", "blocks PSNR (dB)", "bicubic PSNR (dB)", "autoencoder PSNR (dB)",
                          "autoencoder on the original (dB)"])],
        )

    def section_contractive(self):
        # One sigmoid layer, as in Rifai et al. 2011: the penalty has a closed form there.
        opts = dict(latent_dim=32, hidden=(), code_activation="sigmoid")
        cae = self.train("contractive", contractive_weight=1.0, **opts)
        plain = self.train("ae", **opts)
        rng = np.random.default_rng(self.seed)
        delta = (0.05 * rng.normal(size=self.x_test.shape)).astype(np.float32)

        def sensitivity(m):
            dz = metrics.codes(m, self.x_test + delta) - metrics.codes(m, self.x_test)
            return float((np.linalg.norm(dz, axis=1) / np.linalg.norm(delta.reshape(len(delta), -1), axis=1)).mean())

        rows = [[name, metrics.jacobian_norm(m, self.x_test, max_examples=300), sensitivity(m), self.mse(m)]
                for name, m in (("contractive (lambda = 1)", cae), ("plain", plain))]
        return Section(
            "Contractive autoencoder",
            "The penalty lambda ||J_f(x)||_F^2 makes the encoder insensitive to small input changes: its Jacobian "
            "norm and the code's change per unit of random input perturbation (std 0.05) are much smaller than a "
            "plain autoencoder's of the same shape, at a small cost in reconstruction.",
            [],
            [table(rows, ["model", "mean ||J||_F^2", "code change / input change", "test MSE per pixel"])],
        )

    def section_stacked(self):
        e = self.budget.digits_epochs
        stacked = build("stacked", input_shape=self.shape, latent_dim=32, hidden=(256, 64), pretrain_epochs=max(1, e // 2),
                        seed=self.seed)
        history = fit(stacked, self.x_train, epochs=e, batch_size=64, lr=self.budget.lr, seed=self.seed, val_fraction=0,
                      verbose=0)
        probe = lambda tr, te: metrics.probe_accuracy(tr, self.y_train, te, self.y_test)["linear_probe_accuracy"]  # noqa: E731
        pca = self.pca(32)
        rows = [["stacked autoencoder codes (32)", probe(metrics.codes(stacked, self.x_train), metrics.codes(stacked, self.x_test))],
                ["raw pixels (784)", probe(self.flat_train, self.flat_test)],
                ["PCA (32)", probe(pca.transform(self.flat_train), pca.transform(self.flat_test))]]
        stage_rows = [[s, len(history.stage(s)), history.stage(s)[0]["train_total"], history.stage(s)[-1]["train_total"]]
                      for s in history.stages]
        return Section(
            "Stacked autoencoder",
            "Each layer is first trained greedily as a shallow autoencoder of the codes below it, then the whole "
            "stack is fine-tuned end to end; the codes then serve as features for a linear classifier "
            "(logistic regression), next to raw pixels and PCA of the same size.",
            [("losses of every stage", loss_curves(history))],
            [table(stage_rows, ["stage", "epochs", "first train loss", "last train loss"]),
             table(rows, ["features", "linear-probe accuracy"])],
        )

    def section_vae(self):
        self.vae = self.train("vae", latent_dim=16, hidden=(256, 64))
        vae2 = self.train("vae", latent_dim=2, hidden=(256, 64))
        samples = self.vae.sample(32, seed=self.seed)
        pairs = [(0, 1), (2, 3), (4, 5)]
        paths = np.concatenate([interpolate(self.vae, self.x_test[i], self.x_test[j], steps=10) for i, j in pairs])
        grid, _ = latent_grid(vae2, n=15)
        return Section(
            "Variational autoencoder",
            "A VAE is trained to make its codes look like draws from N(0, I), so decoding fresh draws from the prior "
            "gives new digits, the spherical path between two digits' codes morphs one into the other, and the "
            "decoded grid of a 2-D VAE (at the prior's quantiles) shows the whole learned manifold.",
            [("samples from the prior", image_grid(samples, self.shape, ncols=16)),
             ("interpolations", image_grid(paths, self.shape, ncols=10)),
             ("decoded 2-D latent grid", image_grid(grid, self.shape, ncols=15, size=0.45))],
        )

    def section_ring(self):
        """Lecture 003: with P(z) = N(0, I), a deterministic g turns z into any distribution, here a ring."""
        b = self.budget
        ring = datasets.load("ring", n=b.toy_n, seed=self.seed)
        x = ring.x.numpy()
        z = np.random.default_rng(self.seed + 1).standard_normal((2000, 2))
        low, high = np.quantile(np.linalg.norm(x, axis=1), [0.01, 0.99])  # the ring: 98% of the data
        options = dict(latent_dim=2, hidden=(64, 64), activation="tanh", reconstruction="gaussian")
        plain = self.train("vae", x, epochs=b.toy_epochs, batch_size=128, **options)
        warm = self.train("vae", x, epochs=b.toy_epochs, batch_size=128, kl_warmup_epochs=b.toy_epochs // 2, **options)
        fitted = np.random.default_rng(self.seed).multivariate_normal(x.mean(0), np.cov(x.T), len(z))
        draws = {name: sample(m, len(z), seed=self.seed) for name, m in (("VAE", plain), ("VAE, KL warm-up", warm))}
        rows = [["g(z), z ~ N(0, I)", in_band(ring_map(z), low, high), ""],
                ["a Gaussian fitted to the data", in_band(fitted, low, high), ""]]
        rows += [[f"{name}: decoded prior draws", in_band(s, low, high), float(metrics.kl_per_dimension(m, x).sum())]
                 for (name, s), m in zip(draws.items(), (plain, warm))]
        circle = np.linspace(0, 2 * np.pi, 200)

        def panel(points, colour):
            def draw(ax):
                for r in (low, high):
                    ax.plot(r * np.cos(circle), r * np.sin(circle), c="0.6", lw=0.8, ls="--")
                ax.scatter(points[:, 0], points[:, 1], s=2, c=colour)
                ax.set_aspect("equal"), ax.set_xlim(-2.2, 2.2), ax.set_ylim(-2.2, 2.2)
            return draw

        fig = side_by_side([("z ~ N(0, I)", panel(z, "C0")), ("g(z) = z / 10 + z / ||z||", panel(ring_map(z), "C2")),
                            ("VAE prior draws, decoded", panel(draws["VAE"], "C3")),
                            ("VAE with KL warm-up", panel(draws["VAE, KL warm-up"], "C1"))], width=3.2, height=3.2)
        return Section(
            "A ring from a Gaussian",
            "The VAE assumes P(z) = N(0, I): a deterministic function of z can turn it into any distribution, as "
            "g(z) = z / 10 + z / ||z|| turns a Gaussian into a ring (lecture 003). A VAE with a 2-D code trained on "
            "such ring points (Gaussian decoder with a learnt variance) must learn a g of its own: the table gives the "
            "fraction of decoded prior draws on the ring (the band between the 1st and 99th percentile of the data's "
            "radius, dashed). Trained plainly it collapses: it explains the ring as noise around the centre and its "
            "code carries no information (KL 0). With the KL weight warmed up from 0 over the first half of training "
            "(kl_warmup_epochs), it uses its code and its prior draws land on the ring.",
            [("z, g(z) and the VAEs' prior draws", fig)],
            [table(rows, ["points", "fraction on the ring", "KL of the code (nats)"])],
        )

    def section_ones_and_eights(self):
        """The lectures' 'generating new data via AEs': a 2-D code of the 1s and 8s, new codes from the region one
        would guess is the latent space, judged; then a VAE's prior."""
        pick_train, pick_test = np.isin(self.y_train, (1, 8)), np.isin(self.y_test, (1, 8))
        x, xt, yt = self.x_train[pick_train], self.x_test[pick_test], self.y_test[pick_test]
        epochs = 4 * self.budget.digits_epochs  # a fifth of the digits: about as many steps as the other models
        plain = self.train("ae", x, epochs=epochs, latent_dim=2, hidden=(256, 64))
        vae = self.train("vae", x, epochs=epochs, latent_dim=2, hidden=(256, 64))
        n = 500 if self.quick else 1000
        standard = np.random.default_rng(self.seed).standard_normal((n, 2)).astype(np.float32)
        generated = {"autoencoder, uniform in the codes' bounding box": sample(plain, n, train=x, density="box", seed=self.seed),
                     "autoencoder, Gaussian fitted to the codes": sample(plain, n, train=x, density="gaussian", seed=self.seed),
                     "autoencoder, N(0, I) as if it were a VAE": np.asarray(plain.decode(standard)),
                     "VAE (2-D code), prior N(0, I)": sample(vae, n, seed=self.seed),
                     "real test 1s and 8s": xt}
        real = self.judge.features(xt)
        rows = []
        for name, xs in generated.items():
            proba = self.judge.predict_proba(xs)
            valid = (proba.max(1) >= 0.9) & np.isin(proba.argmax(1), (1, 8))
            rows.append([name, 1 - float(valid.mean()), float((valid & (proba.argmax(1) == 1)).mean()),
                         float((valid & (proba.argmax(1) == 8)).mean()),
                         frechet_distance(self.judge.features(xs), real) if xs is not xt else 0.0])
        z, zx = metrics.codes(plain, xt), metrics.codes(plain, x)
        low, high = zx.min(0), zx.max(0)

        def draw_codes(ax):
            for digit, colour in ((1, "C0"), (8, "C3")):
                ax.scatter(z[yt == digit, 0], z[yt == digit, 1], s=5, c=colour, label=f"{digit}s")
            ax.plot([low[0], high[0], high[0], low[0], low[0]], [low[1], low[1], high[1], high[1], low[1]], ls="--",
                    c="0.4", label="bounding box of the training codes")
            ax.legend(fontsize=7)

        short = ("AE, box", "AE, Gaussian", "AE, N(0, I)", "VAE, prior", "real")
        samples = image_rows([(label, xs[:12]) for label, xs in zip(short, generated.values())], self.shape, size=0.7)
        return Section(
            "Ones and eights: sampling the latent space",
            "An autoencoder with a 2-D code trained only on the 1s and 8s: the codes of each digit gather in their own "
            "region (the scatter, test digits). New codes are drawn from the region one would guess is the latent "
            "space (the bounding box of the training codes, a Gaussian fitted to them, or N(0, I) as for a VAE) and "
            "decoded; then a VAE with a 2-D code, trained on the same digits, samples its prior. Invalid: the judge "
            "(an MLP classifier trained on the tour's training digits, all ten classes) does not call the sample a 1 "
            "or an 8 with confidence >= 0.9; the real test digits' own row shows the judge's strictness. The Frechet "
            "distance of the judge's features to the real 1s and 8s (lower is closer) tells how far each guess lands "
            "from the data: the box's empty corners and N(0, I), which ignores where the codes are, decode to distorted "
            "shapes; the fitted Gaussian, and the VAE's prior with nothing fitted after training, stay close.",
            [("codes of the test 1s and 8s", side_by_side([("autoencoder codes", draw_codes)], width=5.0, height=4.2)),
             ("decoded samples", samples)],
            [table(rows, ["samples", "invalid fraction", "judged 1", "judged 8", "Frechet distance to real 1s and 8s"])],
        )

    def section_generation(self):
        plain = self.train("ae", latent_dim=16, hidden=(256, 64))
        n = 500 if self.budget.n_train < 3000 else 2000
        generated = {
            "plain AE, Gaussian fitted to codes": sample(plain, n, train=self.x_train, density="gaussian", seed=self.seed),
            "plain AE, N(0, I) like a VAE": np.asarray(plain.decode(np.random.default_rng(self.seed).normal(
                size=(n, 16)).astype(np.float32))),
            "VAE, prior": sample(self.vae, n, seed=self.seed),
        }
        rows, figs = [], []
        for name, xs in generated.items():
            q = generation_quality(self.judge, xs, self.x_test)
            rows.append([name, q["valid_fraction"], q["frechet_distance"], q["class_coverage"]])
            figs.append((name, image_grid(xs[:32], self.shape, ncols=16, title=name)))
        real = generation_quality(self.judge, self.x_test[: len(self.x_test) // 2], self.x_test[len(self.x_test) // 2:])
        rows.append(["real test digits", real["valid_fraction"], real["frechet_distance"], real["class_coverage"]])
        return Section(
            "Generation: plain autoencoder versus VAE",
            "A plain autoencoder has no prior: decoding draws from N(0, I) lands outside the region its codes occupy, "
            "and even a Gaussian fitted to its codes covers holes between them. The VAE's prior is the region its "
            "decoder was trained on. A classifier trained on the labelled training digits judges the samples: the "
            "fraction classified with confidence >= 0.9, the Frechet distance of its features to real test digits "
            "(lower is better) and the share of the ten classes produced.",
            figs, [table(rows, ["samples", "valid fraction", "Frechet distance", "class coverage"])],
        )

    def section_anomaly(self):
        """One-class MNIST: train on one digit, score the test digits, AUC with that digit as normal."""
        from sklearn.decomposition import PCA
        from sklearn.metrics import roc_auc_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import Normalizer

        digits = (0, 1, 7) if self.budget.n_train < 3000 else tuple(range(10))
        rows, last = [], None
        for d in digits:
            normal = self.y_train == d
            truth = (self.y_test != d).astype(int)  # 1 = anomaly
            # The documented image recipe (README, "What works for anomaly detection"): per-image L2
            # normalisation, a small denoising autoencoder on the pixels, the smoothed residual as the score.
            detector = make_pipeline(Normalizer(), AutoencoderOutlierDetector(
                kind="denoising", input_shape=self.shape, scaling=None, anomaly_score="smoothed_squared_error",
                options={"noise_level": 0.05}, epochs=self.budget.digits_epochs * 3, random_state=self.seed))
            detector.fit(self.flat_train[normal])
            scores = detector.decision_function(self.flat_test)
            pca = PCA(16, random_state=self.seed).fit(self.flat_train[normal])
            pca_err = ((pca.inverse_transform(pca.transform(self.flat_test)) - self.flat_test) ** 2).sum(1)
            rows.append([str(d), int(normal.sum()), roc_auc_score(truth, scores), roc_auc_score(truth, pca_err)])
            last = (d, scores, truth)
        rows.append(["mean", "", float(np.mean([r[2] for r in rows])), float(np.mean([r[3] for r in rows]))])
        d, scores, truth = last
        fig = side_by_side([(f"anomaly score, detector trained on {d}s", lambda ax: (
            ax.hist(scores[truth == 0], bins=40, alpha=0.6, density=True, label=f"digit {d} (normal)"),
            ax.hist(scores[truth == 1], bins=40, alpha=0.6, density=True, label="other digits"),
            ax.legend(fontsize=8)))], width=5)
        return Section(
            "Anomaly detection",
            "One-class protocol: a denoising autoencoder trained only on one digit reconstructs the other digits "
            "worse, so its (smoothed) reconstruction error flags them. AUC-ROC of the score on the test digits (that "
            "digit normal, all others anomalous), next to PCA with 16 components fitted to the same images.",
            [("score histograms", fig)],
            [table(rows, ["normal digit", "training images", "autoencoder AUC", "PCA-16 AUC"])],
        )

    def section_compression(self):
        sizes = (4, 16) if self.budget.n_train < 3000 else (4, 8, 16, 32)
        ae_points, pca_points = [], []
        for k in sizes:
            model = self.train("ae", latent_dim=k, hidden=(256, 64))
            c = metrics.compression(model, self.x_test, raw_bytes_per_feature=1, seed=self.seed)
            for precision in ("uint8", "float16"):
                ae_points.append((c[precision]["bytes_per_example"], c[precision]["mse_per_feature"], f"{k}-d {precision}"))
                pca_points.append((c[precision]["bytes_per_example"], c[precision]["pca_mse_per_feature"], f"{k}-d {precision}"))
        rows = [[label, b, e, p] for (b, e, label), (_, p, _) in zip(ae_points, pca_points)]

        def draw(ax):
            for pts, name in ((ae_points, "autoencoder"), (pca_points, "PCA")):
                pts = sorted(pts)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name)
            ax.set_xscale("log"), ax.set_xlabel("bytes per digit (raw: 784)"), ax.set_ylabel("MSE per pixel")
            ax.legend()

        return Section(
            "Compression",
            "Each digit is stored as its code, quantised to 8 bits or 16-bit floats per dimension; the reconstruction "
            "error at each size, for autoencoders with codes of several sizes and PCA with as many components at the "
            "same precision. At a few bytes per digit the nonlinear code wins; with more bytes PCA catches up.",
            [("error versus size", side_by_side([("error versus bytes", draw)], width=5.5))],
            [table(rows, ["code", "bytes per digit", "autoencoder MSE", "PCA MSE"])],
        )


SECTIONS = ("pca", "factor_analysis", "circle", "spiral", "2d", "sparse", "denoising", "super_resolution",
            "contractive", "stacked", "vae", "ring", "ones_and_eights", "generation", "anomaly", "compression")


def run_tour(data: str = "mnist-5k", out="runs/tour", quick: bool = False, seed: int = 0, echo=print) -> Path:
    """Run the experiments (SECTIONS) and write out/tour.html; returns its path."""
    out = Path(out)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tour = Tour(data, quick, seed)
        page = Page("The autoencoder family: a tour",
                    intro=f"The lectures' experiments on {tour.name} ({len(tour.x_train)} training and {len(tour.x_test)} "
                          f"test images) and toy sets, {'quick mode' if quick else 'default mode'}, seed {seed}. "
                          "Errors are per pixel on held-out data unless stated.")
        for number, name in enumerate(SECTIONS, 1):
            t0 = time.perf_counter()
            section = getattr(tour, f"section_{name}")()
            section.title = f"{number}. {section.title}"
            section.seconds = time.perf_counter() - t0
            echo(f"[{time.perf_counter() - started:6.1f} s] {section.title}")
            page.sections.append(section)
    total = time.perf_counter() - started
    page.footer = (f"aekit tour --data {data} --out {out}{' --quick' if quick else ''} --seed {seed}\n"
                   f"total {total:.1f} s")
    out.mkdir(parents=True, exist_ok=True)
    return page.write(out / "tour.html")
