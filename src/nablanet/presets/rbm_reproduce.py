"""Reproduce the energy-based results on MNIST: one experiment per command, results
JSON and PNGs in a run directory.

    python -m nablanet.presets.rbm_reproduce rbm|dbn|generate|autoencoder --out DIR
        [--epochs N] [--fine-tune-epochs N] [--train-size N] [--test-size N]
        [--validation-size N] [--code-size K] [--input-dropout P] [--device cpu|gpu]
        [--seed S] [--data-dir DIR]

* ``rbm``: a 784-500 RBM by CD-1 on binarised MNIST; AIS log Z and the test
  log-likelihood (Salakhutdinov & Murray 2008); filters.png, samples.png.
* ``dbn``: 784-500-500-2000 pretrained greedily, unrolled with a softmax layer and
  fine-tuned by backprop; the test error (Hinton & Salakhutdinov 2006: 1.2%).
* ``generate``: the generative DBN with 10 label units (Hinton, Osindero & Teh 2006):
  free-energy classification error; 100 digits per class generated with the label
  clamped (generated.png), and the fraction a separately trained classifier assigns
  to the clamped class, for the preset's sampler and for the others it compares
  (plain 1000-step chains from a random start among them).
* ``autoencoder``: 784-1000-500-250-30 (``--code-size``) pretrained, unrolled,
  fine-tuned; test reconstruction error per image beside PCA's with the same code
  size (3.00 and 13.87 published); reconstructions.png, and codes.png when the
  code is 2-D. ``--input-dropout`` makes it a denoising autoencoder.
* ``hinton-2006``: dbn, generate and autoencoder one after another, each in
  ``OUT/<name>`` (also ``nablanet reproduce hinton-2006``).

Every run directory holds ``results.json`` (our numbers, the published ones, the
settings), ``metrics.jsonl`` (one line per epoch of every phase), the PNGs and the
models: ``rbm/`` or ``dbn/`` (:func:`~nablanet.models.persistence.save_rbm`; what
``nablanet generate RUN --label 3`` reads), ``best/`` and ``last/`` for a
fine-tuned classifier, ``autoencoder/`` for a fine-tuned autoencoder.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ..backend import get_backend, make_rng
from ..data import Dataset, load_mnist
from ..errors import ConfigError, NablanetError
from ..training.callbacks import Callback, Checkpoint, EarlyStopping
from ..utils.atomic import atomic_write_bytes
from ..utils.wording import Parser, plural
from . import rbm as presets

EXPERIMENTS = {"rbm": "rbm", "dbn": "dbn", "generate": "dbn-generative",
               "autoencoder": "deep-autoencoder"}
#: preset → the experiment that trains it (``nablanet pretrain --preset NAME``)
PRESET_EXPERIMENTS = {**{preset: name for name, preset in EXPERIMENTS.items()},
                      "deep-autoencoder-2d": "autoencoder"}
#: the acceptance thresholds of the issue (full-size runs)
TARGETS = {"dbn_test_error": 0.013, "autoencoder_error": 3.3, "autoencoder_vs_pca": 3.0,
           "generated_as_clamped": 0.90}


# -- the run directory's log -----------------------------------------------------------------
class RunLog(Callback):
    """metrics.jsonl (one JSON line per epoch, tagged with its phase) and progress lines.

    Used directly for RBM epochs (:meth:`epoch`) and as a Trainer callback for
    fine-tuning epochs.
    """

    priority = 110

    def __init__(self, directory: Path, stream=sys.stderr):
        self.path = directory / "metrics.jsonl"
        self.path.write_text("")
        self.stream = stream
        self.phase = ""

    def epoch(self, row: dict, **tags) -> None:
        from ..runs import append_json_line
        row = {"phase": self.phase, **tags, **row}
        append_json_line(self.path, row)
        if self.stream is not None:         # epochs counted from 1 on screen, as train's
            shown = "  ".join(f"{k} {v:.4g}" if isinstance(v, float)
                              else f"{k} {v + 1}" if k == "epoch" else f"{k} {v}"
                              for k, v in row.items())
            print(shown, file=self.stream, flush=True)

    def on_epoch_end(self, trainer, epoch, metrics):
        self.epoch(dict(metrics))

    def info(self, message: str) -> None:
        if self.stream is not None:
            print(message, file=self.stream, flush=True)


def _write_json(path: Path, obj) -> None:
    from ..runs import to_json
    atomic_write_bytes(path, (to_json(obj, indent=2) + "\n").encode())


# -- data ----------------------------------------------------------------------------------------
def load_data(data_dir=None, *, train_size: int | None = None, validation_size: int = 10_000,
              test_size: int | None = None):
    """MNIST (pixels in [0, 1]) cut to the first ``train_size``/``test_size`` examples."""
    train, validation, test = load_mnist(data_dir, validation_size=validation_size)

    def head(d: Dataset | None, n: int | None) -> Dataset | None:
        return d if d is None or n is None else Dataset(d.x[:n], d.y[:n], d.name)
    return head(train, train_size), validation, head(test, test_size)


# -- experiments -------------------------------------------------------------------------------
def run_rbm(settings, data, out: Path, log: RunLog, backend, rng) -> dict:
    """CD training of one RBM on binarised MNIST, then AIS and the test log-likelihood."""
    from ..models.ais import ais_log_partition, base_rate_bias, log_likelihood
    from ..models.persistence import save_rbm
    from ..models.plots_rbm import save_filters, save_grid

    train, validation, test = data
    rbm = presets.build(settings, backend=backend, rng=rng)
    binarize = settings["binarize"]
    x = rbm.prepare(train.x, binarize=binarize, rng=rng)
    log.phase = "pretrain"
    rbm.fit(x, settings["epochs"], cd=presets.contrastive_divergence(settings["cd"]),
            validation=None if validation is None else rbm.prepare(validation.x,
                                                                   binarize=binarize, rng=rng),
            monitor=("reconstruction_error", "pseudo_log_likelihood"),
            callback=lambda row: log.epoch(row, layer=0), rng=rng)
    save_rbm(out / "rbm", rbm, metadata={"preset": "rbm"})
    log.info("AIS estimate of log Z ...")
    start = time.perf_counter()
    estimate = ais_log_partition(rbm, **settings["ais"], base_bias=base_rate_bias(x), rng=rng)
    x_test = rbm.prepare(test.x, binarize=binarize, rng=rng)
    files = [save_filters(out / "filters.png", rbm),
             save_grid(out / "samples.png", rbm.sample(100, 1000, rng=rng),
                       title="fantasies after 1000 Gibbs steps from random states")]
    return {"log_z": estimate.as_dict(), "ais_seconds": time.perf_counter() - start,
            "train_log_likelihood": log_likelihood(rbm, x[:10_000], estimate.log_z),
            "test_log_likelihood": log_likelihood(rbm, x_test, estimate.log_z),
            "test_reconstruction_error": rbm.reconstruction_error(x_test),
            "files": [p.name for p in files]}


def _pretrain(dbn, settings, train, log: RunLog, rng, labels=None):
    log.phase = "pretrain"
    return dbn.pretrain(train.x, settings["epochs"], labels=labels,
                        cd=presets.layer_rules(settings, len(dbn.rbms)),
                        binarize=settings["binarize"], probabilities=not settings["binarize"],
                        callback=lambda layer, row: log.epoch(row, layer=layer), rng=rng)


def run_dbn(settings, data, out: Path, log: RunLog, backend, rng) -> dict:
    """Greedy pretraining, then backprop fine-tuning of the unrolled net with a softmax."""
    from ..io import load_model
    from ..models.persistence import save_rbm
    from ..models.plots_rbm import save_filters

    train, validation, test = data
    dbn = presets.build(settings, backend=backend, rng=rng)
    _pretrain(dbn, settings, train, log, rng)
    save_rbm(out / "dbn", dbn, metadata={"preset": "dbn"})
    save_filters(out / "filters.png", dbn.rbms[0])
    ft = settings["fine_tune"]
    log.phase = "fine-tune"
    monitor = "validation_accuracy" if validation is not None else "train_cost"
    net, history = dbn.fine_tune(
        train, ft["epochs"], validation=validation, eta=ft["eta"], momentum=ft["momentum"],
        batch_size=ft["batch_size"], weight_decay=ft["weight_decay"],
        callbacks=[*_schedule(ft), Checkpoint(out, monitor=monitor), log], rng=rng)
    best, _, meta = load_model(out / "best", backend=backend)
    return {"test_error": float((best.classify(test.x) != test.y).mean()),
            "best_epoch": meta.get("epoch"),
            "last_test_error": float((net.classify(test.x) != test.y).mean()),
            "files": ["filters.png"]}


def _schedule(ft: dict) -> list:
    """A fine-tuning recipe's step schedule (η ← η·step_factor every step_every epochs)."""
    from ..training.schedules import StepDecay
    return [StepDecay(ft["step_every"], ft.get("step_factor", 0.5))] if ft.get("step_every") else []


