"""The docs cannot rot silently: README.md's and docs/*.md's examples run, and what
docs/architecture.md names exists.

Every fenced block of README.md and docs/*.md (not docs/results/) is checked by its
language:

* ``python``: executed in a scratch directory; it must not raise;
* ``toml``: a training config (``nablanet train --config``): read, its net built and
  trained for an epoch on a few synthetic rows;
* any other: each ``nablanet ...`` line parses with the real command-line parser (so
  every flag and choice shown exists) and each ``make TARGET`` names a Makefile target.

An HTML comment on the line before a fence marks a block that is not cheap:
``<!-- docs-test: slow, mnist (why) -->``. ``slow`` runs it only under ``-m slow``,
``mnist`` only where the MNIST files are found (a block calling ``load_mnist`` must say
so), ``skip (why)`` never; the import statements of a marked Python block still run in
the default suite, so a renamed API fails at once. Any other marker word is an error, so a typo cannot skip a block.

Code names the docs quote in backticks (``costs.output_delta``, ``Layer.gemm_work()``,
``nablanet.optim``) must resolve, and files they quote (``training/fused.py``,
``benchmarks/README.md``) must exist; docs/architecture.md's tree must name only files
that exist and every module and folder of src/nablanet.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import nablanet
from nablanet.config import TrainConfig, build_net, build_trainer
from nablanet.data import Dataset, mnist_available

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(nablanet.__file__).resolve().parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKERS = {"slow", "mnist", "skip"}

_FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(?P<words>[^()]*?)\s*(?:\((?P<why>[^)]*)\))?\s*-->$")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int                 # 1-based line of the opening fence
    language: str
    code: str
    markers: frozenset
    why: str

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def code_blocks(doc: Path) -> list[Block]:
    """The fenced blocks of ``doc`` with the docs-test markers written just above each."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        assert end is not None, f"{doc.name}:{i + 1}: a code block is never closed"
        above = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = _MARKER.match(above)
        words = frozenset(w.strip() for w in marker["words"].split(",")) if marker else frozenset()
        blocks.append(Block(doc, i + 1, fence[1].lower(), "\n".join(lines[i + 1:end]) + "\n",
                            words, (marker["why"] or "") if marker else ""))
        i = end + 1
    return blocks


BLOCKS = [block for doc in DOCS for block in code_blocks(doc)]
PYTHON = [b for b in BLOCKS if b.language == "python"]
TOML = [b for b in BLOCKS if b.language == "toml"]
SHELL_LINES = [(b, n, line) for b in BLOCKS if b.language not in ("python", "toml")
               for n, line in enumerate(b.code.splitlines(), start=b.line + 1)
               if line.startswith(("nablanet ", "make "))]


def _ids(blocks):
    return [b.where for b in blocks]


def _marks(block: Block) -> list:
    marks = [pytest.mark.slow] if "slow" in block.markers else []
    if "skip" in block.markers:
        marks.append(pytest.mark.skip(reason=f"{block.where}: {block.why or 'marked skip'}"))
    return marks


# -- the blocks ---------------------------------------------------------------------------
def test_the_docs_hold_blocks_of_every_kind_checked_here():
    # A parser that stopped finding blocks would pass every test below vacuously.
    assert PYTHON and TOML and SHELL_LINES


@pytest.mark.parametrize("block", BLOCKS, ids=_ids(BLOCKS))
def test_markers_are_known_words(block):
    unknown = block.markers - MARKERS
    assert not unknown, f"{block.where}: unknown docs-test marker(s) {sorted(unknown)}"
    assert "skip" not in block.markers or block.why, f"{block.where}: say why a block is skipped"
    # Unmarked, a block that loads MNIST would download it in the default suite.
    assert "load_mnist" not in block.code or block.markers & {"mnist", "skip"}, \
        f"{block.where} loads MNIST: mark it <!-- docs-test: mnist -->"


