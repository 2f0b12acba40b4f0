"""Training data: paired folders, normalisation, random paired patches, augmentation, pipelines.

The seed's layout is kept: ``DATA/trainx/*.tif`` raw stacks ``(A*P, H, W)`` and
``DATA/trainy/*.tif`` references ``(2H, 2W)``, paired by file name (optional ``testx``/``testy``).
Training runs on random paired patches -- a raw ``P x P`` window and the reference's matching
``2P x 2P`` window -- so it fits CPUs and images of any size. Patch sampling is a pure function
of ``(seed, epoch)``, which makes seeded runs reproducible and lets an interrupted run resume
with exactly the patches it would have seen.

Small data sets are cached in memory; larger ones (over ``cache_limit_mb``) are read from disk
per patch (memory-mapped where the TIFF allows), so the whole set is never loaded at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from srredsim.config import DataConfig, NormalizationConfig
from srredsim.errors import SrredsimError
from srredsim.normalization import EPS, percentile_range
from srredsim.tiff import list_tiffs, read_raw_stack, read_reference


def find_pairs(data_dir: str | os.PathLike, split: str = "train") -> list[tuple[Path, Path]]:
    """Pair ``DATA/{split}x`` with ``DATA/{split}y`` by file name; name any file without a partner."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise SrredsimError(f"{data_dir}: no such data folder")
    xdir, ydir = data_dir / f"{split}x", data_dir / f"{split}y"
    if not xdir.is_dir() or not ydir.is_dir():
        missing = [str(d) for d in (xdir, ydir) if not d.is_dir()]
        raise SrredsimError(f"{data_dir}: missing folder(s) {', '.join(missing)} "
                            f"(expected {split}x/ with raw stacks and {split}y/ with references)")
    xs, ys = list_tiffs(xdir), list_tiffs(ydir)
    if not xs and not ys:
        raise SrredsimError(f"{xdir} and {ydir} contain no TIFF files")
    xnames = {p.stem: p for p in xs}
    ynames = {p.stem: p for p in ys}
    only_x = sorted(set(xnames) - set(ynames))
    only_y = sorted(set(ynames) - set(xnames))
    if only_x or only_y:
        parts = []
        if only_x:
            parts.append(f"no reference in {ydir} for: " + ", ".join(xnames[n].name for n in only_x[:10]))
        if only_y:
            parts.append(f"no raw stack in {xdir} for: " + ", ".join(ynames[n].name for n in only_y[:10]))
        raise SrredsimError(f"unpaired files ({len(xs)} raw, {len(ys)} references); " + "; ".join(parts))
    return [(xnames[n], ynames[n]) for n in sorted(xnames)]


@dataclass
class Pair:
    """One raw/reference pair with its per-image percentile statistics."""

    x_path: Path
    y_path: Path
    shape: tuple[int, int, int]  # raw (C, H, W)
    x_range: tuple[float, float] = (0.0, 1.0)  # (lo, hi) percentiles of the raw stack
    y_range: tuple[float, float] = (0.0, 1.0)
    x_minmax: tuple[float, float] = (0.0, 1.0)
    y_minmax: tuple[float, float] = (0.0, 1.0)
    x: np.ndarray | None = field(default=None, repr=False)  # cached (H, W, C) float32
    y: np.ndarray | None = field(default=None, repr=False)  # cached (2H, 2W) float32