def _optimizer(ft: dict):
    """A fine-tuning recipe's optimiser: ``optimizer`` (default momentum SGD), η, ν."""
    from ..optimizers import get_optimizer
    name = ft.get("optimizer", "momentum")
    return get_optimizer(name, ft["eta"], **({"momentum": ft["momentum"]}
                                             if name in ("momentum", "nesterov") else {}))


def run_generate(settings, data, out: Path, log: RunLog, backend, rng) -> dict:
    """The generative DBN with label units: greedy pretraining, up-down fine-tuning (when
    the settings have ``up_down``), classification by free energy after each, class-clamped
    generation, and how a separately trained classifier labels the generated digits."""
    from ..models.persistence import save_rbm
    from ..models.plots_rbm import save_grid
    from ..models.updown import UpDown

    train, validation, test = data
    dbn = presets.build(settings, backend=backend, rng=rng)
    _pretrain(dbn, settings, train, log, rng, labels=train.y)
    greedy_error = float((dbn.classify(test.x) != test.y).mean())
    if "up_down" in settings:
        log.phase = "up-down"
        rule = dict(settings["up_down"])
        epochs = rule.pop("epochs")
        try:
            rule = UpDown(**rule)
        except TypeError as exc:
            raise ConfigError(f"up_down settings: {exc}") from None
        dbn.up_down(train.x, train.y, epochs, rule=rule, validation=validation,
                    callback=log.epoch, rng=rng)
    save_rbm(out / "dbn", dbn, metadata={"preset": "dbn-generative"})
    gen = settings["generate"]
    labels = np.repeat(np.arange(dbn.n_labels), gen["per_class"])
    sampler = {k: gen[k] for k in ("gibbs_steps", "label_gain", "gain_steps") if k in gen}
    log.info(f"generating {len(labels)} digits: {sampler} ...")
    images = dbn.generate(labels, **sampler, rng=rng)
    shown = images.reshape(dbn.n_labels, gen["per_class"], -1)[:, :10].reshape(-1, images.shape[1])
    save_grid(out / "generated.png", shown, n_cols=10,
              title=f"label clamped (one class per row): {_describe(sampler)}",
              row_labels=[str(k) for k in range(dbn.n_labels)])
    log.phase = "classifier"
    classifier = _classifier(train, validation, log, backend, rng)
    predicted = classifier.classify(images)
    per_class = _per_class(predicted, labels, dbn.n_labels)
    compared = []
    for change in gen.get("compare", ()):
        other = {**sampler, **change}
        log.info(f"... and with {other}")
        generated = classifier.classify(dbn.generate(labels, **other, rng=rng))
        compared.append({**other, "generated_as_clamped": float((generated == labels).mean()),
                         "generated_as_clamped_per_class": _per_class(generated, labels,
                                                                     dbn.n_labels)})
    return {"free_energy_test_error": float((dbn.classify(test.x) != test.y).mean()),
            "free_energy_test_error_greedy": greedy_error,
            "generated_as_clamped": float((predicted == labels).mean()),
            "generated_as_clamped_per_class": per_class,
            "sampler": sampler, "compared_samplers": compared,
            "classifier_test_error": float((classifier.classify(test.x) != test.y).mean()),
            "files": ["generated.png"]}


