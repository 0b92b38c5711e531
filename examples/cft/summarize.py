"""Turn a training report (report.json) into the Markdown tables of docs/MODEL.md.

python examples/cft/summarize.py runs/cft/report.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(v, digits=4):
    return "–" if v is None else f"{v:.{digits}f}"


def summarize(report: dict) -> str:
    lines = []
    for name, exp in report["experiments"].items():
        splits = [s for s in exp["split_sizes"] if s != "train"]
        lines.append(f"### {name}: {exp['dataset']} / {exp['target']} (sizes {exp['split_sizes']})\n")
        lines.append(
            "| model | "
            + " | ".join(f"MAE {s}" for s in splits)
            + " | s / epoch | inference (structures / s, CPU) |"
        )
        lines.append("|---" * (len(splits) + 3) + "|")
        for kind, m in exp["models"].items():
            row = [_f(m["mae"].get(s)) for s in splits]
            thr = m.get("inference_structures_per_second_cpu")
            lines.append(
                f"| {kind} | "
                + " | ".join(row)
                + f" | {_f(m.get('seconds_per_epoch'), 2)} | {'–' if thr is None else f'{thr:,.0f}'} |"
            )
        if exp.get("holdout_groups"):
            per = exp["mae_per_space_group"]
            lines.append("\nMAE per held-out space group:\n")
            lines.append("| space group | " + " | ".join(k for k in ("cft", "plain")) + " |")
            lines.append("|---|---|---|")
            for g in exp["holdout_groups"]:
                if str(g) in per:
                    lines.append(
                        f"| {g} | " + " | ".join(_f(per[str(g)].get(k)) for k in ("cft", "plain")) + " |"
                    )
        if "invariance" in exp:
            inv = exp["invariance"]
            kinds = list(next(iter(inv["max_abs_change"].values())))
            lines.append(
                f"\nMax |change of prediction| over {inv['structures']} test crystals ({exp['target']} units):\n"
            )
            lines.append("| model | " + " | ".join(kinds) + " |")
            lines.append("|---" * (len(kinds) + 1) + "|")
            for kind, ch in inv["max_abs_change"].items():
                lines.append(f"| {kind} | " + " | ".join(f"{ch[k]:.1e}" for k in kinds) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/cft/report.json")
    print(summarize(json.loads(path.read_text())))