class PairedData:
    """A checked, optionally cached list of raw/reference pairs."""

    def __init__(self, pairs: list[tuple[Path, Path]], frames: int, norm: NormalizationConfig,
                 cache_limit_mb: int = 2048, progress: bool = False, scale: int = 2):
        """``scale``: reference pixels per input pixel (2: raw stack -> 2x image; 1: an image on the
        2x grid -> the same grid, as RED-Net reads a classical reconstruction)."""
        if not pairs:
            raise SrredsimError("no training pairs")
        self.frames = frames
        self.scale = int(scale)
        self.pairs: list[Pair] = []
        total_mb = 0.0
        items = pairs
        if progress:
            from tqdm import tqdm

            items = tqdm(pairs, desc="checking data", unit="pair", leave=False)
        for xp, yp in items:
            x = self._read_input(xp)
            if x.shape[0] != frames:
                raise SrredsimError(f"{xp}: has {x.shape[0]} frames, the model expects {frames} "
                                    f"(angles x phases)")
            y, _ = read_reference(yp)
            s = self.scale
            if y.shape != (s * x.shape[1], s * x.shape[2]):
                raise SrredsimError(
                    f"{yp}: reference is {y.shape[0]}x{y.shape[1]}, expected "
                    f"{'2x the raw size' if s == 2 else 'the size'} of {xp.name} ({s * x.shape[1]}x{s * x.shape[2]})")
            pair = Pair(xp, yp, tuple(x.shape))
            pair.x_range = percentile_range(x, norm.low_percentile, norm.high_percentile)
            pair.y_range = percentile_range(y, norm.low_percentile, norm.high_percentile)
            pair.x_minmax = (float(x.min()), float(x.max()))
            pair.y_minmax = (float(y.min()), float(y.max()))
            total_mb += (x.size + y.size) * 4 / 2**20
            if total_mb <= cache_limit_mb:
                pair.x = np.moveaxis(x.astype(np.float32), 0, -1)
                pair.y = y.astype(np.float32)
            self.pairs.append(pair)
        self.cached = all(p.x is not None for p in self.pairs)
        if not self.cached:  # mixed caching would make memory use surprising: all or nothing
            for p in self.pairs:
                p.x = p.y = None

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def min_size(self) -> int:
        return min(min(p.shape[1], p.shape[2]) for p in self.pairs)

    def global_stats(self) -> dict[str, float]:
        """The paper's global min/max over the whole set (raw and reference separately)."""
        return {
            "x_min": min(p.x_minmax[0] for p in self.pairs),
            "x_max": max(p.x_minmax[1] for p in self.pairs),
            "y_min": min(p.y_minmax[0] for p in self.pairs),
            "y_max": max(p.y_minmax[1] for p in self.pairs),
        }

    def arrays(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw ``(H, W, C)`` and reference ``(sH, sW)`` of pair ``i`` (un-normalised float32; s = scale)."""
        p = self.pairs[i]
        if p.x is not None:
            return p.x, p.y
        x = self._read_input(p.x_path)
        y, _ = read_reference(p.y_path)
        return np.moveaxis(x.astype(np.float32), 0, -1), y

    def _read_input(self, path: Path) -> np.ndarray:
        """``(C, H, W)``: a raw stack, or (scale 1) one image on the 2x grid as one channel."""
        if self.scale == 1:
            return read_reference(path)[0][None]
        return read_raw_stack(path)[0]


def normalize_pair(x: np.ndarray, y: np.ndarray, pair: Pair, norm: NormalizationConfig):
    """Normalise a raw/reference patch with whole-image statistics (as prediction will)."""
    if norm.mode == "global":
        xs = (x - np.float32(norm.x_min)) / np.float32(norm.x_max - norm.x_min)
        ys = (y - np.float32(norm.y_min)) / np.float32(norm.y_max - norm.y_min)
    else:
        xlo, xhi = pair.x_range
        ylo, yhi = pair.y_range
        xs = (x - np.float32(xlo)) / np.float32(xhi - xlo + EPS)
        ys = (y - np.float32(ylo)) / np.float32(yhi - ylo + EPS)
    return xs.astype(np.float32, copy=False), ys.astype(np.float32, copy=False)


def _transform(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    a = np.rot90(a, k, axes=(0, 1))
    return a[:, ::-1] if flip else a


def augment_pair(x: np.ndarray, y_window: np.ndarray, k: int, flip: bool):
    """Rotate by ``k`` quarter turns and optionally flip; raw and reference alike.

    Raw pixel ``i`` sits at reference pixel ``2i`` (the convention of the simulator, of the
    classical reconstruction and of fairSIM: the 2x grid is the raw grid zero-padded in Fourier
    space), so a plain flip of both patches would misregister them by one reference pixel (half a
    raw pixel) along every reversed axis -- enough to wash out the finest, SIM-only detail. The
    reference is therefore given as a window with a one-pixel margin on every side
    (``2p + 2`` square for a ``p`` raw patch), transformed, and cropped where raw pixel
    ``(0, 0)`` of the transformed patch lands.
    """
    p = x.shape[0]
    if y_window.shape[:2] != (2 * p + 2, 2 * p + 2):
        raise ValueError(f"reference window must be {2 * p + 2} square for a {p}-pixel patch")
    xt = _transform(x, k, flip)
    yt = _transform(y_window, k, flip)
    # where does the transformed raw pixel (0, 0) come from, and where does its reference pixel go?
    rr, cc = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    r, c = _transform(rr, k, flip)[0, 0], _transform(cc, k, flip)[0, 0]
    wr, wc = np.meshgrid(np.arange(2 * p + 2) - 1, np.arange(2 * p + 2) - 1, indexing="ij")
    hit = np.argwhere((_transform(wr, k, flip) == 2 * r) & (_transform(wc, k, flip) == 2 * c))[0]
    a, b = int(hit[0]), int(hit[1])
    return np.ascontiguousarray(xt), np.ascontiguousarray(yt[a:a + 2 * p, b:b + 2 * p])


class PatchSampler:
    """Random paired patches; the sequence depends only on ``(seed, epoch)``."""

    def __init__(self, data: PairedData, norm: NormalizationConfig, cfg: DataConfig, seed: int | None,
                 widefield_cutoff: float | None = None):
        """``widefield_cutoff``: the widefield OTF cutoff in cycles per *reference* pixel; needed
        when ``cfg.widefield_fraction`` > 0 (pattern-free pairs, see :class:`DataConfig`)."""
        self.data = data
        self.norm = norm
        self.patch = min(cfg.patch_size, data.min_size)
        self.augment = cfg.augment
        self.seed = 0 if seed is None else int(seed)
        self.widefield_fraction = float(cfg.widefield_fraction)
        if self.widefield_fraction > 0 and not widefield_cutoff:
            raise SrredsimError("data.widefield_fraction needs the widefield cutoff (the run's optics)")
        self.widefield_cutoff = widefield_cutoff
        self._widefield: dict[int, tuple[np.ndarray, np.ndarray, tuple[float, float]]] = {}

    def widefield_pair(self, i: int) -> tuple[np.ndarray, np.ndarray, Pair]:
        """Pair ``i`` without its pattern: raw ``(H, W, C)`` = the mean frame repeated, reference
        restricted to the widefield support; the raw normalisation statistics are the mean
        frame's own (as prediction computes them on such a stack). Cached."""
        from dataclasses import replace

        from srredsim.simulate import widefield_limited

        if i not in self._widefield:
            x, y = self.data.arrays(i)
            mean = x.mean(axis=-1, keepdims=True, dtype=np.float32)
            yw = widefield_limited(y, self.widefield_cutoff)
            self._widefield[i] = (mean, yw, percentile_range(mean, self.norm.low_percentile,
                                                             self.norm.high_percentile))
        mean, yw, xr = self._widefield[i]
        x = np.broadcast_to(mean, mean.shape[:2] + (self.data.frames,))
        return x, yw, replace(self.data.pairs[i], x_range=xr)

    def _same_grid(self, x, y, pair, r0, c0, k, flip):
        """Scale-1 pairs (input and reference on one grid): plain crop, rotation and flip."""
        p = self.patch
        xp, yp = normalize_pair(x[r0:r0 + p, c0:c0 + p], y[r0:r0 + p, c0:c0 + p], pair, self.norm)
        if k or flip:
            xp, yp = _transform(xp, k, flip), _transform(yp, k, flip)
        return np.ascontiguousarray(xp), np.ascontiguousarray(yp)[..., None]

    def _rng(self, epoch: int, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(epoch), stream])

    def sample(self, rng: np.random.Generator, index: int | None = None):
        i = int(rng.integers(len(self.data))) if index is None else index
        pair = self.data.pairs[i]
        _, h, w = pair.shape
        p = self.patch
        r0 = int(rng.integers(0, h - p + 1))
        c0 = int(rng.integers(0, w - p + 1))
        k = int(rng.integers(4)) if self.augment else 0
        flip = bool(rng.integers(2)) if self.augment else False
        if self.widefield_fraction > 0 and index is None and rng.random() < self.widefield_fraction:
            x, y, pair = self.widefield_pair(i)  # training only: validation stays the data as given
        else:
            x, y = self.data.arrays(i)
        if self.data.scale == 1:
            return self._same_grid(x, y, pair, r0, c0, k, flip)
        xp = x[r0:r0 + p, c0:c0 + p]
        if k or flip:  # a one-pixel margin (edge-clamped) keeps raw and reference registered
            rows = np.clip(np.arange(2 * r0 - 1, 2 * (r0 + p) + 1), 0, 2 * h - 1)
            cols = np.clip(np.arange(2 * c0 - 1, 2 * (c0 + p) + 1), 0, 2 * w - 1)
            xp, yw = normalize_pair(xp, y[np.ix_(rows, cols)], pair, self.norm)
            xp, yp = augment_pair(xp, yw, k, flip)
        else:
            yp = y[2 * r0:2 * (r0 + p), 2 * c0:2 * (c0 + p)]
            xp, yp = normalize_pair(xp, yp, pair, self.norm)
        return xp, yp[..., None]

    def epoch(self, epoch: int, count: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = self._rng(epoch)
        for _ in range(count):
            yield self.sample(rng)

    def stream(self, start_epoch: int, per_epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Endless patches: epoch ``start_epoch``, then the next, ``per_epoch`` patches each."""
        e = start_epoch
        while True:
            yield from self.epoch(e, per_epoch)
            e += 1

    def fixed_set(self, per_image: int, seed_stream: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """A fixed validation set: ``per_image`` patches from every pair, no augmentation."""
        aug, self.augment = self.augment, False
        try:
            rng = self._rng(0, seed_stream)
            xs, ys = [], []
            for i in range(len(self.data)):
                for _ in range(per_image):
                    x, y = self.sample(rng, index=i)
                    xs.append(x)
                    ys.append(y)
        finally:
            self.augment = aug
        return np.stack(xs), np.stack(ys)


def batches(stream: Iterator, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:
        xs, ys = zip(*(next(stream) for _ in range(batch_size)))
        yield np.stack(xs), np.stack(ys)


def tf_dataset(sampler: PatchSampler, batch_size: int, per_epoch: int, start_epoch: int = 0):
    """An endless ``tf.data`` pipeline of batched patches (TensorFlow backend)."""
    import tensorflow as tf

    c = sampler.data.frames
    p = sampler.patch
    q = sampler.data.scale * p
    ds = tf.data.Dataset.from_generator(
        lambda: sampler.stream(start_epoch, per_epoch),
        output_signature=(tf.TensorSpec((p, p, c), tf.float32), tf.TensorSpec((q, q, 1), tf.float32)))
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    opts.deterministic = True
    return ds.with_options(opts)


def py_dataset(sampler: PatchSampler, batch_size: int, per_epoch: int, start_epoch: int, steps: int):
    """A ``keras.utils.PyDataset`` of batched patches, for backends without tf.data (JAX, torch)."""
    import keras

    class _Patches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch_index = start_epoch
            self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            self._gen = None

        def __len__(self):
            return steps

        def __getitem__(self, idx):
            if idx == 0 or self._gen is None:
                self._gen = batches(sampler.epoch(self.epoch_index, per_epoch), batch_size)
            return next(self._gen)

        def on_epoch_end(self):
            self.epoch_index += 1

    return _Patches()