def _per_class(predicted, labels, n_classes: int) -> list[float]:
    """For each class k, the share of the digits generated as k that were classified as k."""
    return [float((predicted[labels == k] == k).mean()) for k in range(n_classes)]


def _describe(sampler: dict) -> str:
    if not sampler.get("gain_steps") or sampler.get("label_gain", 1.0) == 1.0:
        return f"no label gain, {sampler.get('gibbs_steps', 0)} Gibbs steps from a random start"
    return (f"{sampler['gain_steps']} steps with label gain {sampler['label_gain']:g}, "
            f"then {sampler.get('gibbs_steps', 0)} Gibbs steps")


def _classifier(train, validation, log: RunLog, backend, rng, epochs: int = 10):
    """The judge of generated digits: a 784-500-10 net (sigmoid, softmax) trained by SGD."""
    from ..net import mlp
    from ..optimizers import Momentum
    from ..training import Trainer

    net = mlp([784, 500, 10], "sigmoid", "softmax", backend=backend, rng=rng)
    Trainer(net, "log-likelihood", Momentum(0.05, 0.9), batch_size=50, callbacks=[log],
            monitor=("validation_accuracy",), rng=rng).fit(train, epochs, validation)
    return net


def run_autoencoder(settings, data, out: Path, log: RunLog, backend, rng) -> dict:
    """Pretrain, unroll, fine-tune; reconstruction error beside PCA's with the same code."""
    from ..io import save_model
    from ..models.autoencoder import PCA
    from ..models.plots_rbm import save_code_scatter, save_reconstructions
    train, validation, test = data
    ae = presets.build(settings, backend=backend, rng=rng)
    log.phase = "pretrain"
    ae.pretrain(train.x, settings["epochs"], cd=presets.contrastive_divergence(settings["cd"]),
                cd_top=presets.contrastive_divergence(settings["cd_top"]),
                binarize=settings["binarize"], probabilities=not settings["binarize"],
                callback=lambda layer, row: log.epoch(row, layer=layer), rng=rng)
    ft = settings["fine_tune"]
    ae.unroll(input_dropout=ft["input_dropout"], rng=rng)
    pretrained_error = ae.reconstruction_error(test.x)
    log.info(f"test reconstruction error after pretraining: {pretrained_error:.3f}")
    log.phase = "fine-tune"
    stopping = ([EarlyStopping(ft["early_stopping"], monitor="validation_cost")]
                if ft.get("early_stopping") and validation is not None else [])
    ae.fine_tune(train.x, ft["epochs"], validation=None if validation is None else validation.x,
                 cost=ft["cost"], optimizer=_optimizer(ft), batch_size=ft["batch_size"],
                 callbacks=[*_schedule(ft), *stopping, log], rng=rng)
    save_model(out / "autoencoder", ae.net, ft["cost"],
               metadata={"code_end": ae.code_end, "sizes": ae.sizes})
    code_size = ae.sizes[-1]
    pca = PCA(code_size).fit(train.x)
    error, pca_error = ae.reconstruction_error(test.x), pca.reconstruction_error(test.x)
    files = [save_reconstructions(out / "reconstructions.png", test.x[:10],
                                  [ae.reconstruct(test.x[:10]), pca.reconstruct(test.x[:10])],
                                  labels=("data", f"autoencoder ({code_size}-d)",
                                          f"PCA ({code_size})"),
                                  title="test digits and their reconstructions")]
    if code_size == 2:
        files += [save_code_scatter(out / "codes.png", ae.encode(test.x), test.y,
                                    title="2-d codes of the test digits (autoencoder)"),
                  save_code_scatter(out / "codes_pca.png", pca.encode(test.x), test.y,
                                    title="first two principal components of the test digits")]
    return {"reconstruction_error": error, "pca_reconstruction_error": pca_error,
            "pca_over_autoencoder": pca_error / error,
            "pretrained_reconstruction_error": pretrained_error,
            "best_epoch": stopping[0].best.epoch if stopping else None,
            "files": [p.name for p in files]}


