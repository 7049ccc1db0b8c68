"""``nablanet reproduce nielsen-ch6|lenet5``: the convolutional results on MNIST.

``nielsen-ch6``: Nielsen's chapter-6 ladder, each net beside the accuracy he reports,
then an ensemble of ``--members`` final nets by plurality vote (published: 33 errors)
with McNemar's test against its first member. ``--only`` picks ladder steps (e.g.
``--only nielsen-ch6-final``: the final net and its ensemble). ``lenet5``: LeNet-5
(LeCun et al. 1998). One seed; every net is a run directory under ``--out`` and
``results.json`` holds the numbers (see :mod:`nablanet.presets.cnn_reproduce`).
"""
from __future__ import annotations

import sys

from ..errors import ConfigError
from .common import blas_threads

CNN_TABLES = ("nielsen-ch6", "lenet5")
#: flags of the other tables that these do not take
_FOREIGN = {"fine_tune_epochs": "--fine-tune-epochs", "test_size": "--test-size",
            "gibbs_steps": "--gibbs-steps", "per_class": "--per-class", "init": "--init",
            "validation_size": "--validation-size"}


def run_cnn(args) -> int:
    from ..presets.cnn_reproduce import format_report, reproduce

    for key, flag in _FOREIGN.items():
        if getattr(args, key, None) is not None:
            raise ConfigError(f"{flag} does not apply to {args.table}")
    if args.seeds not in (None, 1) or args.jobs != 1 or args.rerun:
        raise ConfigError(f"{args.table} trains one seed in one process, afresh: drop "
                          f"--seeds/--jobs/--rerun")
    if args.dataset not in (None, "mnist"):
        raise ConfigError(f"{args.table} reproduces MNIST results; --dataset must be mnist")
    if args.only is not None and args.table != "nielsen-ch6":    # lenet5 is one net
        raise ConfigError("--only belongs to nielsen-ch6")
    with blas_threads(args.blas_threads):
        results = reproduce(args.table, args.out, epochs=args.epochs, subset=args.train_size,
                            members=5 if args.members is None else args.members,
                            steps=args.only, device=args.device, data_dir=args.data_dir,
                            stream=None if args.quiet else sys.stderr)
    print(format_report(results))
    return 1 if args.check and not all(results.get("checks", {}).values()) else 0