@pytest.mark.parametrize("block", [pytest.param(b, marks=_marks(b)) for b in PYTHON],
                         ids=_ids(PYTHON))
def test_python_block_runs(block, tmp_path, monkeypatch):
    if "mnist" in block.markers and not mnist_available():
        pytest.skip(f"{block.where} needs MNIST (set NABLANET_DATA)")
    data = os.environ.get("NABLANET_DATA")
    if data:                              # a relative folder must survive the chdir below
        monkeypatch.setenv("NABLANET_DATA", os.path.abspath(data))
    monkeypatch.chdir(tmp_path)           # whatever the example writes lands here
    exec(compile(block.code, block.where, "exec"), {"__name__": "__docs__"})  # noqa: S102 (the docs' own code)


@pytest.mark.parametrize("block", PYTHON, ids=_ids(PYTHON))
def test_python_block_imports(block):
    """The imports of every Python block, the marked ones too: the cheap part that catches
    a renamed or moved name."""
    tree = ast.parse(block.code, block.where)
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports, f"{block.where}: no import statement to check"
    exec(compile(ast.Module(imports, type_ignores=[]), block.where, "exec"), {})  # noqa: S102


@pytest.mark.parametrize("block", [pytest.param(b, marks=_marks(b)) for b in TOML],
                         ids=_ids(TOML))
def test_toml_config_trains(block, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(block.code, encoding="utf-8")
    config = TrainConfig.from_toml(path, allow_empty=False).resolve(784)
    rng = np.random.default_rng(0)
    data = Dataset(rng.random((2 * config.batch_size, 784), dtype=np.float32),
                   np.arange(2 * config.batch_size) % config.n_classes, "synthetic")
    net = build_net(config, rng=0)
    history = build_trainer(config, net, rng=0).fit(data, epochs=1)
    assert len(history) == 1 and np.isfinite(history["train_cost"][0])


@pytest.fixture(scope="module")
def cli_parser():
    from nablanet.cli.main import build_parser, command_modules
    return build_parser(command_modules())


@pytest.mark.parametrize("block, number, line", SHELL_LINES,
                         ids=[f"{b.doc.name}:{n}" for b, n, _ in SHELL_LINES])
def test_shell_line_is_a_real_command(block, number, line, cli_parser):
    command = shlex.split(line, comments=True)
    if command[0] == "make":
        targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE)
        assert command[1] in targets, f"{block.doc.name}:{number}: no make target {command[1]!r}"
        return
    try:
        cli_parser.parse_args(command[1:])
    except SystemExit as exc:              # the parser has printed why
        pytest.fail(f"{block.doc.name}:{number}: `{line.strip()}` does not parse (exit {exc.code})")


# -- names and files the docs quote -------------------------------------------------------
_FILE_SUFFIXES = (".json", ".jsonl", ".toml", ".safetensors", ".gz", ".png", ".txt", ".npy")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+(\(\))?$")


