"""The ``basisdb`` command line: build, list, info, show, verify, path.

Every failure prints one line (``basisdb: error: ...``) to stderr and exits
non-zero; no traceback reaches the user.
"""
from __future__ import annotations

import os
import sys
from fractions import Fraction
from pathlib import Path

import click

from ._database import Database, default_path
from ._database import open as open_db

_EXPECTED_ERRORS = (ValueError, LookupError, TypeError, OSError, MemoryError, ImportError)


class _OneLineErrors(click.Group):
    """A click group whose errors are a single line on stderr and a non-zero exit."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name or "basisdb", complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            self._fail("aborted", 130)
        except click.ClickException as exc:
            self._fail(exc.format_message(), exc.exit_code or 2)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except _EXPECTED_ERRORS as exc:
            self._fail(str(exc) or type(exc).__name__, 1)
        except KeyboardInterrupt:
            self._fail("interrupted", 130)
        sys.exit(rv if isinstance(rv, int) else 0)

    @staticmethod
    def _fail(message: str, code: int):
        first = " ".join(str(message).split())
        click.echo(f"basisdb: error: {first}", err=True)
        sys.exit(code)


def _group_arg(text: str):
    """A GROUP argument: a number (as int) or a symbol (str)."""
    return int(text) if text.strip().lstrip("+-").isdigit() else text


def _open(db_path: str | None) -> Database:
    return open_db(db_path)


def _resolve(db: Database, group: str | None, hall: int | None):
    if group is None and hall is None:
        raise click.UsageError("give a GROUP (number or symbol) or --hall N")
    return db.get_setting(None if group is None else _group_arg(group), hall=hall)


def _frac(num: int, den: int) -> str:
    f = Fraction(int(num), int(den))
    return "0" if f == 0 else f"{f.numerator}/{f.denominator}"


_db_option = click.option(
    "--db", "db_path", type=click.Path(dir_okay=False), default=None, help="Artifact to read (default: $BASISDB_PATH or the shipped one)."
)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="basisdb", prog_name="basisdb")
def cli() -> None:
    """Exact symmetry-adapted Fourier bases for the 530 space-group settings."""


def _parse_halls(spec: str) -> list[int] | None:
    """'all' or a comma list of hall numbers and ranges: '1-10,81,526'."""
    if spec.strip().lower() == "all":
        return None
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(p) for p in part.split("-", 1))
                if lo > hi:
                    raise ValueError
                if lo < 1 or hi > 530:
                    raise click.BadParameter(f"range {part!r} is outside 1..530", param_hint="--halls")
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise click.BadParameter(f"cannot parse {part!r}; use e.g. 'all' or '1-10,81,526'", param_hint="--halls") from None
    return out


@cli.command()
@click.option("--kmax", "-k", type=int, default=8, show_default=True, help="Cut-off: |h|,|k|,|l| <= K.")
@click.option("--halls", default="all", show_default=True, help="Settings to build: 'all' or e.g. '1-10,81,526'.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="basisdb.h5", show_default=True, help="Output HDF5 file (written atomically).")
@click.option("--jobs", "-j", type=int, default=None, help="Worker processes (default: number of CPUs).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def build(kmax: int, halls: str, output: str, jobs: int | None, quiet: bool) -> None:
    """Build the database (needs spglib and networkx)."""
    from basisdb_build import build_database, check_build_request, check_output_path, parse_selection

    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    # validate everything before the progress bar appears
    check_build_request(kmax, jobs)
    selected = parse_selection(_parse_halls(halls))
    check_output_path(output)
    total = len(selected)
    if quiet:
        summary = build_database(output, kmax=kmax, halls=selected, jobs=jobs)
    else:
        with click.progressbar(length=total, label=f"building K={kmax}", file=sys.stderr) as bar:
            summary = build_database(output, kmax=kmax, halls=selected, jobs=jobs, progress=bar.update)
    click.echo(f"wrote {summary['path']}: {summary['settings']} settings, K={summary['kmax']}, {summary['bytes']:,} bytes")


@cli.command("list")
@_db_option
@click.option("--number", "-n", type=int, default=None, help="Only settings of this space-group number.")
@click.option("--system", type=str, default=None, help="Only this crystal system (e.g. cubic).")
def list_(db_path: str | None, number: int | None, system: str | None) -> None:
    """List the settings in the artifact."""
    db = _open(db_path)
    rows = db.settings()
    if number is not None:
        rows = [s for s in rows if s.number == number]
    if system is not None:
        rows = [s for s in rows if s.crystal_system == system.lower()]
        if not rows and system.lower() not in {s.crystal_system for s in db.settings()}:
            raise click.BadParameter(f"unknown crystal system {system!r}", param_hint="--system")
    click.echo(f"{'hall':>4} {'no':>3}  {'H-M (setting)':<20} {'Hall symbol':<18} {'system':<12} {'pg':<6} {'order':>5} {'orbits':>6}")
    for s in rows:
        mark = "*" if s.is_default else " "
        click.echo(
            f"{s.hall_number:>4} {s.number:>3}{mark} {s.hm_extended:<20} {s.hall_symbol:<18} "
            f"{s.crystal_system:<12} {s.point_group:<6} {s.order:>5} {s.n_orbits:>6}"
        )
    click.echo(f"{len(rows)} settings (* = spglib's default setting of its number), K={db.kmax}")


@cli.command()
@click.argument("group", required=False)
@click.option("--hall", type=int, default=None, help="Select by hall_number 1..530.")
@_db_option
def info(group: str | None, hall: int | None, db_path: str | None) -> None:
    """Metadata of one setting: GROUP is a number (225) or a symbol ('Fd-3m:2')."""
    db = _open(db_path)
    s = _resolve(db, group, hall)
    for name, value in s.__dict__.items():
        click.echo(f"{name:<14} {value}")
    click.echo(f"{'kmax':<14} {db.kmax}")


@cli.command()
@click.argument("group", required=False)
@click.option("--hall", type=int, default=None, help="Select by hall_number 1..530.")
@click.option("--ops", default=None, help="Instead of GROUP: operations 'x,y,z;-x,-y,-z;...' (built on the fly).")
@click.option("--kmax", "-k", type=int, default=None, help="Cut-off (default: the artifact's).")
@click.option("--limit", type=int, default=20, show_default=True, help="Orbits to show (0 = all).")
@_db_option
def show(group, hall, ops, kmax, limit, db_path) -> None:
    """Orbits of one setting with their members and exact phases."""
    if limit < 0:
        raise click.BadParameter("must be >= 0", param_hint="--limit")
    if ops is not None:
        if group is not None or hall is not None:
            raise click.UsageError("give either GROUP/--hall or --ops, not both")
        from ._custom import basis_from_operations

        basis = basis_from_operations(ops, kmax=8 if kmax is None else kmax)
    else:
        db = _open(db_path)
        setting = _resolve(db, group, hall)
        basis = db.get(hall=setting.hall_number, kmax=kmax)
    s = basis.setting
    click.echo(
        f"{s.hm_extended} (hall {s.hall_number}, No. {s.number}), K={basis.kmax}: "
        f"{basis.n_orbits} orbits, {len(basis.frequencies)} frequencies, {len(basis.extinct)} extinct"
    )
    shown = basis.n_orbits if limit == 0 else min(limit, basis.n_orbits)
    for j in range(shown):
        freqs, phases = basis.orbit(j)
        conj = basis.conjugate[j]
        tag = "-O=O" if conj == j else f"-O=#{conj}"
        members = "  ".join(
            f"({h:d},{k:d},{l:d}){'' if p == 0 else ' @' + _frac(p, basis.denominator)}" for (h, k, l), p in zip(freqs.tolist(), phases.tolist())
        )
        click.echo(f"#{j:<4} |O|={len(freqs):<3} {tag:<8} {members}")
    if shown < basis.n_orbits:
        click.echo(f"... {basis.n_orbits - shown} more orbits (use --limit 0 for all)")
    click.echo("phase '@ p' means coefficient exp(2 pi i p) relative to the orbit's first member")


@cli.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--points", type=int, default=8, show_default=True, help="Random points per setting for the invariance check.")
def verify(path: str | None, points: int) -> None:
    """Check an artifact: checksums, consistency and invariance of every basis function."""
    if points < 1:
        raise click.BadParameter("must be >= 1", param_hint="--points")
    db = _open(path)
    report = db.verify(invariance_points=points)
    click.echo(
        f"ok: {report['path']}: {report['settings']} settings, K={report['kmax']}, checksums match, "
        f"max invariance error {report['max_invariance_error']:.1e}"
    )


@cli.command()
def path() -> None:
    """Print the artifact used by default."""
    p = default_path()
    if not Path(p).is_file():
        raise FileNotFoundError(f"{p}: no such file (from ${'BASISDB_PATH'})")
    click.echo(str(p))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="basisdb")


if __name__ == "__main__":  # pragma: no cover
    main()
