"""Training set-up: strategy, data pipelines, metrics, callbacks, checkpoints and history.

``train(data_dir, out_dir, config)`` turns a paired data folder into a run folder (see
:mod:`srredsim.runfolder`). Defaults are the paper's: MSE loss, Adam (lr 1e-3), batch 1,
100 epochs, PSNR (and SSIM) as metrics. What it adds for real use:

* **nothing lost on a crash** -- Keras ``BackupAndRestore`` keeps weights, optimizer state and
  the epoch counter after every epoch (two generations, so a crash while saving is survivable);
  ``resume=True`` continues at the last completed epoch with the same patch sequence it would
  have seen; weights and history files are written atomically;
* **distribution** -- ``MirroredStrategy`` over all visible GPUs (or ``cpu_devices`` logical
  CPUs, for testing) and ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes a cluster;
  only the chief writes the run folder;
* **reproducibility** -- a seed fixes weights initialisation, patch sampling and (on
  TensorFlow) op determinism;
* **backends** -- with ``KERAS_BACKEND=jax`` (e.g. on a GPU machine without TensorFlow) the
  same code trains from a ``keras.utils.PyDataset`` instead of ``tf.data``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from srredsim.config import CONFIG_NAME, RunConfig
from srredsim.pairs import PairedData, PatchSampler, find_pairs, py_dataset, tf_dataset
from srredsim.errors import SrredsimError, atomic_path, ensure_writable_dir
from srredsim.runfolder import (BACKUP_DIR, CURVE, HISTORY, LOG_DIR, WEIGHTS_BEST, WEIGHTS_LAST,
                                Run, load_run)


# ---------------------------------------------------------------------------------------------
# metrics (keras.ops, so they run on every backend); images are in normalised units, range ~1
# ---------------------------------------------------------------------------------------------
def psnr(y_true, y_pred):
    from keras import ops

    mse = ops.mean(ops.square(y_true - y_pred), axis=(1, 2, 3))
    return ops.mean(10.0 * ops.log(1.0 / ops.maximum(mse, 1e-10)) / math.log(10.0))


def _gaussian_kernel(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size, dtype=np.float32) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)[:, :, None, None]


def ssim(y_true, y_pred):
    """Mean SSIM (Gaussian window 11, sigma 1.5, dynamic range 1), as tf.image.ssim."""
    from keras import ops

    k = ops.convert_to_tensor(_gaussian_kernel())
    c1, c2 = 0.01**2, 0.03**2

    def blur(t):
        return ops.conv(t, k, strides=1, padding="valid")

    mu_x, mu_y = blur(y_true), blur(y_pred)
    sxx = blur(y_true * y_true) - mu_x * mu_x
    syy = blur(y_pred * y_pred) - mu_y * mu_y
    sxy = blur(y_true * y_pred) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return ops.mean(s)


# ---------------------------------------------------------------------------------------------
# strategy
# ---------------------------------------------------------------------------------------------
def _backend() -> str:
    import keras

    return keras.backend.backend()


def _tf_config() -> dict | None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SrredsimError(f"TF_CONFIG is not valid JSON: {exc}") from None


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a non-chief worker."""
    cfg = _tf_config()
    if not cfg:
        return True
    task = cfg.get("task", {})
    cluster = cfg.get("cluster", {})
    if task.get("type") == "chief":
        return True
    if task.get("type") == "worker" and "chief" not in cluster:
        return int(task.get("index", 0)) == 0
    return False


