"""``nablanet train --preset NAME``: the named nets of the later lectures.

A preset brings its own architecture and training recipe, so of the ordinary
training flags only ``--epochs``, ``--seed``, ``--device``, ``--data-dir`` and
``--out`` apply (with ``--quiet`` and ``--blas-threads``):

* ``lenet5``, ``nielsen-ch6-…`` (convolutional nets on MNIST): trained with their
  recipe by :func:`nablanet.presets.cnn_reproduce.train_preset`;
* ``char-lstm`` (a character-level language model): ``--text FILE`` (default Tiny
  Shakespeare) and ``--minutes M`` or ``--epochs N``, by
  :func:`nablanet.presets.rnn.train_char_lstm`.

The energy-based presets (``rbm``, ``dbn``, ...) are trained by ``nablanet pretrain``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError

#: training flags a preset accepts besides --preset, --text and --minutes
ALLOWED = {"epochs", "seed", "device", "data_dir"}


def preset_names() -> list[str]:
    from ..presets import PRESETS
    return sorted(PRESETS) + ["char-lstm"]


def run_preset(args, flags: dict, directory: Path) -> int:
    ignored = sorted(set(flags) - ALLOWED)
    if ignored:
        given = ", ".join("--" + key.replace("_", "-") for key in ignored)
        raise ConfigError(f"--preset {args.preset} brings its own recipe; {given} "
                          "cannot be combined with it")
    if args.preset == "char-lstm":
        return _char_lstm(args, flags, directory)
    if args.text is not None or args.minutes is not None:
        raise ConfigError("--text and --minutes belong to --preset char-lstm")
    return _cnn(args, flags, directory)


def _char_lstm(args, flags: dict, directory: Path) -> int:
    from ..presets.rnn import train_char_lstm

    minutes, epochs = args.minutes, flags.get("epochs")
    if minutes is None and epochs is None:
        minutes = 30.0                      # the lecture's budget on a 2-core CPU
    summary = train_char_lstm(directory, text_path=args.text, minutes=minutes, epochs=epochs,
                              seed=flags.get("seed", 0), device=flags.get("device", "cpu"),
                              log=None if args.quiet else _stderr)
    nats = summary.get("best_validation_nats_per_char")
    print(f"validation: {nats:.3f} nats/char" if nats is not None else "no validation pass ran")
    return 0


def _cnn(args, flags: dict, directory: Path) -> int:
    from ..presets.cnn_reproduce import load_data, train_preset

    data = load_data(flags.get("data_dir"))
    results = train_preset(args.preset, data, directory, epochs=flags.get("epochs"),
                           seed=flags.get("seed", 0), device=flags.get("device", "cpu"),
                           stream=None if args.quiet else sys.stderr)
    accuracy = results["test_accuracy"]
    print(f"test accuracy: {accuracy:.2%} ({results.get('test_errors', '?')} errors)")
    return 0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
