"""Run-time settings of the Python process a run is built and run in, each for that run only.

    cached_dofn_specs()    -> context manager around building and running a pipeline
    for_run(in_process)    -> context manager around running it: the others that apply

* :func:`cached_dofn_specs` (every run): Beam looks up a DoFn's state and timer specs by inspecting the
  signature of every method of the DoFn, again at each of ~150 call sites per run.
* :func:`quiet_collector` (in-process runs): no young-generation collections of a run's short-lived
  objects, the start-up heap frozen out of the full ones.
* :func:`short_sampler_ticks` (in-process runs): bundles end without waiting out a long sampler tick.

The SDK worker processes of a ``multi_processing`` or remote run are Beam's, untouched. Each measures its
effect on ``bench/bench_io.py``'s 20,000-article replay (a 2.2-2.5 s run) where it is defined.
"""

from __future__ import annotations

import contextlib
import gc
import types
import weakref
from typing import Callable, Iterator

__all__ = ["for_run", "cached_dofn_specs", "quiet_collector", "short_sampler_ticks"]

#: gen-0 collection threshold while an in-process run runs (see quiet_collector).
RUN_GC_THRESHOLD = 100_000

#: Longest tick of Beam's state sampler while an in-process run runs (see short_sampler_ticks).
SAMPLER_PERIOD_MS = 5


@contextlib.contextmanager
def for_run(in_process: bool) -> Iterator[None]:
    """The tunings of a built pipeline's run (``in_process``: its SDK worker runs in this process)."""
    if not in_process:
        yield
        return
    with quiet_collector(), short_sampler_ticks():
        yield


# ------------------------------------------------------------------------------------- DoFn specs

# DoFn class -> (state specs, timer specs), for instances without methods of their own. Weak: Beam makes
# some DoFn classes per bundle processor (bundle_processor.create_pair_with_restriction's), and a local
# unbounded job (pipeline.rounds) builds one every round; a plain dict would keep each of them for good.
_SPECS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _specs_of_class(original: Callable) -> Callable:
    def get_dofn_specs(dofn):
        if any(isinstance(v, types.MethodType) for v in vars(dofn).values()):
            return original(dofn)  # a method set on the instance (beam.Map(obj.method)): not the class's
        found = _SPECS.get(type(dofn))
        if found is None:
            found = _SPECS[type(dofn)] = original(dofn)
        return set(found[0]), set(found[1])  # callers own their sets

    get_dofn_specs.__wrapped__ = original
    return get_dofn_specs


@contextlib.contextmanager
def cached_dofn_specs() -> Iterator[None]:
    """Look up each DoFn class's state and timer specs once.

    ``apache_beam.transforms.userstate.get_dofn_specs`` finds them by building a signature of every bound
    method ``dir(dofn)`` lists (~30 a DoFn, most of them DoFn's own), and Beam calls it from ParDo's
    constructor, the runner-API translation, the bundle processor and the invoker: ~150 calls and
    ~4,500 ``inspect.signature`` calls per run of this job (Beam 2.77), ~0.12 s of a 200-article
    replay's ~0.45 s (eight alternating runs each: 0.456 vs 0.332 s median). The specs are the defaults
    of the class's methods' parameters, so they are cached per class, for instances that hold no bound
    method of their own (``getattr`` finds the class's methods there; a ``beam.Map`` of a bound method
    is looked up afresh). While the run lasts the module's function is replaced (its callers look it up
    through the module), and it is restored after.
    """
    try:
        from apache_beam.transforms import userstate

        original = userstate.get_dofn_specs
    except (ImportError, AttributeError):
        yield
        return
    if hasattr(original, "__wrapped__"):  # a run inside a run: already cached
        yield
        return
    userstate.get_dofn_specs = _specs_of_class(original)
    try:
        yield
    finally:
        userstate.get_dofn_specs = original


# ------------------------------------------------------------------------------------- collector

@contextlib.contextmanager
def quiet_collector() -> Iterator[None]:
    """Freeze the start-up heap and raise the gen-0 threshold to :data:`RUN_GC_THRESHOLD` for the run.

    The run allocates many short-lived objects; every full collection would also walk the whole start-up
    heap (Beam, spaCy, the caller's data). Freezing it leaves them out: ~10 % of a 20,000-article replay
    without NLP. Nearly everything a run allocates is freed by reference counting (records, dicts,
    lists: no cycles), yet the default gen-0 threshold (700 net allocations) ran ~420 young, ~35 middle
    and 3 full collections per 20,000-article replay: 0.15-0.2 s of 2.3-2.9 s, timed with
    ``gc.callbacks``. With this threshold such a replay runs none (it ends ~30,000 net allocations up); a
    longer one collects every 100,000. The usual thresholds, and with them the collection of any cycle
    the run left, come back after it.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(RUN_GC_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


# ------------------------------------------------------------------------------------- state sampler

@contextlib.contextmanager
def short_sampler_ticks() -> Iterator[None]:
    """Cap the state sampler's tick at :data:`SAMPLER_PERIOD_MS` for bundles started inside.

    Every bundle of the Python SDK starts a state-sampler thread and stops it at the bundle's end by
    joining it; the thread sleeps in ticks that grow from 2 ms to 200 ms (``statesampler_fast.pyx``, Beam
    2.77; the ramp is apache/beam#5466), so each bundle ends by waiting out half a tick: ~0.2 s of a
    20,000-article in-process replay, and no option sets the period. The bundle processor builds its
    sampler with the class's default period, so that default is lowered for the run and restored after;
    the sampler only times steps for Beam's msec counters (finer ticks time them more finely; a tick is a
    lock and a few additions, 200 a second at 5 ms). Ten alternating 20,000-article runs each: 2.54 s
    with 200 ms ticks vs 2.37 s with 20 ms; 2.48 s with 20 ms vs 2.36 s with 5 ms. Applied only when the
    signature is the one this was written for; otherwise the run goes on untouched.
    """
    try:
        from apache_beam.runners.worker import statesampler

        init = statesampler.StateSampler.__init__
        defaults = init.__defaults__
        expected = (statesampler.DEFAULT_SAMPLING_PERIOD_MS,)
    except (ImportError, AttributeError):
        defaults = expected = None
    if defaults is None or defaults != expected:
        yield
        return
    init.__defaults__ = (min(SAMPLER_PERIOD_MS, expected[0]),)
    try:
        yield
    finally:
        init.__defaults__ = defaults
