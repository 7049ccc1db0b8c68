"""``nablanet compare RUN_A [RUN_B]``: how a model errs, and whether another is really better.

With one run: its confusion matrix, per-class and top-k accuracy on the test split.
With two: the same for each, then McNemar's test on the examples where exactly one
of them is right — the 2×2 table, the exact binomial p-value and the
continuity-corrected χ². ``--out DIR`` also writes confusion_<name>.png and
misclassified_<name>.png (wrong digits with the true label and the top two guesses);
<name> is the run's folder name, with -A and -B added when the two runs' names are the
same (run1/best and run2/best).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError, DataError
from ..evaluation import (check_alpha, compare, confusion_matrix, format_confusion_matrix,
                          plot_confusion_matrix, plot_misclassified, top_k_accuracy)
from ..runs import check_fits
from .common import (add_data_flags, add_split_flag, info, load_run_model, load_runs_split,
                     positive_int)


def add_parser(subparsers):
    p = subparsers.add_parser("compare", help="confusion matrix; McNemar's test of two models",
                              description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("runs", nargs="+", metavar="RUN", help="one or two run (or model) directories")
    p.add_argument("--model", choices=("best", "last"), default="best",
                   help="which model of each run (default best)")
    add_data_flags(p, of_run=True)
    add_split_flag(p)
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--top-k", type=positive_int, default=2, metavar="K",
                   help="also report top-K accuracy (default 2)")
    p.add_argument("--out", type=Path, metavar="DIR", help="write the PNGs here")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument("--quiet", action="store_true", help="no 'model:' lines on stderr")
    return p


def png_names(runs) -> list[str]:
    """The <name> of each run's PNGs: its folder's name, made distinct with -A and -B when
    the two are the same (run1/best and run2/best), so B's PNGs do not overwrite A's."""
    names = [Path(path).name or key for key, path in zip("AB", runs)]
    if len(set(names)) < len(names):
        names = [f"{name}-{key}" for key, name in zip("AB", names)]
    return names


def run(args) -> int:
    if len(args.runs) > 2:
        raise DataError(f"compare takes one or two runs, got {len(args.runs)} "
                        "(use 'nablanet ensemble' to combine more)")
    check_alpha(args.alpha)             # before the models run and --out gets its PNGs
    # Models first, as ensemble does: a mistyped RUN is reported before MNIST is loaded.
    models = [(key, path, *load_run_model(path, args.model)) for key, path in zip("AB", args.runs)]
    for _, _, net, _, model_dir in models:      # with all classes in the top k it is 100 %
        if args.top_k > net.output_shape[-1]:
            raise ConfigError(f"--top-k {args.top_k} is more than the {net.output_shape[-1]} "
                              f"classes of {model_dir}")
    _, data = load_runs_split(args, args.runs)
    for _, _, net, _, _ in models:      # all of them before --out gets a PNG
        check_fits(net, data)
    report = {}
    for (key, path, net, _, model_dir), name in zip(models, png_names(args.runs)):
        info(args, f"model {key}: {model_dir}")
        scores = net.predict(data.x)
        predicted = scores.argmax(axis=1)
        cm = confusion_matrix(data.y, predicted, scores.shape[1])
        report[key] = {"run": path, "scores": scores, "predicted": predicted, "cm": cm,
                       "accuracy": float((predicted == data.y).mean()),
                       "top_k": top_k_accuracy(scores, data.y, args.top_k)}
        if args.out:
            plot_confusion_matrix(cm, args.out / f"confusion_{name}.png", title=f"{name}")
            plot_misclassified(data.x, data.y, scores, args.out / f"misclassified_{name}.png")
    test = compare(data.y, report["A"]["predicted"], report["B"]["predicted"], args.alpha) \
        if "B" in report else None
    if args.json:
        out = {key: {"run": r["run"], "accuracy": r["accuracy"], f"top_{args.top_k}": r["top_k"],
                     "confusion_matrix": r["cm"].tolist()} for key, r in report.items()}
        if test is not None:
            out["mcnemar"] = {"table": test.table.tolist(), "p_exact": test.p_exact,
                              "chi2": test.chi2, "p_chi2": test.p_chi2,
                              "significant": test.significant, "alpha": args.alpha}
        print(json.dumps(out))
        return 0
    for key, r in report.items():
        print(f"{key} = {r['run']}: {r['accuracy']:.2%} ({int((r['predicted'] != data.y).sum())} "
              f"errors of {len(data)}), top-{args.top_k} {r['top_k']:.2%}")
        print(format_confusion_matrix(r["cm"]))
    if test is not None:
        print(test.summary(("A", "B")))
    return 0