def make_strategy(cfg: RunConfig):
    """Pick the distribution strategy the config asks for (``auto`` decides from the machine)."""
    if _backend() != "tensorflow":
        if cfg.train.strategy in ("mirrored", "multiworker"):
            raise SrredsimError(f"strategy {cfg.train.strategy!r} needs KERAS_BACKEND=tensorflow")
        return None
    import tensorflow as tf

    if cfg.train.cpu_devices > 1:
        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration()] * cfg.train.cpu_devices)
        except RuntimeError as exc:
            raise SrredsimError(f"cannot split the CPU into logical devices after TensorFlow started: {exc}") from None
    want = cfg.train.strategy
    if want == "auto":
        if _tf_config():
            want = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1 or cfg.train.cpu_devices > 1:
            want = "mirrored"
        else:
            want = "none"
    if want == "none":
        return None
    if want == "multiworker":
        if not _tf_config():
            raise SrredsimError("strategy 'multiworker' needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


# ---------------------------------------------------------------------------------------------
# callbacks
# ---------------------------------------------------------------------------------------------
def _callbacks_module():
    import keras

    class AtomicCheckpoints(keras.callbacks.Callback):
        """Save ``weights_last`` every epoch and ``weights_best`` on a new best ``val_loss``,
        each through a temporary file and a rename (a crash never leaves a broken file)."""

        def __init__(self, folder: Path | None, best: float = math.inf, build_twin=None):
            super().__init__()
            self.folder = folder
            self.best = best
            self.build_twin = build_twin
            self._twin = None

        def _save(self, name: str):
            # A compiled model's save_weights also stores the optimizer state (3x the size);
            # the run folder keeps network weights only (the optimizer lives in backup/).
            if self._twin is None and self.build_twin is not None:
                self._twin = self.build_twin()
            source = self.model
            if self._twin is not None:
                self._twin.set_weights(self.model.get_weights())
                source = self._twin
            with atomic_path(self.folder / name, suffix=".weights.h5") as tmp:
                source.save_weights(tmp)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            if self.folder is None:  # non-chief worker: must still take part in any collective
                return
            self._save(WEIGHTS_LAST)
            val = logs.get("val_loss", logs.get("loss"))
            if val is not None and np.isfinite(val) and val < self.best:
                self.best = float(val)
                self._save(WEIGHTS_BEST)

    class HistoryWriter(keras.callbacks.Callback):
        """Append one row per epoch to ``history.csv`` (rewritten atomically) and redraw the
        training-curve PNG, so both are current even if training dies."""

        def __init__(self, folder: Path | None, rows: list[dict]):
            super().__init__()
            self.folder = folder
            self.rows = rows

        def on_epoch_end(self, epoch, logs=None):
            if self.folder is None:
                return
            row = {"epoch": epoch + 1}
            row.update({k: float(v) for k, v in (logs or {}).items() if np.isscalar(v) or np.ndim(v) == 0})
            self.rows.append(row)
            write_history(self.folder / HISTORY, self.rows)
            try:
                plot_history(self.rows, self.folder / CURVE)
            except Exception as exc:  # a plot must never stop training
                print(f"warning: could not draw the training curve: {exc}", file=sys.stderr)

    return AtomicCheckpoints, HistoryWriter


def _load_initial_weights(model, source: Path, optics=None, model_cfg=None) -> None:
    from srredsim.pretrained import resolve
    from srredsim.runfolder import is_run

    source = resolve(source)  # a shipped model's name, e.g. --init-from default
    path = load_run(source).weights_path("best") if is_run(source) else source
    if not path.is_file() or not path.name.endswith(".weights.h5"):
        raise SrredsimError(f"--init-from {source}: expected a run folder or a .weights.h5 file")
    if is_run(source) and model_cfg is not None:
        src = load_run(source).config
        same_io = src.model.in_channels == model.input.shape[-1]
        if (same_io and src.model.architecture == model_cfg.architecture == "sr_redsim"
                and (src.model.filters, src.model.depth) != (model_cfg.filters, model_cfg.depth)):
            from srredsim.grow import grow_sr_redsim

            grow_sr_redsim(load_run(source).load_model("best"), model, src.model.depth, model_cfg.depth)
            print(f"--init-from {source}: {src.model.filters}-filter depth-{src.model.depth} network grown into "
                  f"{model_cfg.filters} filters, depth {model_cfg.depth} (srredsim.grow)", flush=True)
            return
    if is_run(source) and optics is not None:
        src = load_run(source).config
        if (src.model.in_channels != model.input.shape[-1] and src.model.takes_raw and model_cfg is not None
                and model_cfg.takes_raw and src.optics.angles == optics.angles
                and src.optics.beams == optics.beams == 2):
            _load_other_layout(model, load_run(source).load_model("best"), optics.angles,
                               src.optics.phases, optics.phases)
            print(f"--init-from {source}: {src.optics.angles}x{src.optics.phases} network converted to "
                  f"{optics.angles}x{optics.phases} frames (srredsim.layouts)", flush=True)
            return
    try:
        model.load_weights(path)
    except Exception as exc:
        raise SrredsimError(f"--init-from {path}: weights do not fit this network ({exc})") from None


def _load_other_layout(model, source_model, angles: int, phases_from: int, phases_to: int) -> None:
    """Copy weights layer by layer, folding the phase map into the first convolution."""
    from srredsim.layouts import convert_first_kernel

    first = model.layers[1].name
    for layer in model.layers:
        if not layer.weights:
            continue
        weights = source_model.get_layer(layer.name).get_weights()
        if layer.name == first:
            weights = [convert_first_kernel(weights[0], angles, phases_from, phases_to)] + weights[1:]
        layer.set_weights(weights)


def _time_budget(minutes: float):
    """Stop training at the end of the first epoch that ends after ``minutes`` of wall time."""
    import time

    import keras

    class TimeBudget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            if time.monotonic() - self.start > 60 * minutes:
                print(f"time budget of {minutes:g} min reached after epoch {epoch + 1}; stopping", flush=True)
                self.model.stop_training = True

    return TimeBudget()


def tensorboard_available() -> bool:
    """Keras' TensorBoard callback needs the ``tensorboard`` package (tensorflow-cpu does not bring it)."""
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        rows = []
        for r in csv.DictReader(fh):
            rows.append({k: (int(float(v)) if k == "epoch" else float(v)) for k, v in r.items() if v not in (None, "")})
        return rows


def write_history(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)


def plot_history(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return
    ep = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if key in rows[0]:
            axes[0].plot(ep, [r.get(key, np.nan) for r in rows], style, label=key)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].set_title("loss (MSE, normalised units)")
    axes[0].legend()
    for key, style in (("psnr", "-"), ("val_psnr", "--")):
        if key in rows[0]:
            axes[1].plot(ep, [r.get(key, np.nan) for r in rows], style, label=key)
    axes[1].set_xlabel("epoch")
    axes[1].set_title("PSNR (dB)")
    axes[1].legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# the training entry point
# ---------------------------------------------------------------------------------------------
def _split_validation(data_dir: Path, cfg: RunConfig, seed: int):
    train_pairs = find_pairs(data_dir, "train")
    if (data_dir / "testx").is_dir() and (data_dir / "testy").is_dir():
        return train_pairs, find_pairs(data_dir, "test"), "testx/testy"
    n = len(train_pairs)
    n_val = int(round(n * cfg.data.val_fraction))
    if cfg.data.val_fraction > 0 and n >= 2:
        n_val = max(1, min(n - 1, n_val))
    if n_val == 0:
        return train_pairs, train_pairs, "training pairs (too few pairs to hold any out)"
    order = np.random.default_rng([seed, 7]).permutation(n)
    val = [train_pairs[i] for i in sorted(order[:n_val])]
    train = [train_pairs[i] for i in sorted(order[n_val:])]
    return train, val, f"{n_val} of {n} training pairs held out"


def _prepare_out(out_dir: Path, cfg: RunConfig, resume: bool, overrides_given: bool) -> tuple[RunConfig, int, list[dict]]:
    """Check the run folder; on resume return the saved config (with the caller's epoch count when
    the caller passed a configuration), start epoch and history."""
    if resume:
        if not (out_dir / CONFIG_NAME).exists():
            raise SrredsimError(f"--resume: {out_dir} is not a run folder (no {CONFIG_NAME})")
        saved = load_run(out_dir).config
        if overrides_given and cfg.train.epochs != saved.train.epochs:
            saved = saved.with_overrides({"train.epochs": cfg.train.epochs})
        meta = out_dir / BACKUP_DIR / "training_metadata.json"
        start = 0
        if meta.exists():
            try:
                start = int(json.loads(meta.read_text())["epoch"])
            except Exception:
                start = 0
        rows = [r for r in read_history(out_dir / HISTORY) if r.get("epoch", 0) <= start]
        return saved, start, rows
    if out_dir.exists() and any(out_dir.iterdir()):
        raise SrredsimError(f"{out_dir} exists and is not empty; use --resume to continue that run "
                            "or choose another --out")
    ensure_writable_dir(out_dir)
    return cfg, 0, []


def train(data_dir: str | os.PathLike, out_dir: str | os.PathLike, config: RunConfig | None = None,
          resume: bool = False, verbose: int | None = None, callbacks: list | None = None,
          init_from: str | os.PathLike | None = None) -> Run:
    """Train a model on ``data_dir`` (trainx/trainy layout) into the run folder ``out_dir``.

    ``callbacks`` are extra Keras callbacks (run before the checkpointing ones).
    ``init_from`` (a run folder or a ``.weights.h5`` file of the same architecture) starts from
    trained weights instead of a random initialisation: fine-tuning, e.g. of the pretrained
    default model on your own data.
    """
    import keras

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    cfg = config or RunConfig()
    chief = is_chief()
    if chief:
        cfg, start_epoch, rows = _prepare_out(out_dir, cfg, resume, config is not None)
        write_dir: Path | None = out_dir
    else:  # non-chief workers keep their (identical) state out of the run folder
        start_epoch, rows = 0, []
        write_dir = None
    if start_epoch >= cfg.train.epochs:
        print(f"{out_dir}: already trained for {start_epoch} epochs (asked for {cfg.train.epochs}); "
              "raise --epochs to continue")
        return load_run(out_dir)

    seed = cfg.train.seed
    if seed is not None:
        keras.utils.set_random_seed(seed)
        if _backend() == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()

    from srredsim.hardware import POLICY_WORDS, training_policy

    policy = training_policy(cfg.train.precision)
    previous_policy = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        return _train(data_dir, out_dir, cfg, chief, start_epoch, rows, write_dir, resume, verbose,
                      callbacks, init_from, seed, f"{POLICY_WORDS.get(policy, policy)}")
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _train(data_dir, out_dir, cfg, chief, start_epoch, rows, write_dir, resume, verbose, callbacks,
           init_from, seed, precision_note):
    import keras

    strategy = make_strategy(cfg)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if cfg.train.batch_size % replicas:
        raise SrredsimError(f"batch size {cfg.train.batch_size} must be a multiple of the {replicas} "
                            "devices training in sync (set --batch-size)")

    if cfg.model.architecture == "red_net":
        from srredsim.redfairsim import check_pairs_settings

        check_pairs_settings(data_dir, cfg.model)
    train_pairs, val_pairs, val_note = _split_validation(data_dir, cfg, seed or 0)
    norm = cfg.normalization
    show = verbose is None and sys.stderr.isatty()
    train_data = PairedData(train_pairs, cfg.model.in_channels, norm, cfg.data.cache_limit_mb, progress=show,
                            scale=cfg.model.scale)
    val_data = PairedData(val_pairs, cfg.model.in_channels, norm, cfg.data.cache_limit_mb, scale=cfg.model.scale)
    if norm.mode == "global" and not norm.has_global_stats:
        stats = train_data.global_stats()
        if stats["x_max"] <= stats["x_min"] or stats["y_max"] <= stats["y_min"]:
            raise SrredsimError("global normalisation impossible: the training data are constant")
        cfg = cfg.with_overrides({f"normalization.{k}": v for k, v in stats.items()})
        norm = cfg.normalization
    if cfg.model.architecture == "unet":
        m = 2 ** cfg.model.unet_levels
        if train_data.min_size < m:
            raise SrredsimError(f"U-Net needs images of at least {m} pixels")
    if cfg.training_range is None:  # data written by the recipes say what they span (issue 11)
        from srredsim.model_optics import training_range_from_data

        rng = training_range_from_data(data_dir)
        if rng is not None:
            cfg = cfg.model_copy(update={"training_range": rng})
    if chief:
        cfg.save(out_dir / CONFIG_NAME)

    from srredsim.model_optics import cutoff_per_pixel

    # pattern-free pairs (data.widefield_fraction) are cut at the widefield cutoff on the 2x grid
    sampler = PatchSampler(train_data, norm, cfg.data, seed, widefield_cutoff=cutoff_per_pixel(cfg.optics) / 2)
    if cfg.model.architecture == "unet":
        m = 2 ** cfg.model.unet_levels
        sampler.patch = max(m, sampler.patch // m * m)
    val_sampler = PatchSampler(val_data, norm, cfg.data, seed, widefield_cutoff=sampler.widefield_cutoff)
    val_sampler.patch = min(sampler.patch, val_data.min_size)
    if cfg.model.architecture == "unet":
        val_sampler.patch = max(m, val_sampler.patch // m * m)
    xv, yv = val_sampler.fixed_set(cfg.data.val_patches_per_image)
    per_epoch_patches = cfg.data.patches_per_image * len(train_data)
    steps = cfg.train.steps_per_epoch or max(1, math.ceil(per_epoch_patches / cfg.train.batch_size))
    per_epoch = steps * cfg.train.batch_size

    if _backend() == "tensorflow":
        ds = tf_dataset(sampler, cfg.train.batch_size, per_epoch, start_epoch)
    else:
        ds = py_dataset(sampler, cfg.train.batch_size, per_epoch, start_epoch, steps)

    from srredsim.models import build_model

    def build_and_compile():
        model = build_model(cfg.model)
        model.compile(optimizer=keras.optimizers.Adam(cfg.train.learning_rate),
                      loss=cfg.train.loss, metrics=[psnr, ssim])
        return model

    if strategy is not None:
        with strategy.scope():
            model = build_and_compile()
        if _tf_config():  # Keras 3 needs help with multi-worker training (see _keras_compat)
            from srredsim._keras_compat import patch_scalar_reduction, prepare_multiworker_model

            patch_scalar_reduction()
            prepare_multiworker_model(model, strategy, xv[:1], yv[:1])
    else:
        model = build_and_compile()

    if init_from is not None and start_epoch == 0:
        _load_initial_weights(model, Path(init_from), cfg.optics, cfg.model)

    AtomicCheckpoints, HistoryWriter = _callbacks_module()
    best = min((r["val_loss"] for r in rows if "val_loss" in r), default=math.inf)
    backup = (out_dir if chief else Path(tempfile.mkdtemp(prefix="srredsim-worker-"))) / BACKUP_DIR
    callbacks = list(callbacks or []) + [
        keras.callbacks.TerminateOnNaN(),
        AtomicCheckpoints(write_dir, best, build_twin=lambda: build_model(cfg.model)),
        HistoryWriter(write_dir, rows),
        keras.callbacks.BackupAndRestore(str(backup), double_checkpoint=True, delete_checkpoint=False),
    ]
    if cfg.train.reduce_lr_on_plateau:
        callbacks.insert(0, keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=4,
                                                              min_lr=cfg.train.learning_rate / 64, verbose=1))
    if cfg.train.max_minutes:
        callbacks.append(_time_budget(cfg.train.max_minutes))
    if cfg.train.tensorboard and chief and _backend() == "tensorflow":
        if tensorboard_available():
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out_dir / LOG_DIR), write_graph=False,
                                                         profile_batch=0))
        else:  # a dependency of srredsim; only a broken or trimmed install lacks it
            print("note: TensorBoard is not installed, so no logs/ are written (pip install tensorboard; "
                  "or --set train.tensorboard=false)", file=sys.stderr)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    if verbose:
        n_params = model.count_params()
        print(f"training {cfg.model.architecture} ({n_params:,} parameters) on {len(train_data)} pairs "
              f"(validation: {val_note}); {sampler.patch}px patches, batch {cfg.train.batch_size}, "
              f"{steps} steps/epoch, epochs {start_epoch + 1}..{cfg.train.epochs}, {precision_note}"
              + (f", {replicas} devices" if replicas > 1 else ""), flush=True)
    try:
        model.fit(ds, epochs=cfg.train.epochs, steps_per_epoch=steps, validation_data=(xv, yv),
                  validation_batch_size=max(1, min(len(xv), 8 * replicas)), callbacks=callbacks,
                  verbose=verbose, initial_epoch=start_epoch, shuffle=False)
    finally:
        if not chief:
            import shutil

            shutil.rmtree(backup.parent, ignore_errors=True)
    if chief and verbose:
        hist = read_history(out_dir / HISTORY)
        if hist:
            b = min(hist, key=lambda r: r.get("val_loss", math.inf))
            print(f"done: best epoch {b['epoch']} val_loss {b.get('val_loss', float('nan')):.4g} "
                  f"val_psnr {b.get('val_psnr', float('nan')):.2f} dB -> {out_dir}")
    return load_run(out_dir) if chief else Run(path=out_dir, config=cfg)
