"""The checks and heuristics compiled to C extension modules with mypyc, used only while they match the source.

``toolqual check`` spends nearly all its time in the per-instance checks and heuristics: plain Python, spread
thin over many small functions (no line takes more than about 3% of a run). mypyc, the compiler that ships
with mypy, turns these typed modules into C extension modules from the same source: one source of truth, no
second implementation. ``toolqual compile`` (``make compiled``) builds them; nothing else changes.

When they are used:

- only when a build exists (``toolqual_utils/_compiled/``, or ``TOOLQUAL_COMPILED_DIR``), was made for this
  Python (its extension-module suffix), and every source it was compiled from is unchanged: its
  :data:`COMPILED_MODULES` and every module of the package they import, directly or not (a SHA-256 of each is
  kept in the build's manifest and compared when the package is imported). Edit one of them and the pure
  Python modules are used until the next build: a stale build is never run;
- never when ``TOOLQUAL_COMPILED=0``.

:func:`status` says which way this process runs and why. Compiled and pure runs give the same tables
(``tests/test_compiled.py`` compares them on every bundled source).

Pure module: standard library only (mypy, setuptools and a C compiler are needed only by :func:`build`). Every
command imports it first, so it imports at start-up only what a command loads anyway; :func:`build` imports the rest.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.machinery
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["COMPILED_MODULES", "ENV_SWITCH", "ENV_DIR", "Status", "BuildError", "status", "install", "build", "read_build",
           "default_directory", "source_closure", "reduce_fields"]

#: the modules compiled: the check runner, the built-in checks and what they read, the heuristics, verdicts
COMPILED_MODULES: Final = (
    "toolqual_utils.checks.text",
    "toolqual_utils.checks.tool_schema",
    "toolqual_utils.checks.values",
    "toolqual_utils.checks.registry",
    "toolqual_utils.checks.scan",
    "toolqual_utils.checks.builtin",
    "toolqual_utils.checks.run",
    "toolqual_utils.dialogue",
    "toolqual_utils.io",
    "toolqual_utils.heuristics",
    "toolqual_utils.verdicts",
)
#: ``TOOLQUAL_COMPILED=0`` runs the pure Python modules even when a current build exists
ENV_SWITCH: Final = "TOOLQUAL_COMPILED"
#: where the build is (default: ``_compiled`` inside the package)
ENV_DIR: Final = "TOOLQUAL_COMPILED_DIR"
MANIFEST: Final = "manifest.json"
#: the name of the build's shared library module (``<GROUP>__mypyc``)
GROUP: Final = "toolqual_compiled"
_FORMAT: Final = 1
PACKAGE_DIR: Final = Path(__file__).resolve().parent
PACKAGE: Final = PACKAGE_DIR.name
_EXT_SUFFIX: Final = importlib.machinery.EXTENSION_SUFFIXES[0]


@dataclass(frozen=True)
class Status:
    """Whether this process runs the compiled modules (``active``), and why (``reason``, one sentence)."""

    active: bool
    reason: str
    directory: Path
    modules: dict[str, Path] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Two or three words for a summary line: ``compiled checks`` / ``pure Python checks``."""
        return "compiled checks" if self.active else "pure Python checks"


def reduce_fields(obj: Any) -> tuple[Any, tuple[Any, ...]]:
    """``__reduce__`` of a frozen dataclass whose fields are all ``__init__`` arguments, in order: pickle
    rebuilds it by calling the class with its field values. (Unpickled the default way, a frozen dataclass
    that mypyc compiled has its attributes set one by one, which frozen forbids.)"""
    return type(obj), tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))


class BuildError(Exception):
    """The build could not be made (what is missing, or the end of the compiler's log)."""


_STATUS: list[Status] = []


def default_directory() -> Path:
    """Where the build is read from and written to: ``TOOLQUAL_COMPILED_DIR``, else ``_compiled`` in the package."""
    configured = os.environ.get(ENV_DIR, "").strip()
    return Path(configured).expanduser() if configured else PACKAGE_DIR / "_compiled"