def _quoted(doc: Path) -> set[str]:
    """Backquoted spans outside code blocks."""
    text = re.sub(r"^```.*?^```", "", doc.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    return set(re.findall(r"`([^`\n]+)`", text))


def _module_names() -> dict[str, list[str]]:
    """Every nablanet module by its full name, its name within the package and its last
    component (``nablanet.training.fused``, ``training.fused``, ``fused``)."""
    names: dict[str, list[str]] = {}
    for info in pkgutil.walk_packages(nablanet.__path__, "nablanet."):
        inner = info.name.removeprefix("nablanet.")
        for key in {info.name, inner, inner.rsplit(".", 1)[-1]}:
            names.setdefault(key, []).append(info.name)
    return names


#: the packages whose exports a bare class name in the docs (``Trainer``) may mean
_PUBLIC = ("nablanet", "nablanet.layers", "nablanet.training", "nablanet.models",
           "nablanet.optim", "nablanet.data")


def _owners(head: str, modules: dict[str, list[str]]):
    """What the first name(s) of a reference can mean: NumPy, a nablanet module and the
    classes defined in it (``net.zero_grads`` is Sequential's), or a public class."""
    if head in ("np", "numpy"):
        yield np
    for qualified in modules.get(head, []):
        module = importlib.import_module(qualified)
        yield module
        yield from (v for v in vars(module).values()
                    if inspect.isclass(v) and v.__module__ == module.__name__)
    for package in _PUBLIC:
        exported = getattr(importlib.import_module(package), head, None)
        if inspect.isclass(exported):
            yield exported


def _has_chain(obj, attrs: list[str]) -> bool:
    """``obj.a.b...`` exists; the last may be an attribute a class's methods set on self
    (``Trainer.next_epoch``)."""
    for i, attr in enumerate(attrs):
        if hasattr(obj, attr):
            obj = getattr(obj, attr)
        elif i == len(attrs) - 1 and inspect.isclass(obj):
            return f"self.{attr} =" in inspect.getsource(obj)
        else:
            return False
    return True


def _resolves(reference: str, modules: dict[str, list[str]]) -> bool:
    parts = reference.removesuffix("()").split(".")
    for n in range(len(parts), 0, -1):
        head = ".".join(parts[:n])
        if n > 1 and head not in modules:
            continue
        if any(_has_chain(owner, parts[n:]) for owner in _owners(head, modules)):
            return True
    return False


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_quoted_code_names_exist(doc):
    modules = _module_names()
    references = [q for q in _quoted(doc) if _DOTTED.match(q) and not q.endswith(_FILE_SUFFIXES)
                  and not q.endswith((".py", ".md"))]
    missing = sorted(r for r in references if not _resolves(r, modules))
    assert not missing, f"{doc.name} names code that does not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_quoted_files_exist(doc):
    paths = [q for q in _quoted(doc) if re.fullmatch(r"[\w./-]+", q)
             and (q.endswith((".py", ".md")) or q.startswith(("benchmarks/", "docs/", "src/", "tests/")))]
    missing = sorted(p for p in paths if not (ROOT / p).exists() and not (PACKAGE / p).exists())
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


# -- docs/architecture.md's map of the package --------------------------------------------
def _tree() -> str:
    blocks = [b.code for b in code_blocks(ROOT / "docs" / "architecture.md")
              if b.code.startswith("src/nablanet/")]
    assert len(blocks) == 1, "docs/architecture.md should hold one src/nablanet/ tree"
    return blocks[0]


def _named_files(tree: str) -> list[Path]:
    """Every ``*.py`` the tree names, where it says the file is. A line indented two
    spaces starts an entry; a bare file name on it or on the lines below belongs to the
    folder that entry names (``layers/`` ... ``base.py``), else to the package; a name
    with a folder (``utils/atomic.py``, ``../__main__.py`` under ``cli/``) is taken
    relative to that folder."""
    named, folder = [], ""
    for line in tree.splitlines()[1:]:
        if line.startswith("  ") and not line.startswith("   "):
            entry = line.split()[0]
            folder = entry if entry.endswith("/") else ""
        for name in re.findall(r"[\w./]*\w\.py\b", line):
            named.append(Path(os.path.normpath(folder + name)))
    return named


def test_architecture_names_only_files_that_exist():
    named = _named_files(_tree())
    assert Path("layers/base.py") in named and Path("__main__.py") in named
    missing = sorted(str(p) for p in named if not (PACKAGE / p).is_file())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_architecture_describes_every_module_and_folder():
    tree = _tree()
    folders = sorted(p.name for p in PACKAGE.iterdir()
                     if p.is_dir() and (p / "__init__.py").exists())
    modules = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    absent = [f + "/" for f in folders if not re.search(rf"(^|\s){f}/", tree, re.MULTILINE)]
    absent += [m for m in modules if not re.search(rf"(^|[\s/]){re.escape(m)}\b", tree, re.MULTILINE)]
    assert folders and modules
    assert not absent, f"docs/architecture.md does not describe {absent}"
