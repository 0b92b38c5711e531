"""The ``basisdb`` command line: build, list, info, show, plot, verify, path.

Every failure prints one line (``basisdb: error: ...``) to stderr and exits
non-zero; no traceback reaches the user.
"""
from __future__ import annotations

import os
import sys
from fractions import Fraction
from pathlib import Path

import click

from ._basis import PlaneGroup
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
        except click.NoSuchOption as exc:
            # `basisdb info -1`: a negative group number looks like an option to click
            name, command = exc.option_name or "", exc.ctx.command if exc.ctx else None
            takes_group = command is not None and any(p.name == "group" for p in command.params)
            if takes_group and name[:1] == "-" and name[1:].isdigit():
                self._fail(f"space-group number must be in 1..230, got {name}", exc.exit_code or 2)
            if takes_group and len(name) == 2 and name[1] in "PABCIRFpabcirf":  # '-P 2ybc', a Hall symbol
                self._fail(
                    f"No such option: {name} (a Hall symbol that starts with '-' goes after --: "
                    f"basisdb {command.name} -- '-P 2ybc')",
                    exc.exit_code or 2,
                )
            self._fail(exc.format_message(), exc.exit_code or 2)
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


_plane_option = click.option(
    "--plane", is_flag=True, help="GROUP is one of the 17 plane groups: 1..17 or a symbol (p4gm, pmg, ...)."
)


def _resolve_any(db: Database, group: str | None, hall: int | None, plane: bool):
    """A Setting, or a PlaneGroup with --plane."""
    if not plane:
        return _resolve(db, group, hall)
    if hall is not None:
        raise click.UsageError("--hall selects a space-group setting; it cannot be combined with --plane")
    if group is None:
        raise click.UsageError("give a plane GROUP with --plane (1..17 or a symbol like p4gm)")
    return db.plane_group(group)


def _basis_of(db: Database, setting, kmax: int | None):
    """The Basis of a Setting, or of a plane group given its PlaneGroup."""
    if isinstance(setting, PlaneGroup):
        return db.get(plane=setting.number, kmax=kmax)
    return db.get(hall=setting.hall_number, kmax=kmax)


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
@click.option("--plane", is_flag=True, help="List the 17 plane groups instead.")
def list_(db_path: str | None, number: int | None, system: str | None, plane: bool) -> None:
    """List the settings (or, with --plane, the plane groups) in the artifact."""
    db = _open(db_path)
    if plane:
        if number is not None or system is not None:
            raise click.UsageError("--number and --system select space groups; they cannot be combined with --plane")
        _list_planes(db)
        return
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
@_plane_option
@_db_option
def info(group: str | None, hall: int | None, plane: bool, db_path: str | None) -> None:
    """Metadata of one setting: GROUP is a number (225) or a symbol ('Fd-3m:2'); with --plane a plane group."""
    db = _open(db_path)
    s = _resolve_any(db, group, hall, plane)
    for name, value in s.__dict__.items():
        click.echo(f"{name:<14} {value}")
    click.echo(f"{'kmax':<14} {db.kmax}")


@cli.command()
@click.argument("group", required=False)
@click.option("--hall", type=int, default=None, help="Select by hall_number 1..530.")
@click.option("--ops", default=None, help="Instead of GROUP: operations 'x,y,z;-x,-y,-z;...' (built on the fly).")
@click.option("--kmax", "-k", type=int, default=None, help="Cut-off (default: the artifact's).")
@click.option("--limit", type=int, default=20, show_default=True, help="Orbits to show (0 = all).")
@_plane_option
@_db_option
def show(group, hall, ops, kmax, limit, plane, db_path) -> None:
    """Orbits of one setting with their members and exact phases."""
    if limit < 0:
        raise click.BadParameter("must be >= 0", param_hint="--limit")
    if ops is not None:
        if group is not None or hall is not None or plane:
            raise click.UsageError("give either GROUP/--hall/--plane or --ops, not both")
        from ._custom import basis_from_operations

        basis = basis_from_operations(ops, kmax=8 if kmax is None else kmax)
    else:
        db = _open(db_path)
        basis = _basis_of(db, _resolve_any(db, group, hall, plane), kmax)
    s = basis.setting
    where = f"plane group No. {s.number}" if basis.is_plane else f"hall {s.hall_number}, No. {s.number}"
    click.echo(
        f"{s.hm_extended} ({where}), K={basis.kmax}: "
        f"{basis.n_orbits} orbits, {len(basis.frequencies)} frequencies, {len(basis.extinct)} extinct"
    )
    shown = basis.n_orbits if limit == 0 else min(limit, basis.n_orbits)
    for j in range(shown):
        freqs, phases = basis.orbit(j)
        conj = basis.conjugate[j]
        tag = "-O=O" if conj == j else f"-O=#{conj}"
        members = "  ".join(
            f"({','.join(map(str, k))}){'' if p == 0 else ' @' + _frac(p, basis.denominator)}" for k, p in zip(freqs.tolist(), phases.tolist())
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
        f"ok: {report['path']}: {report['settings']} settings, K={report['kmax']}, "
        f"{report['plane_groups']} plane groups, checksums match, "
        f"max invariance error {report['max_invariance_error']:.1e}"
    )


