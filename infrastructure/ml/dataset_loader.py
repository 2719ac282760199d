"""Load tabular datasets: scikit-learn's bundled builtins or CSV/TSV/JSONL/parquet files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from shared.errors import DataError

BUILTINS = ("iris", "wine", "breast_cancer")


def _builtin(name: str) -> pd.DataFrame:
    from sklearn import datasets

    loaders: dict[str, Callable[..., Any]] = {
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
    }
    bunch = loaders[name](as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    # Column names without spaces/parentheses read better as JSON fields when served.
    frame.columns = [
        str(c).replace(" (cm)", "_cm").replace(" ", "_").replace("(", "").replace(")", "")
        for c in frame.columns
    ]
    names = list(bunch.target_names)
    frame["target"] = frame["target"].map(lambda code: str(names[int(code)]))
    return frame


class PandasDatasetLoader:
    """Reads the formats users bring; the target column is whatever the job config names."""

    def load(self, source: str) -> pd.DataFrame:
        if source in BUILTINS:
            return _builtin(source)
        path = Path(source)
        if not path.is_file():
            raise DataError(
                f"dataset {source!r} is neither a builtin ({', '.join(BUILTINS)}) nor a file"
            )
        suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
        try:
            if suffix in (".csv", ".csv.gz"):
                frame = pd.read_csv(path)
            elif suffix in (".tsv", ".tsv.gz", ".tab"):
                frame = pd.read_csv(path, sep="\t")
            elif suffix in (".jsonl", ".ndjson", ".jsonl.gz"):
                frame = pd.read_json(path, lines=True)
            elif suffix in (".parquet", ".pq"):
                frame = pd.read_parquet(path)
            else:
                raise DataError(
                    f"unsupported dataset format {path.suffix!r} (use csv/tsv/jsonl/parquet)"
                )
        except DataError:
            raise
        except Exception as error:  # parsers raise many types; report them all the same way
            raise DataError(f"cannot read dataset {path}: {error}") from error
        if frame.empty:
            raise DataError(f"dataset {path} has no rows")
        return frame
