"""The ``basisdb`` command line: build, list, info, show, plot, verify, path.

Every failure prints one line (``basisdb: error: ...``) to stderr and exits
non-zero; no traceback reaches the user.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from fractions import Fraction
from pathlib import Path

import click

from ._basis import PlaneGroup
from ._constants import N_PLANE_GROUPS, N_SETTINGS, N_SPACE_GROUPS
from ._database import Database, default_path
from ._database import open as open_db
from ._symbols import CRYSTAL_SYSTEMS

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
                self._fail(
                    f"space-group number must be in 1..{N_SPACE_GROUPS}, got {name}", exc.exit_code or 2
                )
            if command is not None and takes_group and len(name) == 2 and name[1] in "PABCIRFpabcirf":
                # '-P 2ybc', a Hall symbol
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


_hall_option = click.option("--hall", type=int, default=None, help=f"Select by hall_number 1..{N_SETTINGS}.")
_kmax_option = click.option("--kmax", "-k", type=int, default=None, help="Cut-off (default: the artifact's).")


def _vector_option(help: str):
    """--vector [polar|axial]: '--vector' alone means polar."""
    return click.option(
        "--vector",
        type=click.Choice(["polar", "axial"]),
        is_flag=False,
        flag_value="polar",
        default=None,
        help=help,
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
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Artifact to read (default: $BASISDB_PATH or the shipped one).",
)


_magnetic_option = click.option(
    "--magnetic",
    is_flag=True,
    help="GROUP is one of the 1,651 magnetic space groups: UNI number, BNS ('136.499') or OG ('136.4.1155') number.",
)


def _magnetic_of(db: Database, group: str | None, hall=None, plane=False):
    if hall is not None or plane:
        raise click.UsageError("--magnetic cannot be combined with --hall or --plane")
    if group is None:
        raise click.UsageError(
            "give a magnetic GROUP with --magnetic (UNI number 1..1651, BNS '136.499' or OG '136.4.1155')"
        )
    return db.magnetic_group(group)


def _list_magnetic(db: Database, number: int | None, as_json: bool) -> None:
    rows = db.magnetic_groups()
    if number is not None:
        if not 1 <= number <= N_SPACE_GROUPS:
            raise click.BadParameter(
                f"space-group number must be in 1..{N_SPACE_GROUPS}, got {number}", param_hint="--number"
            )
        rows = [g for g in rows if g.number == number]
    if not rows and number is None:
        raise LookupError(
            f"{db.path} has no magnetic groups (format version {db.format_version}); rebuild it with `basisdb build`"
        )
    if as_json:
        _echo_json(rows)
        return
    click.echo(
        f"{'uni':>4} {'BNS':<9} {'OG':<12} {'type':>4} {'no':>3} {'order':>5} {'F hall':>6} {'even':>5} {'odd':>5}"
    )
    for g in rows:
        click.echo(
            f"{g.uni_number:>4} {g.bns_number:<9} {g.og_number:<12} {g.type:>4} {g.number:>3} {g.order:>5} "
            f"{g.family_hall_number:>6} {g.n_even:>5} {g.n_odd:>5}"
        )
    click.echo(
        f"{len(rows)} magnetic space groups (BNS settings; even/odd = time-even/time-odd basis sizes), K={db.kmax}"
    )


def _frac_int(num: int, den: int) -> str:
    f = Fraction(int(num), int(den))
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def _info_magnetic(db: Database, group, hall, plane) -> None:
    g = _magnetic_of(db, group, hall, plane)
    for name, value in g.__dict__.items():
        if name in ("transformation", "origin_shift"):
            continue
        click.echo(f"{name:<18} {value}")
    click.echo(f"{'type_name':<18} {g.type_name}")
    P = "[" + "; ".join(" ".join(_frac_int(v, g.denominator) for v in row) for row in g.transformation) + "]"
    click.echo(f"{'transformation':<18} {P}")
    click.echo(f"{'origin_shift':<18} [{' '.join(_frac_int(v, g.denominator) for v in g.origin_shift)}]")
    click.echo(f"{'kmax':<18} {db.kmax}")


def _echo_orbits(basis, limit: int) -> None:
    shown = basis.n_orbits if limit == 0 else min(limit, basis.n_orbits)
    for j in range(shown):
        freqs, phases = basis.orbit(j)
        conj = basis.conjugate[j]
        tag = "-O=O" if conj == j else f"-O=#{conj}"
        members = "  ".join(
            f"({','.join(map(str, k))}){'' if p == 0 else ' @' + _frac(p, basis.denominator)}"
            for k, p in zip(freqs.tolist(), phases.tolist())
        )
        click.echo(f"#{j:<4} |O|={len(freqs):<3} {tag:<8} {members}")
    if shown < basis.n_orbits:
        click.echo(f"... {basis.n_orbits - shown} more orbits (use --limit 0 for all)")


def _show_magnetic(db: Database, group, kmax, limit) -> None:
    g = _magnetic_of(db, group)
    mb = db.get(magnetic=g.uni_number, kmax=kmax)
    click.echo(
        f"BNS {g.bns_number} (UNI {g.uni_number}, OG {g.og_number}), {g.type_name}, family group No. {g.family_number} "
        f"(hall {g.family_hall_number}), {g.order} operations, K={mb.kmax}"
    )
    for name, view in (("time-odd", mb.time_odd), ("time-even", mb.time_even)):
        click.echo(
            f"{name}: {view.n_orbits} orbits, {len(view.frequencies)} frequencies, {len(view.extinct)} extinct"
        )
        _echo_orbits(view, limit)
    click.echo(
        "phase '@ p' means coefficient exp(2 pi i p) relative to the orbit's first member; "
        "time-odd: phi(R x + t) = (-1)^theta phi(x)"
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
                if lo < 1 or hi > N_SETTINGS:
                    raise click.BadParameter(
                        f"range {part!r} is outside 1..{N_SETTINGS}", param_hint="--halls"
                    )
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise click.BadParameter(
                f"cannot parse {part!r}; use e.g. 'all' or '1-10,81,526'", param_hint="--halls"
            ) from None
    return out


@cli.command()
@click.option("--kmax", "-k", type=int, default=8, show_default=True, help="Cut-off: -K <= h,k,l <= K.")
@click.option(
    "--halls", default="all", show_default=True, help="Settings to build: 'all' or e.g. '1-10,81,526'."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default="basisdb.h5",
    show_default=True,
    help="Output HDF5 file (written atomically).",
)
@click.option("--jobs", "-j", type=int, default=None, help="Worker processes (default: number of CPUs).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def build(kmax: int, halls: str, output: str, jobs: int | None, quiet: bool) -> None:
    """Build the database (needs the build extra: pip install 'basisdb[build]')."""
    from basisdb.builder import build_database, check_build_request, check_output_path, parse_selection

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
    click.echo(
        f"wrote {summary['path']}: {summary['settings']} settings, K={summary['kmax']}, {summary['bytes']:,} bytes"
    )


def _echo_json(rows) -> None:
    """The rows (Setting, PlaneGroup or MagneticGroup) as a JSON array of objects, one per row, in
    field order (a MagneticGroup's transformation and origin_shift as integers over its denominator)."""
    click.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))


