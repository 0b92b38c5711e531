"""Predict with a trained reference model from a folder of CIF files.

    python examples/cft/predict.py --checkpoint runs/cft/checkpoints/carbon_random_cft.pt --cifs FOLDER [--output predictions.csv]

The checkpoint (written by train.py) carries the model kind, the config (kmax, symprec,
network sizes) and the input/target normalisation, so nothing is retrained.  Every
``*.cif`` in FOLDER (sorted by name) is read and featurised with the checkpoint's kmax and
symprec; a file that cannot be read or featurised is recorded with its error and skipped.
Writes a CSV with one row per file: file, prediction, space_group, hall_number, error.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from examples.cft.data import featurize_text  # noqa: E402
from examples.cft.train import CHECKPOINT_FORMAT, build_model, pad_records, seed_everything, tensor_batch  # noqa: E402


class Predictor:
    """A trained model restored from a checkpoint, with its normalisation."""

    def __init__(self, checkpoint: str | Path):
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"{checkpoint}: not a {CHECKPOINT_FORMAT} checkpoint (format {state.get('format')!r})"
            )
        if state.get("model") is None:
            raise ValueError(f"{checkpoint}: holds no trained weights (no finished epoch)")
        self.kind, self.cfg = state["kind"], state["config"]
        self.kmax, self.symprec = int(self.cfg["kmax"]), float(self.cfg["symprec"])
        self.lat_mean, self.lat_std = np.asarray(state["lat_mean"]), np.asarray(state["lat_std"])
        self.y_mean, self.y_std = float(state["y_mean"]), float(state["y_std"])
        seed_everything(int(state.get("seed", 0)))
        self.model = build_model(self.kind, self.cfg)
        self.model.load_state_dict(state["model"])
        self.model.eval()

    def featurize(self, cif_text: str) -> dict:
        return featurize_text(cif_text, self.kmax, self.symprec)

    def predict_records(self, records: list[dict], batch: int = 256) -> np.ndarray:
        if not records:
            return np.zeros(0)
        padded = pad_records(records, self.kind)
        out = []
        with torch.no_grad():
            for lo in range(0, len(records), batch):
                sel = np.arange(lo, min(lo + batch, len(records)))
                out.append(
                    self.model(tensor_batch(padded, sel, self.lat_mean, self.lat_std)).numpy() * self.y_std
                    + self.y_mean
                )
        return np.concatenate(out).astype(np.float64)


def predict_folder(checkpoint: str | Path, folder: str | Path) -> list[dict]:
    """One dict per ``*.cif`` in ``folder``: file, prediction (None on failure), space_group, hall_number, error."""
    pred = Predictor(checkpoint)
    rows, records, ok = [], [], []
    for path in sorted(Path(folder).glob("*.cif")):
        row = {"file": path.name, "prediction": None, "space_group": None, "hall_number": None, "error": ""}
        try:
            rec = pred.featurize(path.read_text(errors="replace"))
            row["space_group"], row["hall_number"] = rec["number"], rec["hall_number"]
            records.append(rec)
            ok.append(len(rows))
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        rows.append(row)
    for i, p in zip(ok, pred.predict_records(records)):
        rows[i]["prediction"] = float(p)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--checkpoint",
        required=True,
        help="a checkpoint written by train.py (checkpoints/<experiment>_<kind>.pt)",
    )
    ap.add_argument("--cifs", required=True, help="folder of .cif files")
    ap.add_argument("--output", default="-", help="CSV file to write (default: standard output)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not Path(args.cifs).is_dir():
        ap.error(f"--cifs {args.cifs}: not a folder")
    rows = predict_folder(args.checkpoint, args.cifs)
    with contextlib.ExitStack() as stack:  # closes the output file, never sys.stdout
        fh = sys.stdout if args.output == "-" else stack.enter_context(open(args.output, "w", newline=""))
        w = csv.DictWriter(fh, fieldnames=["file", "prediction", "space_group", "hall_number", "error"])
        w.writeheader()
        w.writerows(rows)
    failed = sum(bool(r["error"]) for r in rows)
    print(f"{len(rows) - failed} predicted, {failed} failed (see the error column)", file=sys.stderr)
    return 0 if rows and failed < len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