RUNNERS = {"rbm": run_rbm, "dbn": run_dbn, "generate": run_generate,
           "autoencoder": run_autoencoder}


def run_experiment(name: str, out, *, preset: str | None = None, epochs: int | None = None,
                   fine_tune_epochs: int | None = None, train_size: int | None = None,
                   validation_size: int = 10_000, test_size: int | None = None,
                   code_size: int | None = None, input_dropout: float | None = None,
                   sizes=None, gibbs_steps: int | None = None, per_class: int | None = None,
                   ais_betas: int | None = None, device: str = "cpu", seed: int = 0, data_dir=None,
                   stream=sys.stderr) -> dict:
    """Run one experiment into the directory ``out``; returns (and writes) results.json."""
    if name not in RUNNERS:
        raise ConfigError(f"unknown experiment {name!r}; choose one of {', '.join(RUNNERS)}")
    preset = preset or EXPERIMENTS[name]
    if PRESET_EXPERIMENTS.get(preset) != name:
        raise ConfigError(f"preset {preset!r} is not trained by the {name!r} experiment")
    settings = presets.recipe(preset)
    for flag, value in (("--code-size", code_size), ("--input-dropout", input_dropout)):
        # Only the autoencoder has a code layer and a fine_tune input dropout: elsewhere
        # --input-dropout was a KeyError and --code-size resized the top RBM.
        if value is not None and name != "autoencoder":
            raise ConfigError(f"{flag} applies to the deep-autoencoder presets, not {preset}")
    if epochs is not None:
        settings["epochs"] = int(epochs)
    for stage in ("fine_tune", "up_down"):
        if fine_tune_epochs is not None and stage in settings:
            settings[stage]["epochs"] = int(fine_tune_epochs)
    if sizes is not None:
        settings["sizes"] = [int(n) for n in sizes]
    if code_size is not None:
        settings["sizes"][-1] = int(code_size)
    for key, group, value in (("gibbs_steps", "generate", gibbs_steps),
                              ("per_class", "generate", per_class),
                              ("n_betas", "ais", ais_betas)):
        if value is not None and group in settings:
            settings[group][key] = int(value)
    if input_dropout is not None:
        settings["fine_tune"]["input_dropout"] = float(input_dropout)
    backend = get_backend(device)
    rng = make_rng(seed)
    data = load_data(data_dir, train_size=train_size, validation_size=validation_size,
                     test_size=test_size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out, stream)
    start = time.perf_counter()
    results = RUNNERS[name](settings, data, out, log, backend, rng)
    summary = {"experiment": name, "preset": preset, "settings": settings,
               "data": {"train": len(data[0]), "test": len(data[2]),
                        "validation": 0 if data[1] is None else len(data[1])},
               "device": device, "seed": seed, "seconds": time.perf_counter() - start,
               "results": results, "published": presets.PUBLISHED.get(preset, {}),
               "checks": checks(name, results, settings)}
    _write_json(out / "results.json", summary)
    return summary