def _module_file(name: str) -> Path | None:
    """The source file of a module of this package (its ``__init__.py`` for a package), or None."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    parts = name.split(".")[1:]
    base = PACKAGE_DIR.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(name: str, path: Path) -> set[str]:
    """The modules of this package that the module ``name`` (at ``path``) imports, anywhere in its source,
    with the packages they belong to (importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import x`: x may be a module
    closure: set[str] = set()
    for module in found:
        parts = module.split(".")
        closure.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {m for m in closure if _module_file(m) is not None}


def source_closure(modules: Sequence[str] = COMPILED_MODULES) -> dict[str, str]:
    """The package's modules a build of ``modules`` depends on: them and everything of the package they import,
    directly or not; ``{path relative to the package: SHA-256 of its bytes}``."""
    todo = list(modules)
    seen: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            raise BuildError(f"{name} is not a module of {PACKAGE} (is {PACKAGE_DIR} complete?)")
        seen[name] = path
        todo.extend(_imports(name, path) - seen.keys())
    return {path.relative_to(PACKAGE_DIR).as_posix(): _sha256(path) for path in sorted(seen.values())}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_build(directory: Path) -> Status:
    """What the build in ``directory`` is, and whether this process may use it (not yet used)."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        return Status(False, f"no compiled build in {directory} (`toolqual compile` or `make compiled` builds "
                      "one)", directory)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        suffix, sources, modules = manifest["ext_suffix"], manifest["sources"], manifest["modules"]
        if manifest.get("format") != _FORMAT or not isinstance(sources, dict) or not isinstance(modules, dict):
            raise ValueError("unknown layout")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Status(False, f"the compiled build's manifest {manifest_path} is unreadable ({exc}); rebuild it "
                      "with `toolqual compile --force`", directory)
    if suffix != _EXT_SUFFIX:
        return Status(False, f"the compiled build in {directory} was made for another Python ({suffix}, this one "
                      f"loads {_EXT_SUFFIX}); rebuild it with `toolqual compile`", directory)
    for relative, digest in sources.items():
        path = PACKAGE_DIR / relative
        if not path.is_file() or _sha256(path) != digest:
            return Status(False, f"{PACKAGE}/{relative} changed since the checks were compiled; the pure Python "
                          "modules run until `toolqual compile` rebuilds them", directory)
    files = {name: directory / relative for name, relative in modules.items()}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing or set(COMPILED_MODULES) - files.keys():
        return Status(False, f"the compiled build in {directory} is incomplete ({', '.join(missing) or 'modules'} "
                      "missing); rebuild it with `toolqual compile --force`", directory)
    return Status(True, f"compiled with mypyc {manifest.get('mypy', '?')} on {manifest.get('built', '?')}; "
                  "its sources are unchanged", directory, files)


class _Finder:
    """A finder on ``sys.meta_path`` that loads the compiled modules (and their shared library) from the build,
    and nothing else."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        location = self.files.get(fullname)
        if location is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(location))
        spec = importlib.machinery.ModuleSpec(fullname, loader, origin=str(location))
        spec.has_location = True  # so the module's __file__ is set
        return spec


def install() -> Status:
    """Use the compiled modules in this process when allowed (see the module docstring); the package does this
    when it is imported. Returns (and keeps, for :func:`status`) the outcome."""
    if _STATUS:
        return _STATUS[0]
    directory = default_directory()
    if os.environ.get(ENV_SWITCH, "").strip() == "0":
        result = Status(False, f"{ENV_SWITCH}=0: the pure Python modules run", directory)
    else:
        result = read_build(directory)
        already = [name for name in result.modules if name in sys.modules]
        if result.active and already:
            result = Status(False, f"{', '.join(already)} were imported before the compiled build could be used",
                            directory)
        if result.active:
            sys.meta_path.insert(0, _Finder(result.modules))
    _STATUS[:] = [result]
    return result


def status() -> Status:
    """Whether this process runs the compiled modules, and why (see :func:`install`)."""
    return _STATUS[0] if _STATUS else install()


_SETUP = """\
import json, sys
from setuptools import setup
from mypyc.build import mypycify
a = json.loads(sys.argv[1])
setup(name="toolqual-compiled", packages=[], py_modules=[],
      ext_modules=mypycify(a["paths"] + a["options"], target_dir=a["c_dir"], group_name=a["group"], multi_file=True),
      script_args=["build_ext", "--build-lib", a["lib"], "--build-temp", a["temp"], "--parallel", str(a["jobs"])])
"""


def _is_a_build(directory: Path) -> bool:
    """``directory`` holds a build of ours (a manifest naming modules and sources): a build may replace it."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and {"ext_suffix", "modules", "sources"} <= manifest.keys()


def _prerequisites() -> str | None:
    """What the build lacks (mypy, setuptools, a C compiler, Python's headers), or None."""
    import importlib.util
    import shutil
    import sysconfig

    missing = []
    for module, package in (("mypyc", "mypy"), ("setuptools", "setuptools")):
        if importlib.util.find_spec(module) is None:
            missing.append(f"the Python package {package} (pip install '{package}'; it is in the dev extras)")
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        missing.append(f"a C compiler ({compiler!r} is not on PATH; on Debian: apt-get install gcc)")
    include = sysconfig.get_paths().get("include", "")
    if not (Path(include) / "Python.h").is_file():
        missing.append(f"Python's C headers ({include}/Python.h; on Debian: apt-get install python3-dev)")
    return "; ".join(missing) or None


def build(directory: Path | None = None, *, force: bool = False, jobs: int | None = None,
          log: Path | None = None) -> Status:
    """Compile :data:`COMPILED_MODULES` into ``directory`` (default :func:`default_directory`) unless a current
    build is there (``force`` rebuilds). The new build replaces the old one only once it is complete.

    Returns the status of the build in ``directory`` (whether this process uses it is :func:`status`).

    Raises:
        BuildError: a prerequisite is missing, ``directory`` exists but is neither a build nor empty (it is
            never replaced), cannot be written, or the compiler failed (with the end of its log; the whole log
            is kept at ``log`` when given). An existing build is left as it was, and nothing half-made is left
            beside it.
    """
    import shutil
    import tempfile

    directory = (directory or default_directory()).resolve()
    if not force:
        current = read_build(directory)
        if current.active:
            return current
    if directory.exists() and not (directory.is_dir() and (_is_a_build(directory) or not any(directory.iterdir()))):
        raise BuildError(f"{directory} exists and is not a build of the compiled checks (no {MANIFEST} of ours); it "
                         f"is left alone: choose a new or empty folder with --out DIR or {ENV_DIR}")
    missing = _prerequisites()
    if missing:
        raise BuildError(f"compiling the checks needs {missing}")
    sources = source_closure()
    try:  # where the new build is put together, beside the old one: fails here, before the compiler runs
        directory.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=directory.name + ".new-", dir=directory.parent))
    except OSError as exc:
        raise BuildError(f"cannot write the build to {directory} ({exc.strerror or exc}); choose a folder with "
                         f"--out DIR or {ENV_DIR}") from exc
    try:
        _compile_into(stage, sources, jobs, log)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = stage.with_name(stage.name.replace(".new-", ".old-", 1))  # unique, as the stage is: nothing else is touched
    if directory.exists():
        directory.rename(old)
    stage.rename(directory)
    if old.exists():
        shutil.rmtree(old)
    return read_build(directory)


def _compile_into(stage: Path, sources: dict[str, str], jobs: int | None, log: Path | None) -> None:
    """Compile :data:`COMPILED_MODULES` in a scratch folder and put the modules and the manifest in ``stage``."""
    import shutil
    import subprocess
    import tempfile
    import textwrap
    import time

    with tempfile.TemporaryDirectory(prefix="toolqual-compile-") as tmp:
        work = Path(tmp)
        arguments = {
            "paths": [str(_module_file(name)) for name in COMPILED_MODULES],
            "options": ["--ignore-missing-imports", "--follow-imports=silent", "--cache-dir", str(work / "mypy"),
                        "--config-file", str(work / "mypy.ini")],
            "c_dir": str(work / "c"), "lib": str(work / "lib"), "temp": str(work / "temp"), "group": GROUP,
            "jobs": jobs or max(1, os.cpu_count() or 1),
        }
        (work / "mypy.ini").write_text("[mypy]\n", encoding="utf-8")  # no project or user configuration
        started = time.perf_counter()
        # run in the scratch folder: setuptools would read a pyproject.toml or setup.cfg of the current folder
        result = subprocess.run([sys.executable, "-c", _SETUP, json.dumps(arguments)], cwd=work,
                                capture_output=True, text=True)
        output = result.stdout + result.stderr
        if log is not None:
            log.write_text(output, encoding="utf-8")
        if result.returncode != 0:
            lines = [line.strip() for line in output.splitlines() if line.strip()]
            errors = [line for line in lines if "error:" in line] or lines  # compiler, mypy, setuptools
            shown = "; ".join(textwrap.shorten(line, 300, placeholder=" ...") for line in errors[-5:])
            raise BuildError(f"mypyc could not compile the checks (exit status {result.returncode}): {shown}"
                             + (f" (its whole output: {log})" if log is not None else
                                " (`toolqual compile --log FILE` keeps its whole output)"))
        built = {path: path.relative_to(work / "lib") for path in (work / "lib").rglob(f"*{_EXT_SUFFIX}")}
        modules = {str(relative)[: -len(_EXT_SUFFIX)].replace(os.sep, "."): relative.as_posix()
                   for relative in built.values()}
        absent = set(COMPILED_MODULES) - modules.keys()
        if absent or f"{GROUP}__mypyc" not in modules:
            raise BuildError(f"the compiler's output lacks {', '.join(sorted(absent)) or GROUP + '__mypyc'}")
        for path, relative in built.items():
            (stage / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, stage / relative)
        from mypy.version import __version__ as mypy_version

        manifest = {
            "format": _FORMAT, "ext_suffix": _EXT_SUFFIX, "python": sys.version.split()[0], "mypy": mypy_version,
            "built": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(time.perf_counter() - started, 1),
            "modules": modules, "sources": sources,
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
