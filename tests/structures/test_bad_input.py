"""The bad-input catalogue: every row of docs/BAD_INPUT.md, checked exactly.

The rows below are the single source of truth.  The table in docs/BAD_INPUT.md is
generated from them (``make bad-input-doc``, i.e. ``python tests/structures/test_bad_input.py
--write``) and ``test_doc_table_in_sync`` fails when the two drift apart.

API rows are Python expressions evaluated against the fixtures named in
``PLACEHOLDERS`` (``db`` = the shipped artifact, ``small`` = a partial artifact,
``b`` = a basis); the exception type and the whole message must match (``...``
matches any text, used only where the text comes from HDF5 or from this machine's
RAM).  CLI rows must print exactly one line ``basisdb: error: <message>`` on stderr,
nothing on stdout, no traceback, and exit with the given status.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import basisdb
from basisdb import ArtifactError, CIFError, NotAGroupError, SettingNotFoundError, SymmetryMismatchError

DOC = Path(__file__).resolve().parents[2] / "docs" / "BAD_INPUT.md"
BEGIN = "<!-- BEGIN GENERATED TABLE: edit tests/structures/test_bad_input.py, then `make bad-input-doc` -->"
END = "<!-- END GENERATED TABLE -->"

SMALL_HALLS = [1, 2, 81, 523]
SMALL_KMAX = 2

#: what the names used in the rows stand for (also printed in the doc)
PLACEHOLDERS = {
    "db": "`basisdb.open()`: the shipped artifact (K = 8, all 530 settings)",
    "small": "`basisdb.open({small})`: a partial artifact, halls 1, 2, 81, 523 at K = 2",
    "b": "`db.get(225, kmax=2)`: the F m -3 m basis at K = 2 (5 functions)",
    "{small}": "path of that partial artifact",
    "{notes}": "a text file (not HDF5)",
    "{empty}": "an empty (0-byte) file",
    "{cut}": "the partial artifact truncated to half its length",
    "{newer}": "the partial artifact with its `format_version` attribute set to 3",
    "{foreign}": "a valid HDF5 file written by someone else (no basisdb attributes)",
    "{missing}": "a path that does not exist",
    "{dir}": "a directory",
    "{cif:NAME}": "a small CIF written by the test (`CIFS[NAME]` in tests/structures/test_bad_input.py: a cell, the symmetry named in "
    "the row, one or two atoms)",
}


def _cif(
    symmetry: str,
    atoms: str = "Ti1 Ti 0.1 0.2 0.3",
    cell: str = "4 4 4 90 90 90",
    tags: str = "label type_symbol fract_x fract_y fract_z",
) -> str:
    keys = ("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma")
    head = "\n".join(f"_cell_{k} {v}" for k, v in zip(keys, cell.split()))
    loop = "\n".join(["loop_"] + [f"_atom_site_{t}" for t in tags.split()] + atoms.split(";"))
    return f"data_bad\n{head}\n{symmetry}\n{loop}\n"


def _ops(*ops: str) -> str:
    return "loop_\n_symmetry_equiv_pos_as_xyz\n" + "\n".join(f"'{o}'" for o in ops)


#: CIF files the rows read ({cif:NAME} in a row is the path of CIFS[NAME])
CIFS = {
    "not_group": _ops("x,y,z", "-x,-y,z", "-x,y,-z"),
    "fifth": _ops("x,y,z", "-x,-y,z+0.2"),
    "thirds": _ops("x,y,z", "-y,x-y,z+0.333", "-x+y,-x,z+0.667"),
    "bad_hm": "_symmetry_space_group_name_H-M 'Q 9'",
    "bad_hall": "_space_group_name_Hall '-P 4n 2q'",
    "bad_number": "_space_group_IT_number 231",
    "magnetic_name": "_space_group_magn.name_BNS \"P4_2'/mnm'\"",
    "superspace": "_cell_modulation_dimension 1",
    "p4mmm": "_symmetry_space_group_name_H-M 'P 4/m m m'",
}
CIF_ATOMS = {
    "p4mmm": "Ti1 Ti 0 0 0;Ti2 Ti 0.5 0.5 0.5",
    "twice": "Ti1 Ti 0.1 0.2 0.3;Ti2 Ti 0.1 0.2 0.3",
    "unknown": "Ow1 Ow1 0.1 0.2 0.3",
    "partial": "Ti1 Ti 0.1 0.2 0.3 0.5",
    "cartesian": "Ti1 Ti 0.1 0.2 0.3",
    "merge": "Fe1 Fe 0.003 0 0",
    "deuterium": "D1 D 0.15 0.15 0.15;Br1 Br 0.5 0.5 0.5",
}
CIF_TEXT = {name: _cif(sym) for name, sym in CIFS.items()}
CIF_TEXT.update(
    {
        "p4mmm": _cif(CIFS["p4mmm"], CIF_ATOMS["p4mmm"], "4.5937 4.5937 2.9587 90 90 90"),
        "twice": _cif("", CIF_ATOMS["twice"]),
        "unknown": _cif("", CIF_ATOMS["unknown"]),
        "partial": _cif("", CIF_ATOMS["partial"], tags="label type_symbol fract_x fract_y fract_z occupancy"),
        "cartesian": _cif("", CIF_ATOMS["cartesian"], tags="label type_symbol Cartn_x Cartn_y Cartn_z"),
        "merge": _cif(_ops("x,y,z", "-x,-y,-z"), CIF_ATOMS["merge"], "10 10 10 90 90 90"),
        "deuterium": _cif("", CIF_ATOMS["deuterium"], "4.06 4.06 4.06 90 90 90"),
        "thirds": _cif(CIFS["thirds"], "Si1 Si 0.47 0 0;O1 O 0.41 0.27 0.12", "4.91 4.91 5.4 90 90 120"),
    }
)


@dataclass(frozen=True)
class Row:
    """One bad input.  ``where`` is 'API' or 'CLI'; ``call`` a Python expression or a command line.

    API: ``error`` is the exception type, ``message`` its exact ``str()``.
    CLI: ``message`` follows ``basisdb: error: `` and ``exit`` is the exit status.
    ``error is None`` marks an edge case that is *not* an error; ``message`` then
    describes the result and ``check`` (an expression) must be true.
    """

    what: str
    where: str
    call: str
    error: type | None
    message: str
    exit: int = 0
    check: str = ""


E, N, T, V, A, G = SettingNotFoundError, None, TypeError, ValueError, ArtifactError, NotAGroupError
RANGE = "space-group number must be in 1..230, got {}"
HINT9 = "kmax=9 exceeds this artifact's kmax=8; build a larger one with `basisdb build --kmax 9 -o PATH` and open it with basisdb.open(PATH)"
HINT99 = HINT9.replace("9", "99")
NOT_CLOSED = "not closed: the product of -x,-y,z and -x,y,-z is missing"
AMBIGUOUS = (
    "ambiguous space-group symbol 'P 6 -2c': as a Hall symbol P 6 c c (hall 478); as an H-M symbol P -6 2 c "
    "(hall 484); write 'Hall: P 6 -2c' for the Hall reading, or give the hall number (hall_number=, --hall)"
)
NO_SUCH = "unknown space-group symbol {!r}; see `basisdb list` for the settings"
DID_YOU_MEAN = "unknown space-group symbol 'Pnma3'; did you mean 'Pnma', 'Pnnm', 'Pnna', 'Pnmn'?"
MEMORY = "building at kmax=127 with 1 job(s) needs about ... GiB, more than 50% of this machine's ... GiB; use a smaller kmax or fewer jobs"
TRUNCATED = "{cut}: cannot open HDF5 file (truncated or damaged?): Unable to synchronously open file (truncated file: ...)"
NEWER = "{newer}: format version 3 is newer than this basisdb supports (2); upgrade basisdb"

ROWS: list[Row] = [
    # ------------------------------------------------------------- group numbers and symbols
    Row("group number 0", "API", "db.get(0)", E, RANGE.format(0)),
    Row("group number 231", "API", "db.get(231)", E, RANGE.format(231)),
    Row("group number -1", "API", "db.get(-1)", E, RANGE.format(-1)),
    Row("group number as text, out of range", "API", "db.get('0')", E, RANGE.format(0)),
    Row("group 'abc'", "API", "db.get('abc')", E, NO_SUCH.format("abc")),
    Row("group None", "API", "db.get(None)", T, "a space-group number, symbol or hall= is required"),
    Row("group 3.5", "API", "db.get(3.5)", T, "space-group number must be an integer, got 3.5"),
    Row("group True", "API", "db.get(True)", T, "space group must be a number or a symbol, got True"),
    Row("group as a list", "API", "db.get([225])", T, "space group must be a number or a symbol, got list"),
    Row("empty symbol", "API", "db.get('  ')", V, "empty space-group symbol"),
    Row("unknown H-M symbol", "API", "db.get('P 99')", E, NO_SUCH.format("P 99")),
    Row("unknown symbol near valid ones", "API", "db.get('Pnma3')", E, DID_YOU_MEAN),
    Row(
        "ambiguous symbol (Hall 'P 6 -2c' = No. 184; cctbx reads P -6 2 c = No. 190; gemmi none)",
        "API",
        "db.get('P 6 -2c')",
        E,
        AMBIGUOUS,
    ),
    Row(
        "Hall 'P 4 2' (No. 89) that gemmi and cctbx both read as H-M P 4_2 (No. 77)",
        "API",
        "db.get('P 4 2')",
        N,
        "P 4_2 (hall 351): the reading both oracles take",
        check="result.hall_number == 351",
    ),
    Row(
        "group and hall= together",
        "API",
        "db.get(225, hall=523)",
        V,
        "give either a group (number or symbol) or hall=, not both",
    ),
    Row(
        "hall= and hall_number= together",
        "API",
        "db.get(hall=526, hall_number=526)",
        T,
        "give hall= or hall_number= (the same key, spglib's name), not both",
    ),
    # ------------------------------------------------------------- hall numbers
    Row("hall_number 0", "API", "db.get(hall=0)", E, "hall_number must be in 1..530, got 0"),
    Row("hall_number 531", "API", "db.get(hall=531)", E, "hall_number must be in 1..530, got 531"),
    Row("hall_number as text", "API", "db.get(hall='5')", T, "hall_number must be an integer, got '5'"),
    Row("hall_number as float", "API", "db.get(hall=5.0)", T, "hall_number must be an integer, got 5.0"),
    # ------------------------------------------------------------- cut-off K
    Row("K negative", "API", "db.get(225, kmax=-1)", V, "kmax must be >= 1, got -1"),
    Row("K zero", "API", "db.get(225, kmax=0)", V, "kmax must be >= 1, got 0"),
    Row("K not an integer", "API", "db.get(225, kmax=2.5)", T, "kmax must be an integer, got 2.5"),
    Row("K as text", "API", "db.get(225, kmax='4')", T, "kmax must be an integer, got '4'"),
    Row("K larger than the artifact", "API", "db.get(225, kmax=9)", V, HINT9),
    Row(
        "K too large for an on-the-fly group",
        "API",
        "basisdb.basis_from_operations('x,y,z;-x,-y,-z', kmax=128)",
        V,
        "kmax must be an integer in 1..127, got 128",
    ),
    Row(
        "K whose build would not fit in memory",
        "API",
        "basisdb.basis_from_operations('x,y,z;-x,-y,-z', kmax=127)",
        MemoryError,
        MEMORY,
    ),
    # ------------------------------------------------------------- coordinates
    Row(
        "coordinates with NaN",
        "API",
        "b.evaluate(np.array([[np.nan, 0, 0]]))",
        V,
        "coordinates contain NaN or inf",
    ),
    Row(
        "coordinates with inf",
        "API",
        "b.evaluate(np.array([[0.5, np.inf, 0]]))",
        V,
        "coordinates contain NaN or inf",
    ),
    Row(
        "coordinates of shape (N, 2)",
        "API",
        "b.evaluate(np.zeros((4, 2)))",
        V,
        "coordinates must have shape (N, 3), got (4, 2)",
    ),
    Row(
        "coordinates of shape (N, 3, 3)",
        "API",
        "b.evaluate(np.zeros((2, 3, 3)))",
        V,
        "coordinates must have shape (N, 3), got (2, 3, 3)",
    ),
    Row("scalar coordinate", "API", "b.evaluate(0.5)", V, "coordinates must have shape (N, 3), got ()"),
    Row("empty list", "API", "b.evaluate([])", V, "coordinates must have shape (N, 3), got (0,)"),
    Row(
        "coordinates as strings",
        "API",
        "b.evaluate([['0.1', '0.2', '0.3']])",
        T,
        "coordinates must be a real numeric array, got dtype <U3",
    ),
    Row(
        "coordinates of dtype object",
        "API",
        "b.evaluate(np.array([[0, 0, 0]], dtype=object))",
        T,
        "coordinates must be a real numeric array, got dtype object",
    ),
    Row(
        "complex coordinates",
        "API",
        "b.evaluate(np.zeros((2, 3), complex))",
        T,
        "coordinates must be a real numeric array, got dtype complex128",
    ),
    Row(
        "boolean coordinates",
        "API",
        "b.evaluate(np.ones((2, 3), bool))",
        T,
        "coordinates must be a real numeric array, got dtype bool",
    ),
    Row(
        "empty (0, 3) coordinates: valid, not an error",
        "API",
        "b.evaluate(np.zeros((0, 3)))",
        None,
        "returns an empty (0, n_basis) array: here shape (0, 5), float64",
        check="result.shape == (0, 5) and result.dtype == np.float64",
    ),
    # ------------------------------------------------------------- operation sets that are not groups
    Row(
        "operations not closed",
        "API",
        "basisdb.basis_from_operations(['x,y,z', '-x,-y,z', '-x,y,-z'], kmax=2)",
        G,
        NOT_CLOSED,
    ),
    Row(
        "identity missing",
        "API",
        "basisdb.basis_from_operations(['-x,-y,-z'], kmax=2)",
        G,
        "the identity x,y,z is missing",
    ),
    Row(
        "inverse missing",
        "API",
        "basisdb.basis_from_operations(['x,y,z', 'y,z,x'], kmax=2)",
        G,
        "the inverse of y,z,x is missing",
    ),
    Row(
        "duplicate modulo lattice translations",
        "API",
        "basisdb.basis_from_operations(['x,y,z', 'x,y,z+1'], kmax=2)",
        G,
        "operations 0 and 1 are the same modulo lattice translations",
    ),
    Row(
        "rotation not unimodular",
        "API",
        "basisdb.basis_from_operations(['x,y,z', '2x,y,z'], kmax=2)",
        G,
        "operation 1 has det(R) = 2; rotations must be unimodular (det = +-1)",
    ),
    Row(
        "translation not a multiple of 1/24",
        "API",
        "basisdb.basis_from_operations(['x,y,z', '-x,-y,z+1/5'], kmax=2)",
        V,
        "translation in '-x,-y,z+1/5' = 0.2 is not a multiple of 1/24",
    ),
    Row("no operations", "API", "basisdb.basis_from_operations([], kmax=2)", V, "no operations given"),
    Row(
        "malformed operation",
        "API",
        "basisdb.basis_from_operations(['x,y'], kmax=2)",
        V,
        "operation 'x,y' must have three comma-separated components",
    ),
    # ------------------------------------------------------------- crystal structures (featurize)
    Row(
        "singular lattice (all zero)",
        "API",
        "basisdb.featurize((np.zeros((3, 3)), [[0, 0, 0]], [11]), kmax=2)",
        V,
        "the lattice is singular (volume 0 A^3 for vector lengths [0.0, 0.0, 0.0])",
    ),
    Row(
        "singular lattice (coplanar vectors)",
        "API",
        "basisdb.featurize(([[4, 0, 0], [0, 4, 0], [8, 8, 0]], [[0, 0, 0]], [11]), kmax=2)",
        V,
        "the lattice is singular (volume 0 A^3 for vector lengths [4.0, 4.0, 11.313708])",
    ),
    Row(
        "left-handed lattice: accepted, the same crystal",
        "API",
        "basisdb.featurize((np.diag([4.0, 4.0, -4.0]), [[0, 0, 0], [0.5, 0.5, 0.5]], [55, 17]), kmax=2)",
        None,
        "same features as the right-handed cell (CsCl: P m -3 m, hall 517, 2 atoms x 10 functions)",
        check="result.hall_number == 517 and result.features.shape == (2, 10) and np.array_equal(result.features, "
        "basisdb.featurize((np.eye(3) * 4, [[0, 0, 0], [0.5, 0.5, 0.5]], [55, 17]), kmax=2).features)",
    ),
    Row(
        "overlapping atoms",
        "API",
        "basisdb.featurize((np.eye(3) * 4, [[0, 0, 0], [0.001, 0, 0]], [11, 17]), kmax=2)",
        V,
        "atoms 0 and 1 are 0.004 A apart (periodic images included), closer than min_distance=0.1 A: overlapping or duplicated atoms",
    ),
    Row(
        "duplicated atom",
        "API",
        "basisdb.featurize((np.eye(3) * 4, [[0, 0, 0], [1, 0, 0]], [11, 11]), kmax=2)",
        V,
        "atoms 0 and 1 are 0 A apart (periodic images included), closer than min_distance=0.1 A: overlapping or duplicated atoms",
    ),
    Row(
        "structure without atoms",
        "API",
        "basisdb.featurize((np.eye(3) * 4, np.zeros((0, 3)), []), kmax=2)",
        V,
        "the structure has no atoms",
    ),
    Row(
        "CIF with no atoms",
        "API",
        "basisdb.featurize('data_x\\n_cell_length_a 4\\n_cell_length_b 4\\n_cell_length_c 4\\n', kmax=2)",
        CIFError,
        "<CIF text>: the CIF has no atoms (no _atom_site_fract_x loop)",
    ),
    Row(
        "atom position NaN",
        "API",
        "basisdb.featurize((np.eye(3) * 4, [[np.nan, 0, 0]], [11]), kmax=2)",
        V,
        "the positions contain NaN or inf",
    ),
    Row(
        "unknown element",
        "API",
        "basisdb.featurize((np.eye(3) * 4, [[0, 0, 0]], ['Xx']), kmax=2)",
        V,
        "unknown element symbol 'Xx'",
    ),
    Row(
        "deuterium and tritium: accepted, hydrogen",
        "API",
        "basisdb.featurize((np.eye(3) * 4.06, [[0.15, 0.15, 0.15], [0.5, 0.5, 0.5]], ['D', 'Br']), kmax=2)",
        None,
        "D and T are hydrogen (Z = 1) in every route",
        check="result.numbers.tolist() == [1, 35]",
    ),
    Row(
        "dummy species 'X': accepted, species 0",
        "API",
        "basisdb.featurize((np.eye(3) * 4, [[0, 0, 0], [0.5, 0.5, 0.5]], ['X', 'Na']), kmax=2)",
        None,
        "dummy or vacancy species (ASE 'X', pymatgen DummySpecies, CIF 'X') are species 0 in every route",
        check="result.numbers.tolist() == [0, 11] and result.hall_number == 517",
    ),
    Row(
        "on_mismatch not 'warn', 'raise' or 'ignore'",
        "API",
        "basisdb.featurize((np.eye(3) * 4, [[0, 0, 0]], [11]), kmax=2, on_mismatch='loud')",
        V,
        "on_mismatch must be 'warn', 'raise' or 'ignore', got 'loud'",
    ),
    # ------------------------------------------------------------- CIF files (read with gemmi)
    Row(
        "CIF operation loop that is not a group",
        "API",
        "basisdb.featurize('{cif:not_group}', kmax=2)",
        G,
        "{cif:not_group}: the operations of _symmetry_equiv_pos_as_xyz do not form a group: " + NOT_CLOSED,
    ),
    Row(
        "CIF translation far from a multiple of 1/24",
        "API",
        "basisdb.featurize('{cif:fifth}', kmax=2)",
        CIFError,
        "{cif:fifth}: _symmetry_equiv_pos_as_xyz value '-x,-y,z+0.2': translation 0.2 is not within 0.005 of a multiple of 1/24",
    ),
    Row(
        "CIF translations 0.333, 0.667: accepted, snapped to 1/3, 2/3 (SnappedTranslationWarning)",
        "API",
        "basisdb.featurize('{cif:thirds}', kmax=2)",
        None,
        "P 3_1 (hall 431), with a SnappedTranslationWarning",
        check="result.hall_number == 431",
    ),
    Row(
        "CIF H-M symbol that cannot be interpreted",
        "API",
        "basisdb.featurize('{cif:bad_hm}', kmax=2)",
        CIFError,
        "{cif:bad_hm}: cannot interpret the space-group symbol _symmetry_space_group_name_H-M 'Q 9': "
        + NO_SUCH.format("Q 9"),
    ),
    Row(
        "CIF Hall symbol that cannot be read",
        "API",
        "basisdb.featurize('{cif:bad_hall}', kmax=2)",
        CIFError,
        "{cif:bad_hall}: cannot read the Hall symbol _space_group_name_Hall '-P 4n 2q': unknown symbol: q",
    ),
    Row(
        "CIF space-group number out of range",
        "API",
        "basisdb.featurize('{cif:bad_number}', kmax=2)",
        CIFError,
        "{cif:bad_number}: _space_group_IT_number '231' is not a space-group number 1..230",
    ),
    Row(
        "magnetic CIF without its operations",
        "API",
        "basisdb.featurize('{cif:magnetic_name}', kmax=2)",
        CIFError,
        "{cif:magnetic_name}: the magnetic space group is given only as _space_group_magn.name_BNS \"P4_2'/mnm'\", without its "
        "operations (_space_group_symop_magn_operation.xyz); the atoms cannot be expanded",
    ),
    Row(
        "incommensurate (superspace) CIF",
        "API",
        "basisdb.featurize('{cif:superspace}', kmax=2)",
        CIFError,
        "{cif:superspace}: an incommensurate (superspace) structure (_cell_modulation_dimension); featurize needs a periodic crystal",
    ),
    Row(
        "CIF with Cartesian coordinates only",
        "API",
        "basisdb.featurize('{cif:cartesian}', kmax=2)",
        CIFError,
        "{cif:cartesian}: the atoms have only Cartesian coordinates (_atom_site_Cartn_x); fractional _atom_site_fract_x/y/z are needed",
    ),
    Row(
        "CIF with a partial occupancy",
        "API",
        "basisdb.featurize('{cif:partial}', kmax=2)",
        CIFError,
        "{cif:partial}: partial occupancies (a disordered structure) are not supported (Ti1: occupancy 0.5)",
    ),
    Row(
        "CIF with an unknown element",
        "API",
        "basisdb.featurize('{cif:unknown}', kmax=2)",
        CIFError,
        "{cif:unknown}: Ow1: unknown element symbol 'Ow1'",
    ),
    Row(
        "CIF site listed twice (two atoms at one place, as in every route)",
        "API",
        "basisdb.featurize('{cif:twice}', kmax=2)",
        V,
        "atoms 0 and 1 are 0 A apart (periodic images included), closer than min_distance=0.1 A: overlapping or duplicated atoms",
    ),
    Row(
        "CIF symmetry images 0.06 A apart: accepted, merged (CIFWarning)",
        "API",
        "basisdb.featurize('{cif:merge}', kmax=2, on_mismatch='ignore')",
        None,
        "one atom: images of one site closer than 0.1 A are merged, and counted",
        check="result.n_atoms == 1 and result.merged_images == 1",
    ),
    Row(
        "CIF type symbol D: accepted, hydrogen",
        "API",
        "basisdb.featurize('{cif:deuterium}', kmax=2)",
        None,
        "D is hydrogen (Z = 1)",
        check="sorted(result.numbers.tolist()) == [1, 35]",
    ),
    Row(
        "declared and detected groups differ, on_mismatch='raise'",
        "API",
        "basisdb.featurize('{cif:p4mmm}', kmax=2, symprec=1e-3, on_mismatch='raise')",
        SymmetryMismatchError,
        "the input declares space group No. 123 (_symmetry_space_group_name_H-M 'P 4/m m m'), but spglib detects I4/mmm (No. 139) "
        "at symprec=0.001 A; the features are those of the detected group (a looser symprec may find the declared one)",
    ),
    Row(
        "CIF reader other than gemmi",
        "API",
        "basisdb.read_cif('{cif:p4mmm}', reader='ase')",
        V,
        "reader must be None or 'gemmi', got 'ase' (gemmi is the only CIF reader; for ASE's or pymatgen's reading pass "
        "their Atoms or Structure instead)",
    ),
    # ------------------------------------------------------------- files
    Row("path that is not HDF5", "API", "basisdb.open('{notes}')", A, "{notes}: not an HDF5 file"),
    Row("empty file", "API", "basisdb.open('{empty}')", A, "{empty}: not an HDF5 file"),
    Row("truncated artifact", "API", "basisdb.open('{cut}')", A, TRUNCATED),
    Row("artifact from a newer format version", "API", "basisdb.open('{newer}')", A, NEWER),
    Row(
        "HDF5 file that is not an artifact",
        "API",
        "basisdb.open('{foreign}')",
        A,
        "{foreign}: missing root attribute 'format_version'; not a basisdb artifact",
    ),
    Row("path that does not exist", "API", "basisdb.open('{missing}')", A, "{missing}: no such file"),
    Row(
        "path that is a directory",
        "API",
        "basisdb.open('{dir}')",
        A,
        "{dir}: is a directory, not an artifact",
    ),
    Row(
        "artifact lacking the setting (hall 526)",
        "API",
        "small.get(hall=526)",
        E,
        "hall_number 526 is not in {small}; rebuild it with that setting",
    ),
    Row(
        "artifact lacking the space group (227)",
        "API",
        "small.get(227)",
        E,
        "space group 227 is not in {small}",
    ),
    Row(
        "K larger than a small artifact",
        "API",
        "small.get(1, kmax=3)",
        V,
        "kmax=3 exceeds this artifact's kmax=2; build a larger one with `basisdb build --kmax 3 -o PATH` and open it with basisdb.open(PATH)",
    ),
    # ------------------------------------------------------------- the command line
    Row("group number 0", "CLI", "basisdb info 0", None, RANGE.format(0), exit=1),
    Row("group number 231", "CLI", "basisdb info 231", None, RANGE.format(231), exit=1),
    Row("group number -1 (looks like an option)", "CLI", "basisdb info -1", None, RANGE.format(-1), exit=2),
    Row(
        "Hall symbol starting with '-' (looks like an option)",
        "CLI",
        "basisdb info '-P 2ybc'",
        None,
        "No such option: -P (a Hall symbol that starts with '-' goes after --: basisdb info -- '-P 2ybc')",
        exit=2,
    ),
    Row("group 'abc'", "CLI", "basisdb info abc", None, NO_SUCH.format("abc"), exit=1),
    Row("group 3.5", "CLI", "basisdb info 3.5", None, NO_SUCH.format("3.5"), exit=1),
    Row("unknown symbol near valid ones", "CLI", "basisdb info Pnma3", None, DID_YOU_MEAN, exit=1),
    Row("ambiguous symbol", "CLI", "basisdb info 'P 6 -2c'", None, AMBIGUOUS, exit=1),
    Row("no group", "CLI", "basisdb info", None, "give a GROUP (number or symbol) or --hall N", exit=2),
    Row(
        "hall_number 531",
        "CLI",
        "basisdb info --hall 531",
        None,
        "hall_number must be in 1..530, got 531",
        exit=1,
    ),
    Row(
        "hall_number not a number",
        "CLI",
        "basisdb info --hall abc",
        None,
        "Invalid value for '--hall': 'abc' is not a valid integer.",
        exit=2,
    ),
    Row("K zero", "CLI", "basisdb show 225 --kmax 0", None, "kmax must be >= 1, got 0", exit=1),
    Row("K negative", "CLI", "basisdb show 225 --kmax -1", None, "kmax must be >= 1, got -1", exit=1),
    Row(
        "K not an integer",
        "CLI",
        "basisdb show 225 --kmax 2.5",
        None,
        "Invalid value for '--kmax' / '-k': '2.5' is not a valid integer.",
        exit=2,
    ),
    Row("K larger than the artifact", "CLI", "basisdb show 225 --kmax 99", None, HINT99, exit=1),
    Row(
        "K whose build would not fit in memory",
        "CLI",
        "basisdb show --ops 'x,y,z;-x,-y,-z' --kmax 127",
        None,
        MEMORY,
        exit=1,
    ),
    Row(
        "operations not closed",
        "CLI",
        "basisdb show --ops 'x,y,z;-x,-y,z;-x,y,-z' --kmax 2",
        None,
        NOT_CLOSED,
        exit=1,
    ),
    Row(
        "build K zero", "CLI", "basisdb build --kmax 0 -q -o out.h5", None, "kmax must be >= 1, got 0", exit=1
    ),
    Row(
        "build K beyond int8",
        "CLI",
        "basisdb build --kmax 128 -q -o out.h5",
        None,
        "kmax must be <= 127 (frequencies are stored as int8), got 128",
        exit=1,
    ),
    Row("path that is not HDF5", "CLI", "basisdb verify {notes}", None, "{notes}: not an HDF5 file", exit=1),
    Row("truncated artifact", "CLI", "basisdb verify {cut}", None, TRUNCATED, exit=1),
    Row("artifact from a newer format version", "CLI", "basisdb verify {newer}", None, NEWER, exit=1),
    Row(
        "path that does not exist",
        "CLI",
        "basisdb info 225 --db {missing}",
        None,
        "{missing}: no such file",
        exit=1,
    ),
    Row(
        "artifact lacking the setting",
        "CLI",
        "basisdb info --hall 526 --db {small}",
        None,
        "hall_number 526 is not in {small}; rebuild it with that setting",
        exit=1,
    ),
]


# --------------------------------------------------------------------------- rendering the doc table
def _code(text: str) -> str:
    """A markdown code span that survives backticks and table pipes."""
    text = text.replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def render_table() -> str:
    lines = [
        "| # | bad input | where | call | error | message (CLI: after `basisdb: error: `) | exit |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(ROWS, 1):
        if r.where == "CLI":
            err = "one line on stderr"
        elif r.error is None:
            err = "*(no error)*"
        else:
            err = f"`{r.error.__name__}`"
        shown = r.message if (r.where == "API" and r.error is None) else _code(r.message)
        lines.append(
            f"| {i} | {r.what} | {r.where} | {_code(r.call)} | {err} | {shown} | {r.exit if r.where == 'CLI' else ''} |"
        )
    legend = ["", "Names and placeholders used in the table:", ""]
    legend += [f"- `{k}`: {v}" for k, v in PLACEHOLDERS.items()]
    legend += ["", "`...` stands for text that comes from HDF5 or from this machine's memory size.", ""]
    counts = f"{len(ROWS)} rows: {sum(r.where == 'API' for r in ROWS)} API, {sum(r.where == 'CLI' for r in ROWS)} CLI."
    return "\n".join([counts, ""] + lines + legend)


def write_doc() -> None:
    text = DOC.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{render_table()}\n{END}{tail}")


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    import h5py

    from basisdb.builder import build_database

    d = tmp_path_factory.mktemp("badinput")
    small = d / "small.h5"
    build_database(small, kmax=SMALL_KMAX, halls=SMALL_HALLS, jobs=1)
    data = small.read_bytes()
    (d / "notes.txt").write_text("not an HDF5 file\n" * 50)
    (d / "empty.h5").write_bytes(b"")
    (d / "cut.h5").write_bytes(data[: len(data) // 2])
    (d / "newer.h5").write_bytes(data)
    with h5py.File(d / "newer.h5", "r+") as f:
        f.attrs["format_version"] = np.int32(3)
    with h5py.File(d / "foreign.h5", "w") as f:
        f["x"] = np.arange(3)
    (d / "adir").mkdir()
    cifs = {}
    for name, text in CIF_TEXT.items():
        (d / f"{name}.cif").write_text(text)
        cifs["{cif:" + name + "}"] = str(d / f"{name}.cif")
    return {
        **cifs,
        "{small}": str(small),
        "{notes}": str(d / "notes.txt"),
        "{empty}": str(d / "empty.h5"),
        "{cut}": str(d / "cut.h5"),
        "{newer}": str(d / "newer.h5"),
        "{foreign}": str(d / "foreign.h5"),
        "{missing}": str(d / "missing.h5"),
        "{dir}": str(d / "adir"),
    }


@pytest.fixture(scope="module")
def namespace(files, shipped):
    db = shipped
    small = basisdb.open(files["{small}"])
    yield {"db": db, "small": small, "b": db.get(225, kmax=2), "basisdb": basisdb, "np": np}
    small.close()
    db.close()


def _fill(text: str, files: dict[str, str]) -> str:
    for key, value in files.items():
        text = text.replace(key, value)
    return text


def _pattern(message: str, files: dict[str, str]) -> re.Pattern:
    parts = [re.escape(_fill(p, files)) for p in message.split("...")]
    return re.compile(".*".join(parts), re.S)


def _memory_refusal_applies() -> bool:
    from basisdb.builder import estimate_peak_memory

    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return False
    return estimate_peak_memory(127, 1) > 0.5 * ram


def _ids(rows):
    return [f"{r.where}-{i}-{r.what}" for i, r in enumerate(rows, 1)]


# --------------------------------------------------------------------------- tests
def test_catalogue_size():
    assert len(ROWS) >= 25
    assert {r.where for r in ROWS} == {"API", "CLI"}
    assert len({(r.where, r.call) for r in ROWS}) == len(ROWS), "duplicate rows"


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r.where == "API"], ids=_ids([r for r in ROWS if r.where == "API"])
)
def test_api_row(row, namespace, files):
    if row.error is MemoryError and not _memory_refusal_applies():
        pytest.skip("this machine has enough memory for the request")
    code = _fill(row.call, files)
    if row.error is None:
        result = eval(code, dict(namespace))
        assert eval(row.check, {"result": result, "np": np, "basisdb": basisdb}), row.message
        return
    with pytest.raises(Exception) as info:
        eval(code, dict(namespace))
    assert type(info.value) is row.error, f"{type(info.value).__name__}: {info.value}"
    assert _pattern(row.message, files).fullmatch(str(info.value)), str(info.value)


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r.where == "CLI"], ids=_ids([r for r in ROWS if r.where == "CLI"])
)
def test_cli_row(row, files, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from basisdb.cli import cli

    if "--kmax 127" in row.call and not _memory_refusal_applies():
        pytest.skip("this machine has enough memory for the request")
    monkeypatch.delenv("BASISDB_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(_fill(row.call, files))
    assert argv[0] == "basisdb"
    result = CliRunner().invoke(cli, argv[1:], prog_name="basisdb", catch_exceptions=True)
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert result.exit_code == row.exit, (result.exit_code, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, lines
    prefix = "basisdb: error: "
    assert lines[0].startswith(prefix), lines[0]
    assert _pattern(row.message, files).fullmatch(lines[0][len(prefix) :]), lines[0]
    assert list(tmp_path.iterdir()) == [], "a failed command left files behind"


def test_doc_table_in_sync():
    text = DOC.read_text()
    assert BEGIN in text and END in text, f"{DOC} lacks the generated-table markers"
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert table == render_table().strip(), "docs/BAD_INPUT.md is stale: run `make bad-input-doc`"


if __name__ == "__main__":  # python tests/structures/test_bad_input.py --write
    if sys.argv[1:] == ["--write"]:
        write_doc()
        print(f"wrote {DOC} ({len(ROWS)} rows)")
    else:
        print(render_table())
