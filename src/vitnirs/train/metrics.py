"""Metric logging of a pretraining run: running means between log lines, ``metrics.jsonl``,
optional TensorBoard (rank 0 only)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vitnirs.errors import VitnirsError


class Window:
    """Running means of the loss terms and throughput between two metric lines."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.n = self.spectra = self.total_spectra = 0
        self.waited = 0.0
        self.started = self.first = time.perf_counter()
        self.extra: dict[str, Any] = {}

    def add(self, terms: dict[str, float], *, spectra: int, waited: float) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1
        self.spectra += spectra
        self.total_spectra += spectra
        self.waited += waited

    def rate(self) -> float:
        return self.spectra / max(time.perf_counter() - self.started, 1e-9)

    def overall_rate(self) -> float:
        return self.total_spectra / max(time.perf_counter() - self.first, 1e-9)

    def flush(self) -> dict[str, Any]:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        out = {k: v / max(self.n, 1) for k, v in self.sums.items()}
        out.update(
            spectra_per_s=self.spectra / elapsed, data_wait_fraction=self.waited / elapsed, **self.extra
        )
        self.sums, self.n, self.spectra, self.waited, self.extra = {}, 0, 0, 0.0, {}
        self.started = time.perf_counter()
        return out


class MetricsLogger:
    """``RUN_DIR/metrics.jsonl`` (one JSON object per line) and optional TensorBoard, rank 0 only.

    On resume, lines past the resumed step (written by the interrupted run) are dropped, so the
    file reads as one run.
    """

    def __init__(self, run_dir: Path, start: int, *, enabled: bool, tensorboard: bool):
        self.path, self.enabled, self.writer = run_dir / "metrics.jsonl", enabled, None
        if not enabled:
            return
        if self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            kept = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= start]
            self.path.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise VitnirsError("training.tensorboard is on but tensorboard is not installed") from None
            self.writer = SummaryWriter(run_dir / "tensorboard")

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        row = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.writer.add_scalar(k, v, row["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
