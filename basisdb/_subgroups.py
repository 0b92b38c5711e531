"""Settings whose operations are a subset of a setting's, in the same coordinate frame.

A crystal of space group G written in G's setting (fractional coordinates in G's
basis and origin) is, unchanged, also a crystal of every group H whose operations
(R, t mod 1) all belong to G: its coordinates can be routed through H's basis as they
are.  ``subgroup_settings`` lists those H among the 530 spglib settings, exactly
(integer rotations, translation numerators over the common denominator 24).  This is
what subgroup augmentation needs: present a training crystal of G in a random H.

Only subgroups that are themselves one of spglib's settings *in G's frame* are found
(same basis and origin, translation lattice of H inside G's); a subgroup that needs
another basis or origin (e.g. a translationengleiche subgroup with a shifted origin,
or a klassengleiche one with a larger cell) is not listed.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

__all__ = ["subgroup_settings", "operation_keys"]

_LOCK = threading.Lock()
_CACHE: weakref.WeakKeyDictionary[object, dict[int, frozenset]] = weakref.WeakKeyDictionary()


def operation_keys(rotations: np.ndarray, translations: np.ndarray, denominator: int) -> frozenset:
    """The operations as a set of hashable keys: R (9 ints) and t's numerators mod ``denominator``."""
    rot = np.asarray(rotations, dtype=np.int64).reshape(-1, 9)
    tra = np.mod(np.asarray(translations, dtype=np.int64).reshape(-1, 3), denominator)
    return frozenset(tuple(r) + tuple(t) for r, t in zip(rot.tolist(), tra.tolist()))


def _all_keys(db) -> dict[int, frozenset]:
    with _LOCK:
        keys = _CACHE.get(db)
    if keys is None:
        keys = {}
        for s in db.settings():
            b = db.get(hall=s.hall_number, kmax=1)
            keys[s.hall_number] = operation_keys(b.rotations, b.translations, b.denominator)
        with _LOCK:
            _CACHE[db] = keys
    return keys


def subgroup_settings(db, hall_number: int) -> list[int]:
    """Hall numbers of the settings H with ops(H) a subset of ops(G), G = ``hall_number``, in G's frame.

    db: a ``Database`` (``basisdb.open()``).  Operations are compared exactly as
    (R, t mod 1) over the artifact's denominator, centring translations included.
    The result is sorted and always contains 1 (P 1) and ``hall_number`` itself (and any
    setting with the same operation set, e.g. 322/324 of group 68).  The first call
    reads the operations of all 530 settings (about 2 s); later calls are cached per db.
    """
    hall = db.get_setting(hall=int(hall_number)).hall_number
    keys = _all_keys(db)
    mine = keys[hall]
    return sorted(h for h, k in keys.items() if k <= mine)