def checks(name: str, results: dict, settings: dict) -> dict:
    """The issue's acceptance criteria (meant for the full-size runs) as booleans."""
    if name == "dbn":
        return {"test_error <= 1.3%": results["test_error"] <= TARGETS["dbn_test_error"]}
    if name == "autoencoder":
        if settings["sizes"] != presets.RECIPES["deep-autoencoder"]["sizes"]:
            return {}                        # the targets are for the paper's 30-d code
        return {"reconstruction_error <= 3.3": results["reconstruction_error"]
                <= TARGETS["autoencoder_error"],
                "3x below PCA": results["pca_over_autoencoder"] >= TARGETS["autoencoder_vs_pca"]}
    if name == "generate":
        return {">= 90% classified as clamped": results["generated_as_clamped"]
                >= TARGETS["generated_as_clamped"],
                ">= 90% in every class": min(results["generated_as_clamped_per_class"])
                >= TARGETS["generated_as_clamped"]}
    return {}


def summary_lines(summary: dict) -> list[str]:
    """Our numbers beside the published ones, one line each."""
    r, p = summary["results"], summary["published"]
    name = summary["experiment"]
    rows = {
        "rbm": [("test log-likelihood (nats)", r.get("test_log_likelihood"),
                 p.get("test_log_likelihood"), "{:.2f}")],
        "dbn": [("test error", r.get("test_error"), p.get("test_error"), "{:.2%}")],
        "generate": [("free-energy test error, greedy only",
                      r.get("free_energy_test_error_greedy"), None, "{:.2%}"),
                     ("free-energy test error", r.get("free_energy_test_error"),
                      p.get("test_error"), "{:.2%}"),
                     ("generated digits classified as clamped", r.get("generated_as_clamped"),
                      None, "{:.1%}")],
        "autoencoder": [("reconstruction error / image", r.get("reconstruction_error"),
                         p.get("reconstruction_error"), "{:.2f}"),
                        ("PCA reconstruction error / image", r.get("pca_reconstruction_error"),
                         p.get("pca_reconstruction_error"), "{:.2f}")],
    }[name]
    up_down = summary["settings"].get("up_down")
    lines = [f"{name}: {summary['data']['train']} training images, "
             f"{plural(summary['settings'].get('epochs'), 'epoch')} per layer"
             + (f", {plural(up_down['epochs'], 'epoch')} of up-down" if up_down else "")
             + f", {summary['seconds']:.0f}s on {summary['device']}"]
    for label, ours, theirs, fmt in rows:
        if ours is None:              # a result this run did not produce
            continue
        published = "—" if theirs is None else fmt.format(theirs)
        lines.append(f"  {label:42s} ours {fmt.format(ours):>8s}   published {published}")
    for other in r.get("compared_samplers", ()):
        lines.append(f"    {_describe(other) + ':':56s} {other['generated_as_clamped']:.1%}")
    for check, ok in summary["checks"].items():
        lines.append(f"  {'PASS' if ok else 'FAIL'}  {check}")
    return lines