@cli.command("list")
@_db_option
@click.option(
    "--number",
    "-n",
    type=int,
    default=None,
    help=f"Only settings of this space-group number (1..{N_SPACE_GROUPS}).",
)
@click.option(
    "--system", type=str, default=None, help=f"Only this crystal system ({', '.join(CRYSTAL_SYSTEMS)})."
)
@click.option("--plane", is_flag=True, help=f"List the {N_PLANE_GROUPS} plane groups instead.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the rows as a JSON array of objects (the fields of Setting, PlaneGroup or "
    "MagneticGroup; a magnetic group's transformation and origin_shift are integer numerators "
    "over its 'denominator', 24).",
)
@click.option(
    "--magnetic",
    is_flag=True,
    help="List the 1,651 magnetic space-group types (BNS settings) instead; --number selects by space-group number.",
)
def list_(
    db_path: str | None,
    number: int | None,
    system: str | None,
    plane: bool,
    as_json: bool,
    magnetic: bool = False,
) -> None:
    """List the settings (or, with --plane, the plane groups; with --magnetic, the magnetic groups) in the artifact."""
    if magnetic:
        if plane or system is not None:
            raise click.UsageError("--magnetic cannot be combined with --plane or --system")
        _list_magnetic(_open(db_path), number, as_json)
        return
    if plane and (number is not None or system is not None):
        raise click.UsageError(
            "--number and --system select space groups; they cannot be combined with --plane"
        )
    if number is not None and not 1 <= number <= N_SPACE_GROUPS:
        raise click.BadParameter(
            f"space-group number must be in 1..{N_SPACE_GROUPS}, got {number}", param_hint="--number"
        )
    if system is not None and system.strip().lower() not in CRYSTAL_SYSTEMS:
        raise click.BadParameter(
            f"unknown crystal system {system!r} (one of {', '.join(CRYSTAL_SYSTEMS)})", param_hint="--system"
        )
    db = _open(db_path)
    if plane:
        _list_planes(db, as_json)
        return
    rows = db.settings()
    if number is not None:
        rows = [s for s in rows if s.number == number]
    if system is not None:
        rows = [s for s in rows if s.crystal_system == system.strip().lower()]
    if as_json:
        _echo_json(rows)
        return
    click.echo(
        f"{'hall':>4} {'no':>3}  {'H-M (setting)':<20} {'Hall symbol':<18} {'system':<12} {'pg':<6} {'order':>5} {'orbits':>6}"
    )
    for s in rows:
        mark = "*" if s.is_default else " "
        click.echo(
            f"{s.hall_number:>4} {s.number:>3}{mark} {s.hm_extended:<20} {s.hall_symbol:<18} "
            f"{s.crystal_system:<12} {s.point_group:<6} {s.order:>5} {s.n_orbits:>6}"
        )
    click.echo(f"{len(rows)} settings (* = spglib's default setting of its number), K={db.kmax}")


