"""Print every benchmark result in benchmarks/results/*.json as Markdown tables.

    python benchmarks/report.py [results folder or files ...]

One table per JSON file (a list of records, or ``{"records": [...]}``), under a heading with
the command that regenerates it. Columns are the records' own keys, so any benchmark fits:
``shapes`` dicts are written compactly, times in µs/ms/s, and where a torch record of the same
benchmark (name, dtype, shapes) exists, a "vs torch" column gives time / torch time. The device
is printed once above the table when all records share it. README figures are pasted from this.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
LEADING = ("name", "library", "version", "detail", "dtype", "shapes", "step", "repeats", "median_seconds",
           "min_seconds")
HIDDEN = {"device", "error", "median_us"}


def load_records(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data = data.get("records", [data])
    return [r for r in data if isinstance(r, dict)]


def _seconds(value: float) -> str:
    if value < 1e-3:
        return f"{value * 1e6:.1f} µs"
    if value < 1:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.2f} s"


def _cell(key: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(k, v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value) if all(isinstance(v, (int, float)) for v in value) \
            else ", ".join(map(str, value))
    if isinstance(value, float):
        if key.endswith("seconds"):
            return _seconds(value)
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _baseline_key(record: dict) -> tuple:
    return (record.get("name"), record.get("dtype"), json.dumps(record.get("shapes"), sort_keys=True))


def table(records: list[dict]) -> str:
    """A Markdown table of ``records`` (failed runs listed under it)."""
    ok = [r for r in records if "error" not in r]
    lines = []
    if ok:
        keys = [k for k in LEADING if any(k in r for r in ok)]
        for record in ok:
            for key, value in record.items():
                if key not in keys and key not in HIDDEN and not isinstance(value, (list, dict)) \
                        or (key not in keys and key not in HIDDEN and key == "shapes"):
                    keys.append(key)
        torch = {_baseline_key(r): r["median_seconds"] for r in ok
                 if r.get("library") == "torch" and isinstance(r.get("median_seconds"), (int, float))}
        with_ratio = bool(torch) and any(r.get("library") != "torch" and _baseline_key(r) in torch for r in ok)
        headers = [k.replace("_seconds", "").replace("_", " ") for k in keys] + (["vs torch"] if with_ratio else [])
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join("---" for _ in headers) + "|")
        for record in ok:
            row = [_cell(k, record.get(k)) for k in keys]
            if with_ratio:
                base = torch.get(_baseline_key(record))
                median = record.get("median_seconds")
                row.append(f"{median / base:.2f}x" if base and isinstance(median, (int, float)) else "")
            lines.append("| " + " | ".join(row) + " |")
    for record in records:
        if "error" in record:
            last = str(record["error"]).strip().splitlines()[-1:] or [""]
            lines.append(f"\n{record.get('name')} / {record.get('library')}: failed ({last[0]})")
    return "\n".join(lines)


def report(paths: list[Path]) -> str:
    out = []
    for path in paths:
        records = load_records(path)
        script = ROOT / "benchmarks" / f"{path.stem}.py"
        out.append(f"### {path.stem}\n")
        if script.exists():
            out.append(f"`python benchmarks/{script.name}` → `benchmarks/results/{path.name}`\n")
        devices = {r.get("device") for r in records if "error" not in r}
        if len(devices) == 1 and None not in devices:
            out.append(f"Device: {devices.pop()}\n")
        elif devices - {None}:
            out.append("Devices: " + "; ".join(sorted(d for d in devices if d)) + "\n")
        out.append(table(records) + "\n")
    return "\n".join(out)


def main(argv: list[str]) -> None:
    targets = [Path(a) for a in argv] or [RESULTS]
    paths = []
    for target in targets:
        paths.extend(sorted(target.glob("*.json")) if target.is_dir() else [target])
    print(report(paths))


if __name__ == "__main__":
    main(sys.argv[1:])