#: ``nablanet reproduce hinton-2006``: the experiments of the two 2006 papers, in order
HINTON_2006 = ("dbn", "generate", "autoencoder")


def reproduce_hinton_2006(out, *, only=None, stream=sys.stderr, **kwargs) -> list[dict]:
    """``nablanet reproduce hinton-2006``: the dbn, generate and autoencoder experiments
    (``only`` some of them), each in ``out/<name>``; prints our numbers beside the
    published ones as each finishes and writes every summary to ``out/reproduce.json``."""
    names = list(only or HINTON_2006)
    unknown = [n for n in names if n not in HINTON_2006]
    if unknown:
        raise ConfigError(f"unknown experiment {unknown[0]!r}; choose from "
                          f"{', '.join(HINTON_2006)}")
    summaries = []
    for name in HINTON_2006:
        if name not in names:
            continue
        summary = run_experiment(name, Path(out) / name, stream=stream, **kwargs)
        summaries.append(summary)
        print("\n".join(summary_lines(summary)), flush=True)
    _write_json(Path(out) / "reproduce.json", {"table": "hinton-2006", "experiments": summaries})
    return summaries


def all_checks_pass(summaries) -> bool:
    """Whether every acceptance check of every summary holds."""
    return all(ok for s in summaries for ok in s["checks"].values())