@cli.command()
@click.argument("group", required=False)
@_hall_option
@_plane_option
@_db_option
@_magnetic_option
def info(
    group: str | None, hall: int | None, plane: bool, db_path: str | None, magnetic: bool = False
) -> None:
    """Metadata of one setting: GROUP is a number (225) or a symbol ('Fd-3m:2'); with --plane a plane group;
    with --magnetic a magnetic group (UNI number, BNS '136.499' or OG '136.4.1155')."""
    db = _open(db_path)
    if magnetic:
        _info_magnetic(db, group, hall, plane)
        return
    s = _resolve_any(db, group, hall, plane)
    for name, value in s.__dict__.items():
        click.echo(f"{name:<14} {value}")
    click.echo(f"{'kmax':<14} {db.kmax}")


@cli.command()
@click.argument("group", required=False)
@_hall_option
@click.option(
    "--ops", default=None, help="Instead of GROUP: operations 'x,y,z;-x,-y,-z;...' (built on the fly)."
)
@_kmax_option
@click.option("--limit", type=int, default=20, show_default=True, help="Orbits to show (0 = all).")
@_vector_option("The equivariant vector-field basis instead ('--vector' alone: polar; or '--vector axial').")
@_plane_option
@_db_option
@_magnetic_option
def show(group, hall, ops, kmax, limit, plane, db_path, vector=None, magnetic=False) -> None:
    """Orbits of one setting with their members and exact phases."""
    if limit < 0:
        raise click.BadParameter("must be >= 0", param_hint="--limit")
    if magnetic:
        if hall is not None or ops is not None or plane or vector is not None:
            raise click.UsageError(
                "--magnetic takes a GROUP (UNI, BNS or OG number) only, not --hall/--ops/--plane/--vector"
            )
        _show_magnetic(_open(db_path), group, kmax, limit)
        return
    if ops is not None:
        if group is not None or hall is not None or plane:
            raise click.UsageError("give either GROUP/--hall/--plane or --ops, not both")
        from ._custom import basis_from_operations

        basis = basis_from_operations(ops, kmax=8 if kmax is None else kmax)
    else:
        db = _open(db_path)
        basis = _basis_of(db, _resolve_any(db, group, hall, plane), kmax)
    if vector is not None:
        if basis.is_plane:
            raise click.UsageError("--vector: vector bases exist for space groups only")
        _show_vector(basis, vector, limit)
        return
    s = basis.setting
    where = f"plane group No. {s.number}" if basis.is_plane else f"hall {s.hall_number}, No. {s.number}"
    click.echo(
        f"{s.hm_extended} ({where}), K={basis.kmax}: "
        f"{basis.n_orbits} orbits, {len(basis.frequencies)} frequencies, {len(basis.extinct)} extinct"
    )
    _echo_orbits(basis, limit)
    click.echo("phase '@ p' means coefficient exp(2 pi i p) relative to the orbit's first member")


