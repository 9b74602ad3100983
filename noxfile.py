"""Quality gates: ``nox`` runs tests, lint, typecheck and docs; ``nox -s bench`` measures.

Sessions use the interpreter nox itself runs on, so a machine with one Python passes.
"""

from __future__ import annotations

import shutil

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

#: The cli extra too: the tests see the live display drawn on a pseudo-terminal; and the
#: redis extra, tested against private ``redis-server`` processes (Debian's package).
TEST_DEPS = [".[tests,cli,redis]"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run pytest with warnings as errors and report branch coverage."""
    if shutil.which("redis-server") is None:
        # The Redis tests start private servers: Debian's package (root or sudo needed).
        session.run(".ci/install-redis-server", external=True)
    session.install(*TEST_DEPS)
    session.run("coverage", "erase")
    session.run(
        "coverage",
        "run",
        "-m",
        "pytest",
        "-W",
        "error",
        *session.posargs,
    )
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """``mypy --strict`` over the package and the tests."""
    session.install("mypy>=1.11", "nox", *TEST_DEPS)
    session.run("mypy", "--strict", "legnext_async", "tests", "noxfile.py")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs; any warning fails the build."""
    session.install(".[docs,redis]")  # the reference documents legnext_async.redis
    session.run(
        "sphinx-build", "-W", "--keep-going", "-n", "-b", "html", "docs", "docs/_build/html"
    )


@nox.session
def demo(session: nox.Session) -> None:
    """Run the main job against the built-in emulator."""
    session.install(".")
    session.run("python", "-m", "legnext_async", "demo")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the four benchmarks side by side; not in the default run (``nox -s bench``).

    The official SDK (``legnext``, compared in benchmark 1) and matplotlib (the plot of
    benchmark 3) are installed here only. Results go to ``benchmarks/results/``; pass
    ``-- --update-docs`` to rewrite the tables in ``docs/benchmarks.md``.
    """
    session.install(".", "legnext==0.3.0", "matplotlib>=3.8")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
