"""``nablanet generate RUN --prime TEXT --length N --temperature T --seed S``: text from a
character-level language model (a ``char-lstm`` run, or a saved char-LM model).

The lecture's recipe: start from the default hidden state, burn in the prime one
character at a time, then repeatedly sample the next character from the predicted
distribution (p ∝ exp(ln p / T)) and feed it back as if it had occurred. The prime
followed by the generated text goes to standard output (and to ``--out FILE``).

``generate`` is shared with the generative DBN (``--label``): the command looks at the
model in RUN and dispatches on its kind; :func:`is_char_lm` makes that choice.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError, ModelFileError
from .common import non_negative_int


def add_arguments(p) -> None:
    """The character-LM flags, for whichever parser owns ``generate``."""
    g = p.add_argument_group("character language model (a char-lstm run)")
    g.add_argument("--prime", metavar="TEXT",
                   help="burn-in text read before sampling starts (required for text; "
                        "\\n is a line break)")
    g.add_argument("--length", type=int, default=500, metavar="N",
                   help="characters to generate after the prime (default 500)")
    g.add_argument("--temperature", type=float, default=1.0, metavar="T",
                   help="divides the log-probabilities: < 1 safer, > 1 wilder (default 1)")
    g.add_argument("--model", choices=("best", "last"), default="best",
                   help="which saved model of the run (default best)")


def add_parser(subparsers):
    """A ``generate`` command for text alone (used when no other ``generate`` exists)."""
    p = subparsers.add_parser("generate", help="generate text from a character language model",
                              description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("run", metavar="RUN", type=Path, help="a char-lstm run directory or model")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("--out", type=Path, metavar="FILE", help="also write the text to FILE")
    add_arguments(p)
    return p


def model_dir(run: Path, which: str = "best") -> Path | None:
    """The char-LM model directory in ``run`` (RUN/best, RUN/last or RUN itself), or None."""
    for directory in (run / which, run / "last", run):
        config = directory / "config.json"
        if config.is_file():
            try:
                meta = json.loads(config.read_text(encoding="utf-8")).get("metadata") or {}
                return directory if meta.get("kind") == "char-lm" else None
            # ValueError: bad UTF-8 or JSON; RecursionError: JSON nested thousands deep
            except (OSError, ValueError, RecursionError, AttributeError):
                return None         # not a char-LM; loading it names what is wrong
    return None


def is_char_lm(run: Path) -> bool:
    """True when RUN holds a character language model (``generate`` dispatches on this)."""
    return model_dir(Path(run)) is not None


def run(args) -> int:
    from ..models.charlm import CharLM

    directory = model_dir(Path(args.run), getattr(args, "model", "best"))
    if directory is None:
        raise ModelFileError(f"{args.run}: no character language model here "
                             "(expected a char-lstm run directory or a saved char-LM)")
    if args.prime is None:
        raise ConfigError("--prime TEXT is required: the burn-in text the model reads first")
    prime = args.prime.replace("\\n", "\n")              # a shell's "ROMEO:\n" means a newline
    model = CharLM.load(directory)
    text = prime + model.generate(prime, args.length, temperature=args.temperature,
                                  rng=args.seed)
    out = getattr(args, "out", None)
    if out is not None:          # first: a failed write is then the only thing printed
        from ..utils.atomic import atomic_write_bytes

        atomic_write_bytes(out, text.encode("utf-8"))
    print(text)
    return 0