def _show_vector(basis, kind: str, limit: int) -> None:
    """``show --vector``: orbits carrying equivariant vector fields, exact dimensions, vectors at k0."""
    v = basis.vector(kind)
    s = basis.setting
    click.echo(
        f"{s.hm_extended} (hall {s.hall_number}, No. {s.number}), K={basis.kmax}, {kind} vector fields "
        f"(contravariant components along a, b, c): {v.n_basis} functions on {v.n_orbits} orbits, "
        f"{int(v.scalar_extinct.sum())} of them scalar-extinct"
    )
    shown = v.n_orbits if limit == 0 else min(limit, v.n_orbits)
    ptr = v.orbit_ptr
    for j in range(shown):
        k0 = v.frequencies[ptr[j]]
        size, d = int(ptr[j + 1] - ptr[j]), int(v.orbit_dim[j])
        coef = v.orbit(j)[1][0] * size**0.5  # (3, d): the orthonormal coefficient vectors at k0, rounded
        vecs = ["[" + ",".join(_cnum(z) for z in coef[:, a]) + "]" for a in range(d)]
        tag = " scalar-extinct" if v.scalar_extinct[j] else ""
        click.echo(
            f"#{j:<4} k0=({','.join(map(str, k0.tolist()))}) |O|={size:<3} |S|={basis.setting.order // size:<3} "
            f"dim={d}{tag}  c_k0*sqrt|O| = {' '.join(vecs)}"
        )
    if shown < v.n_orbits:
        click.echo(f"... {v.n_orbits - shown} more orbits (use --limit 0 for all)")
    click.echo(
        "dim = (1/|S|) sum_{g in S} e(k0.t_g) tr M_g exactly (M = R, or det R * R for axial); docs/CONVENTIONS.md section 13"
    )


def _cnum(z: complex) -> str:
    re, im = round(float(z.real), 4) + 0.0, round(float(z.imag), 4) + 0.0
    if im == 0:
        return f"{re:g}"
    if re == 0:
        return f"{im:g}i"
    return f"{re:g}{im:+g}i"


@cli.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--points",
    type=int,
    default=8,
    show_default=True,
    help="Random points per setting for the invariance check.",
)
def verify(path: str | None, points: int) -> None:
    """Check an artifact: checksums, consistency and invariance of every basis function."""
    if points < 1:
        raise click.BadParameter("must be >= 1", param_hint="--points")
    db = _open(path)
    report = db.verify(invariance_points=points)
    click.echo(
        f"ok: {report['path']}: {report['settings']} settings, K={report['kmax']}, "
        f"{report['plane_groups']} plane groups, {report.get('magnetic_groups', 0)} magnetic groups, checksums match, "
        f"max invariance error {report['max_invariance_error']:.1e}"
    )


