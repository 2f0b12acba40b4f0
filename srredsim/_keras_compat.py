"""Narrow work-arounds for Keras 3 bugs with ``tf.distribute.MultiWorkerMirroredStrategy``.

Keras 3 (checked on 3.15.1, the pinned version) does not run ``Model.fit`` under a multi-worker
strategy (keras-team/keras#20585):

1. ``fit`` obtains a sample batch for its symbolic build by reducing the first *distributed*
   batch across workers, which raises "Attempt to convert a value (PerReplica...)";
2. it then reduces the per-replica scalar logs with ``strategy.reduce("MEAN", v, axis=0)``,
   which fails for scalars ("Invalid reduction dimension 0 for input with 0 dimensions").

:func:`prepare_multiworker_model` builds the model from a local batch and skips step 1;
:func:`patch_scalar_reduction` makes step 2 reduce scalars over replicas (``axis=None``) and
leaves every other case to Keras. Both apply only when a multi-worker strategy is in use.
"""

from __future__ import annotations

_PATCHED = False


def prepare_multiworker_model(model, strategy, x, y) -> None:
    with strategy.scope():
        model._symbolic_build(data_batch=(x, y))
    model._maybe_symbolic_build = lambda *args, **kwargs: None


def patch_scalar_reduction() -> None:
    global _PATCHED
    if _PATCHED:
        return
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            import tensorflow as tf

            def _reduce(v):
                if isinstance(v, tf.distribute.DistributedValues) or tf.is_tensor(v):
                    rank = v.shape.rank if hasattr(v, "shape") and v.shape is not None else None
                    axis = None if not rank else 0
                    return strategy.reduce("MEAN", v, axis=axis)
                return v

            return tf.nest.map_structure(_reduce, values)
        return original(values, strategy, reduction)

    tf_trainer.reduce_per_replica = reduce_per_replica
    _PATCHED = True