# -- command line --------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags shared by ``python -m nablanet.presets.rbm_reproduce`` and ``nablanet pretrain``."""
    # Counts are typed: a negative --train-size would slice from the end of the data and
    # a negative --seed reach NumPy as a traceback.
    from ..cli.common import non_negative_int, positive_int

    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="run directory")
    p.add_argument("--epochs", type=non_negative_int, metavar="N",
                   help="RBM epochs per layer (default: the preset's, 50; 0: no pretraining)")
    p.add_argument("--fine-tune-epochs", type=non_negative_int, metavar="N",
                   help="fine-tuning epochs: backprop, or up-down for generate "
                        "(default: the preset's)")
    p.add_argument("--train-size", type=positive_int, metavar="N",
                   help="use the first N training images (default: all)")
    p.add_argument("--validation-size", type=non_negative_int, default=10_000, metavar="N",
                   help="training images held out for validation (default 10000)")
    p.add_argument("--test-size", type=positive_int, metavar="N",
                   help="first N test images (default all)")
    p.add_argument("--code-size", type=positive_int, metavar="K",
                   help="autoencoder code units (default 30)")
    p.add_argument("--input-dropout", type=float, metavar="P",
                   help="denoising autoencoder: drop input pixels with probability P")
    p.add_argument("--sizes", type=int, nargs="+", metavar="N",
                   help="layer sizes, visible first (default: the preset's)")
    sampler = presets.RECIPES["dbn-generative"]["generate"]
    p.add_argument("--gibbs-steps", type=non_negative_int, metavar="N",
                   help="generate: Gibbs steps in the top RBM after the label-gain start "
                        f"(default {sampler['gibbs_steps']})")
    p.add_argument("--per-class", type=positive_int, metavar="N",
                   help=f"generate: digits generated per class (default {sampler['per_class']})")
    p.add_argument("--ais-betas", type=positive_int, metavar="N",
                   help="rbm: AIS inverse temperatures (default 14500)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="where to compute (default cpu)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the weights, mini-batches and samples (default 0)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="where MNIST is looked for (default: $NABLANET_DATA, then the cache)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")


#: flags that set one stage of a recipe: (flag, run_experiment's keyword, the stages)
STAGE_FLAGS = (("--gibbs-steps", "gibbs_steps", ("generate",)),
               ("--per-class", "per_class", ("generate",)),
               ("--ais-betas", "ais_betas", ("ais",)),
               ("--fine-tune-epochs", "fine_tune_epochs", ("fine_tune", "up_down")))


def check_stage_flags(preset: str, kwargs: dict) -> None:
    """A ConfigError for a flag given to a preset without the stage it sets: the run would
    go ahead and ignore it (``pretrain --preset rbm --gibbs-steps 5``). Not for
    ``hinton-2006``, which hands every flag to all three experiments."""
    recipe = presets.recipe(preset)
    for flag, key, stages in STAGE_FLAGS:
        if kwargs.get(key) is not None and not any(stage in recipe for stage in stages):
            named = " or ".join(stage.replace("_", "-") for stage in stages)
            raise ConfigError(f"{flag} does not apply to {preset}, which has no {named} stage")


def experiment_kwargs(args) -> dict:
    return {"epochs": args.epochs, "fine_tune_epochs": args.fine_tune_epochs,
            "train_size": args.train_size, "validation_size": args.validation_size,
            "test_size": args.test_size, "code_size": args.code_size,
            "input_dropout": args.input_dropout, "sizes": args.sizes,
            "gibbs_steps": args.gibbs_steps, "per_class": args.per_class,
            "ais_betas": args.ais_betas, "device": args.device, "seed": args.seed,
            "data_dir": args.data_dir, "stream": None if args.quiet else sys.stderr}


def main(argv=None) -> int:
    p = Parser(prog="python -m nablanet.presets.rbm_reproduce",
               description=__doc__.split("\n\n")[0])
    p.add_argument("experiment", choices=(*RUNNERS, "hinton-2006"))
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        if args.experiment == "hinton-2006":
            reproduce_hinton_2006(args.out, **experiment_kwargs(args))
        else:
            kwargs = experiment_kwargs(args)
            check_stage_flags(EXPERIMENTS[args.experiment], kwargs)
            summary = run_experiment(args.experiment, args.out, **kwargs)
            print("\n".join(summary_lines(summary)))
    except NablanetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