def _list_planes(db: Database, as_json: bool = False) -> None:
    rows = db.plane_groups()
    if as_json:
        _echo_json(rows)
        return
    click.echo(
        f"{'no':>3}  {'full':<6} {'short':<6} {'lattice':<12} {'pg':<5} {'order':>5} {'orbits':>6} {'extinct':>7}"
    )
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
@_hall_option
@_plane_option
@click.option(
    "--cif",
    "cif",
    type=click.Path(dir_okay=False),
    default=None,
    help="Draw this crystal instead: its canonical cell on a section, with one invariant function (needs spglib, gemmi).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="File to write: .png, .svg or .pdf (default: <symbol>.png, or <cif name>.png).",
)
@click.option(
    "--n",
    "n_functions",
    type=int,
    default=None,
    help="Number of basis functions (default 12 for plane groups, 6 for space groups): the first non-constant ones, columns 1, 2, ... (column 0 is the constant), skipping functions zero on every section.",
)
@click.option(
    "--functions",
    default=None,
    help="Instead of --n: real basis columns to draw, 0-based as in Basis.evaluate (0 is the constant function), e.g. '1,2,5' (with --cif: the first one).",
)
@click.option("--cells", type=int, default=None, help="Unit cells along each axis (default 2; 1 with --cif).")
@click.option(
    "--sections",
    default=None,
    help="Space groups: z of the sections, fractions allowed (default '0,1/4,1/2'; with --cif: the first one, default the height with most atoms).",
)
@_kmax_option
@click.option("--dpi", type=int, default=120, show_default=True, help="Resolution of PNG output.")
@_vector_option(
    "Space groups: equivariant vector fields as arrows on the sections ('--vector' alone: polar)."
)
@_db_option
def plot(
    group, hall, plane, cif, output, n_functions, functions, cells, sections, kmax, dpi, db_path, vector=None
) -> None:
    """Draw real basis functions to a PNG, SVG or PDF (needs matplotlib: pip install basisdb[plot]).

    Plane groups: a grid of functions over CELLS x CELLS unit cells on the true
    lattice (120 degrees for hexagonal groups). Space groups: sections z = const
    of each function (one row per function, one column per section), with the
    symmetry elements each section meets. One colour scale per picture; a function
    that is zero on a section is left blank and labelled. --cif FILE: the crystal's
    atoms on a section of its canonical cell over one invariant function.
    """
    from . import _plot

    if n_functions is not None and n_functions < 1:
        raise click.BadParameter("must be >= 1", param_hint="--n")
    if cells is not None and not 1 <= cells <= 8:
        raise click.BadParameter("must be in 1..8", param_hint="--cells")
    if not 20 <= dpi <= 600:
        raise click.BadParameter("must be in 20..600", param_hint="--dpi")
    try:
        cols = None if functions is None else [int(v) for v in functions.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(
            f"cannot parse {functions!r}; use e.g. '1,2,5'", param_hint="--functions"
        ) from None
    zs = None if sections is None else _parse_floats(sections, "--sections")
    if zs is not None and not zs:
        raise click.BadParameter("give at least one section", param_hint="--sections")
    if output is not None:
        _plot.output_format(output)
    if cif is not None and vector is not None:
        raise click.UsageError("--vector draws a group's vector fields; give no --cif with it")
    if cif is not None:
        if group is not None or hall is not None or plane:
            raise click.UsageError(
                "--cif draws the crystal's own group; give no GROUP, --hall or --plane with it"
            )
        _plot.require_matplotlib()
        from .structures import featurize

        result = featurize(cif, kmax=kmax, db=_open(db_path))
        out = _plot.plot_structure(
            result,
            output or Path(cif).stem + ".png",
            function=None if not cols else cols[0],
            z=None if zs is None else zs[0],
            cells=cells or 1,
            dpi=dpi,
        )
        click.echo(f"wrote {out}")
        return
    _plot.require_matplotlib()
    db = _open(db_path)
    setting = _resolve_any(db, group, hall, plane)
    basis = _basis_of(db, setting, kmax)
    if basis.is_plane and zs is not None:
        raise click.UsageError("--sections: a plane group has no sections (it is drawn in its own plane)")
    if output is None:
        output = (
            "".join(c if c.isalnum() or c in "-_" else "_" for c in setting.hm_extended.replace(" ", ""))
            + ".png"
        )
    if vector is not None:
        if basis.is_plane:
            raise click.UsageError("--vector: vector fields are drawn for space groups only")
        from ._plot_vector import plot_vector

        out = plot_vector(
            basis,
            output,
            kind=vector,
            functions=cols,
            n=n_functions,
            cells=cells or 2,
            sections=zs or (0.0, 0.25, 0.5),
            dpi=dpi,
        )
        click.echo(f"wrote {out}")
        return
    out = _plot.plot_basis(
        basis,
        output,
        functions=cols,
        n=n_functions,
        cells=cells or 2,
        sections=zs or (0.0, 0.25, 0.5),
        dpi=dpi,
    )
    click.echo(f"wrote {out}")


@cli.command("featurize")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(file_okay=False),
    help="Dataset folder to write (Parquet; rerun the same command to resume).",
)
@click.option(
    "--kmax", "-k", type=int, default=None, help="Cut-off of the features (default: the artifact's)."
)
@click.option(
    "--symprec", type=float, default=None, help="spglib's tolerance (Angstrom; default: featurize's)."
)
@click.option(
    "--angle-tolerance",
    type=float,
    default=None,
    help="spglib's angle tolerance (degrees; default: featurize's; -1: spglib's own).",
)
@click.option(
    "--features/--no-features",
    default=True,
    show_default=True,
    help="Store per-atom features (float32); without: positions, group and lattice only.",
)
@click.option(
    "--encoding", is_flag=True, help="Also store the real shared box encoding ((2K+1)^3 float32 per atom)."
)
@click.option(
    "--cif-column", default="cif", show_default=True, help="CSV/Parquet inputs: the column with CIF text."
)
@click.option(
    "--id-column",
    default=None,
    help="CSV/Parquet inputs: the id column (default material_id or id when present, else FILE:ROW).",
)
@click.option(
    "--carry",
    multiple=True,
    help="A column of CSV/Parquet inputs (or, for ASE files, an atoms.info key, database key or calculator result such as energy) to copy into the output (e.g. a target); repeatable. One type per column for the whole dataset (numbers as float64, bool, string, numeric lists), fixed from every input before the run.",
)
@click.option(
    "--partition-size",
    type=int,
    default=256,
    show_default=True,
    help="Structures per partition (task and file).",
)
@click.option(
    "--workers",
    "-j",
    type=int,
    default=None,
    help="Workers of the local Dask cluster (default: number of CPUs).",
)
@click.option("--threads", is_flag=True, help="Local cluster of threads instead of processes.")
@click.option(
    "--scheduler",
    default=None,
    help="'sync' (this process, no Dask), or the address of a running Dask scheduler (tcp://host:8786).",
)
@click.option(
    "--on-mismatch",
    type=click.Choice(["warn", "raise", "ignore"]),
    default="warn",
    show_default=True,
    help="A declared group that differs from the detected one: a warning in the row, or a failure.",
)
@click.option(
    "--detector",
    type=click.Choice(["spglib", "moyopy"]),
    default="spglib",
    show_default=True,
    help="Symmetry detector (moyopy: pip install basisdb[moyopy]).",
)
@click.option(
    "--detector-timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds a structure may take before it is stopped and recorded as a failure (TimeoutError); "
    "default 30 with --detector moyopy (which can loop forever on a structure), none with spglib; 0: no limit.",
)
@click.option(
    "--add-columns",
    "add_columns",
    default=None,
    metavar="MODULE:FUNCTION",
    help="Columns computed per structure on the workers: FUNCTION(cell, result) -> {name: value} from an "
    "importable MODULE (docs/DATASETS.md, 'Your own columns').",
)
@click.option("--overwrite", is_flag=True, help="Start again in a folder that holds another run.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_db_option
def featurize_cmd(
    inputs,
    output,
    kmax,
    symprec,
    angle_tolerance,
    features,
    encoding,
    cif_column,
    id_column,
    carry,
    partition_size,
    workers,
    threads,
    scheduler,
    on_mismatch,
    detector,
    detector_timeout,
    add_columns,
    overwrite,
    quiet,
    db_path,
) -> None:
    """Featurize a dataset: CIF files, folders, globs, CSV/Parquet tables of CIFs, extxyz (needs basisdb[dataset]).

    Writes OUTPUT/features/part-*.parquet (one row per structure, input order) and
    OUTPUT/failures/part-*.parquet (one row per failure); see docs/DATASETS.md.
    """
    from .dataset import FEATURIZE_DEFAULT, featurize_dataset, format_summary

    result = featurize_dataset(
        list(inputs),
        output,
        kmax=kmax,
        symprec=FEATURIZE_DEFAULT if symprec is None else symprec,
        features=features,
        encoding=encoding,
        cif_column=cif_column,
        id_column=id_column,
        carry=carry,
        partition_size=partition_size,
        workers=workers,
        scheduler=scheduler,
        processes=not threads,
        progress=None if not quiet else False,
        overwrite=overwrite,
        db=db_path,
        angle_tolerance=FEATURIZE_DEFAULT if angle_tolerance is None else angle_tolerance,
        on_mismatch=on_mismatch,
        detector=detector,
        detector_timeout=detector_timeout,
        add_columns=None if add_columns is None else _import_function(add_columns),
    )
    click.echo(format_summary(result.summary))
    click.echo(f"wrote {output}")


def _import_function(spec: str):
    """MODULE:FUNCTION -> the function (the current directory is importable, as with ``python -m``)."""
    import importlib

    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise click.BadParameter(
            f"{spec!r}: expected MODULE:FUNCTION, e.g. mycols:columns", param_hint="--add-columns"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise click.BadParameter(
            f"cannot import module {module!r}: {exc}", param_hint="--add-columns"
        ) from None
    except Exception as exc:  # a syntax error or an exception at the module's top level
        raise click.BadParameter(
            f"importing module {module!r} failed: {type(exc).__name__}: {exc}", param_hint="--add-columns"
        ) from None
    fn = getattr(mod, name, None)
    if fn is None:
        raise click.BadParameter(f"module {module!r} has no {name!r}", param_hint="--add-columns")
    if not callable(fn):
        raise click.BadParameter(f"{spec} is not a function", param_hint="--add-columns")
    return fn


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