def _list_planes(db: Database) -> None:
    rows = db.plane_groups()
    click.echo(f"{'no':>3}  {'full':<6} {'short':<6} {'lattice':<12} {'pg':<5} {'order':>5} {'orbits':>6} {'extinct':>7}")
    for g in rows:
        click.echo(
            f"{g.number:>3}  {g.hm_full:<6} {g.hm_short:<6} {g.lattice:<12} {g.point_group:<5} {g.order:>5} {g.n_orbits:>6} {g.n_extinct:>7}"
        )
    click.echo(f"{len(rows)} plane groups (International Tables Vol. A, standard descriptions), K={db.kmax}")


def _parse_floats(spec: str, what: str) -> list[float]:
    try:
        return [float(Fraction(p.strip())) for p in spec.split(",") if p.strip()]
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(f"cannot parse {spec!r}; use e.g. '0,0.25,1/2'", param_hint=what) from None


@cli.command()
@click.argument("group", required=False)
@click.option("--hall", type=int, default=None, help="Select by hall_number 1..530.")
@_plane_option
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="PNG to write (default: <symbol>.png).")
@click.option("--n", "n_functions", type=int, default=12, show_default=True, help="Number of basis functions (from function 1; 0 is the constant).")
@click.option("--functions", default=None, help="Instead of --n: real basis columns to draw, e.g. '1,2,5'.")
@click.option("--cells", type=int, default=2, show_default=True, help="Unit cells along each axis.")
@click.option("--sections", default="0,0.25,0.5", show_default=True, help="Space groups: z of the sections (fractions allowed).")
@click.option("--kmax", "-k", type=int, default=None, help="Cut-off (default: the artifact's).")
@click.option("--dpi", type=int, default=80, show_default=True, help="Resolution of the PNG.")
@_db_option
def plot(group, hall, plane, output, n_functions, functions, cells, sections, kmax, dpi, db_path) -> None:
    """Draw real basis functions to a PNG (needs matplotlib: pip install basisdb[plot]).

    Plane groups: a grid of functions over CELLS x CELLS unit cells on the true
    lattice (120 degrees for hexagonal groups). Space groups: sections z = const
    of each function (one row per function, one column per section).
    """
    from . import _plot

    if n_functions < 1:
        raise click.BadParameter("must be >= 1", param_hint="--n")
    if not 1 <= cells <= 8:
        raise click.BadParameter("must be in 1..8", param_hint="--cells")
    if not 20 <= dpi <= 600:
        raise click.BadParameter("must be in 20..600", param_hint="--dpi")
    try:
        cols = None if functions is None else [int(v) for v in functions.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"cannot parse {functions!r}; use e.g. '1,2,5'", param_hint="--functions") from None
    zs = _parse_floats(sections, "--sections")
    if not zs:
        raise click.BadParameter("give at least one section", param_hint="--sections")
    _plot.require_matplotlib()
    db = _open(db_path)
    setting = _resolve_any(db, group, hall, plane)
    basis = _basis_of(db, setting, kmax)
    if output is None:
        output = "".join(c if c.isalnum() or c in "-_" else "_" for c in setting.hm_extended.replace(" ", "")) + ".png"
    out = _plot.plot_basis(basis, output, functions=cols, n=n_functions, cells=cells, sections=zs, dpi=dpi)
    click.echo(f"wrote {out}")


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
